// Shared helpers for the AVX2 kernels (compiled with AVX2/FMA/F16C flags only).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace hearth::kernels::avx2 {

// e^x for x <= 0 (softmax arguments), x = -inf included: 2^n * e^r, |r| <= ln2 / 2, degree-6
// Taylor polynomial; x is clamped to -87 so 2^n stays a normal number (e^-87 ~ 1.6e-38).
inline __m256 exp_neg(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float h2f(uint16_t h) {
  return _cvtsh_ss(h);
}

// Column-tiled driver: Micro<NC>::run computes one weight row against NC activation rows;
// weight rows are blocked so each block is read from memory once per call.
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
    for (; m < M; ++m)
      for (int64_t r = r0; r < r1; ++r)
        Micro<1>::run(K, w + r * w_stride, a + m * a_stride, a_stride, Y + m * ldy + r, ldy);
  }
}

template <template <int> class Micro>
float vec_dot_via(int64_t n, const void* x, const void* y) {
  float r;
  Micro<1>::run(n, static_cast<const uint8_t*>(x), static_cast<const uint8_t*>(y), 0, &r, 0);
  return r;
}

}  // namespace hearth::kernels::avx2
