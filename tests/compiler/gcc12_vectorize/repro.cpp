// GCC 12 wrong code: a function is wrongly found to be `const`, so the caller's stores to the
// buffer it reads are deleted as dead. Reduced from the AVX2 unpacked kernels (dot_sb in
// src/kernels/x86_avx2/unpacked.cpp); see README.md next to this file.
//
//   g++ -std=c++20 -O3 -mavx2 repro.cpp -o repro && ./repro     # GCC 12.2: WRONG
//   g++ -std=c++20 -O1 -mavx2 repro.cpp -o repro && ./repro     # OK
//
// How it goes wrong:
//  1. IVOPTs rewrites the load of u.u + 32 * k in terms of the IV it keeps for u.scale[k]
//     (stride 4): MEM[(const __m256i *)0B + -2048B + _x + ivtmp * 8] with _x = -7 * (uintptr)&u,
//     a TARGET_MEM_REF whose base is the literal 0.
//  2. The late local-pure-const (and modref) pass takes that for a NULL dereference ("NULL memory
//     access; terminating BB"), ignores the rest of the basic block (the loads through y and
//     u.scale / u.off), finds no other memory read and declares dot() const.
//  3. In main() the copy into y is then dead (a const call reads no memory) and is deleted, so
//     dot() runs on uninitialised stack: 0, NaN or garbage instead of the expected value.
// There is no undefined behaviour in this program (it is exact at -O1, with clang, and under
// -fsanitize=address,undefined).
#include <immintrin.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#if defined(__clang__)
#define NOIPA __attribute__((noinline))
#else
#define NOIPA __attribute__((noipa))
#endif

// As RowUnpack: 256 unsigned bytes, then a scale and an offset per group of 32.
struct Unpacked {
  alignas(32) uint8_t u[256];
  float scale[8];
  float off[8];
};
// As block_q8_0: an f16 scale (here a plain integer) and 32 signed bytes.
struct Block {
  uint16_t d;
  int8_t qs[32];
};

// dot_sb: not inlined into main(), as in the kernels.
__attribute__((noinline)) float dot(const Unpacked& u, const Block* y) {
  float s = 0;
  for (int k = 0; k < 8; ++k) {
    const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(u.u + 32 * k));
    const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[k].qs));
    const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(v, yv), _mm256_set1_epi16(1));
    __m128i l = _mm256_castsi256_si128(p);
    l = _mm_add_epi32(l, _mm_unpackhi_epi64(l, l));
    const int lo = _mm_cvtsi128_si32(l) + _mm_extract_epi32(l, 1);
    int ysum = 0;
    for (int i = 0; i < 32; ++i) ysum += y[k].qs[i];
    s += float(y[k].d) * (u.scale[k] * float(lo) + (128.0f * u.scale[k] - u.off[k]) * float(ysum));
  }
  return s;
}

// The same computation, hidden from interprocedural analysis: the expected value.
NOIPA float dot_reference(const Unpacked& u, const Block* y) {
  return dot(u, y);
}

int main() {
  Unpacked u;
  for (int i = 0; i < 256; ++i) u.u[i] = uint8_t(100 + i % 61);
  for (int k = 0; k < 8; ++k) u.scale[k] = 0.5f + float(k), u.off[k] = 100.0f + float(k);
  Block src[8];
  for (int k = 0; k < 8; ++k) {
    src[k].d = uint16_t(1 + k);
    for (int i = 0; i < 32; ++i) src[k].qs[i] = int8_t(i - 7 * k);
  }
  const float want = dot_reference(u, src);

  Block y[8];  // as add_padded_tail's act[]: filled by memcpy, then read only by dot()
  std::memcpy(y, src, sizeof y);
  const float got = dot(u, y);

  std::printf("%s: got %g, expected %g (%s)\n", got == want ? "OK" : "WRONG", double(got),
              double(want), __VERSION__);
  return got == want ? 0 : 1;
}
