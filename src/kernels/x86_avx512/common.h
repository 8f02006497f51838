// Shared helpers for the AVX-512 kernels (compiled with AVX-512 flags only).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/fp16.h"
#include "quant/blocks.h"

namespace hearth::kernels::avx512 {

// e^x for x <= 0 (softmax arguments); x = -inf gives 0. 2^n * e^r with |r| <= ln2 / 2 and a
// degree-6 Taylor polynomial (relative error ~1e-7).
inline __m512 exp_neg(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// F16C conversion (the portable fp16_to_fp32 is branchy and too slow for inner loops).
inline float h2f(uint16_t h) {
  return _cvtsh_ss(h);
}

inline float hsum(__m512 v) {
  return _mm512_reduce_add_ps(v);
}
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Shift counts per 16-bit lane: a in the first 32 bytes of a zmm, b in the last 32 (for the
// variable 16-bit shifts that move bit fields of packed quants down; bits crossing in from the
// neighbouring byte are masked off by the callers).
inline __m512i shifts16(int a, int b) {
  return _mm512_inserti64x4(_mm512_set1_epi16(int16_t(a)), _mm256_set1_epi16(int16_t(b)), 1);
}

// 32 bytes into both halves of a zmm.
inline __m512i bcast256(const void* p) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
}

// Q2_K/Q3_K low bits: element 128h + 32j + l is bits 2j..2j+1 of qs[32h + l]; with q = that half's
// 32 qs bytes in both halves, k = 0 gives j = 0, 1 and k = 1 gives j = 2, 3.
inline __m512i q2_bits(__m512i q, int k) {
  return _mm512_and_si512(_mm512_srlv_epi16(q, shifts16(4 * k, 4 * k + 2)), _mm512_set1_epi8(3));
}

// The IQ4_NL/IQ4_XS code book as unsigned bytes (value + 128), for vpshufb.
inline __m128i iq4nl_table_u8() {
  return _mm_set_epi8(
      char(kvalues_iq4nl[15] + 128), char(kvalues_iq4nl[14] + 128), char(kvalues_iq4nl[13] + 128),
      char(kvalues_iq4nl[12] + 128), char(kvalues_iq4nl[11] + 128), char(kvalues_iq4nl[10] + 128),
      char(kvalues_iq4nl[9] + 128), char(kvalues_iq4nl[8] + 128), char(kvalues_iq4nl[7] + 128),
      char(kvalues_iq4nl[6] + 128), char(kvalues_iq4nl[5] + 128), char(kvalues_iq4nl[4] + 128),
      char(kvalues_iq4nl[3] + 128), char(kvalues_iq4nl[2] + 128), char(kvalues_iq4nl[1] + 128),
      char(kvalues_iq4nl[0] + 128));
}

// Two 32-byte halves from two addresses into one zmm.
inline __m512i load2x256(const void* lo, const void* hi) {
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(lo))),
      _mm256_loadu_si256(static_cast<const __m256i*>(hi)), 1);
}

// Runs a micro-kernel over (rows x columns): `Micro<NC>::run(K, w_row, a, a_stride, out, ldy)`
// computes one weight row against NC activation rows. Columns are tiled by 4, then 2, then 1.
// Weight rows are taken in blocks of ~48 KiB so a block stays in cache while every activation
// row sweeps over it: each weight byte then comes from memory once per call, not once per tile.
template <template <int> class Micro>
void gemm_tiled(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                size_t a_stride, int64_t M, float* Y, size_t ldy) {
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* a = static_cast<const uint8_t*>(A);
  const int64_t rb = M == 1 ? n_rows : std::max<int64_t>(1, int64_t(48 * 1024 / w_stride));
  for (int64_t r0 = 0; r0 < n_rows; r0 += rb) {
    const int64_t r1 = std::min(n_rows, r0 + rb);
    int64_t m = 0;
    for (; m + 4 <= M; m += 4)
      for (int64_t r = r0; r < r1; ++r)
        Micro<4>::run(K, w + r * w_stride, a + m * a_stride, a_stride, Y + m * ldy + r, ldy);
    for (; m + 2 <= M; m += 2)
      for (int64_t r = r0; r < r1; ++r)
        Micro<2>::run(K, w + r * w_stride, a + m * a_stride, a_stride, Y + m * ldy + r, ldy);
    for (; m < M; ++m)
      for (int64_t r = r0; r < r1; ++r)
        Micro<1>::run(K, w + r * w_stride, a + m * a_stride, a_stride, Y + m * ldy + r, ldy);
  }
}

}  // namespace hearth::kernels::avx512
