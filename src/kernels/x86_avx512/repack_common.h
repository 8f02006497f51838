// Helpers shared by the AVX-512 kernels on load-time repacked weights (repacked.cpp: K-quants,
// repacked_q4_0.cpp: Q4_0), whose layouts put 16 rows in the 16 dword lanes of a vector.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace hearth::kernels::avx512 {

inline int32_t load32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// Activation quad broadcast to 16 lanes (folds into vpdpbusd as a {1to16} memory operand).
inline __m512i bcast4(const void* p) {
  return _mm512_set1_epi32(load32(p));
}

// Every cache line of a group's super-block two super-blocks ahead, into L2 (prefetcht1, as
// x86/row_stream.h does). One thread's rows are one sequential stream, but the hardware
// prefetcher alone left single-core streaming at 14-23 GB/s where this reached 21-27
// (hearth-kernel-bench --stream, Q4_K, on a busy shared machine: indicative only). Past the end
// of the matrix the hints are harmless (prefetches do not fault).
template <size_t kBytes>
[[gnu::always_inline]] inline void prefetch_ahead(const uint8_t* g) {
  const char* p = reinterpret_cast<const char*>(g) + 2 * kBytes;
  for (size_t off = 0; off < kBytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T1);
}

// Packing: c[j] lane i = r[i] lane j (16 x 16 dwords).
[[gnu::always_inline]] inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // r[i + m] lane L: rows i .. i + 3 of column 4L + m
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512i ab_lo = _mm512_shuffle_i32x4(r[m], r[4 + m], 0x44);
    const __m512i ab_hi = _mm512_shuffle_i32x4(r[m], r[4 + m], 0xEE);
    const __m512i cd_lo = _mm512_shuffle_i32x4(r[8 + m], r[12 + m], 0x44);
    const __m512i cd_hi = _mm512_shuffle_i32x4(r[8 + m], r[12 + m], 0xEE);
    t[m] = _mm512_shuffle_i32x4(ab_lo, cd_lo, 0x88);
    t[4 + m] = _mm512_shuffle_i32x4(ab_lo, cd_lo, 0xDD);
    t[8 + m] = _mm512_shuffle_i32x4(ab_hi, cd_hi, 0x88);
    t[12 + m] = _mm512_shuffle_i32x4(ab_hi, cd_hi, 0xDD);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

}  // namespace hearth::kernels::avx512
