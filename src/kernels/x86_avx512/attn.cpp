// Attention helpers for AVX-512.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "base/fp16.h"
#include "kernels/x86_avx512/x86_avx512.h"

namespace hearth::kernels {
namespace {

void mad_f16_avx512(int64_t n, float* y, const uint16_t* x, float a) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 xv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, xv, _mm512_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

// K and V rows are converted once per key and shared by the g query heads of the group.
void attn_f16_avx512(int hd, int g, const uint16_t* q16, const uint8_t* k, size_t k_stride,
                     const uint8_t* v, size_t v_stride, int64_t n_keys, float scale, float softcap,
                     float* scores, float* out) {
  constexpr int kMaxVec = 16, kMaxHeads = 16;
  const int nv = hd / 16;
  __m512 q[kMaxHeads][kMaxVec];
  for (int h = 0; h < g; ++h)
    for (int i = 0; i < nv; ++i)
      q[h][i] = _mm512_cvtph_ps(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q16 + h * hd + 16 * i)));
  float mx[kMaxHeads];
  for (int h = 0; h < g; ++h) mx[h] = -INFINITY;
  for (int64_t j = 0; j < n_keys; ++j) {
    const auto* kr = reinterpret_cast<const uint16_t*>(k + j * k_stride);
    __m512 kf[kMaxVec];
    for (int i = 0; i < nv; ++i)
      kf[i] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kr + 16 * i)));
    for (int h = 0; h < g; ++h) {
      __m512 acc = _mm512_mul_ps(kf[0], q[h][0]);
      for (int i = 1; i < nv; ++i) acc = _mm512_fmadd_ps(kf[i], q[h][i], acc);
      float x = _mm512_reduce_add_ps(acc) * scale;
      if (softcap > 0) x = softcap * std::tanh(x / softcap);
      scores[h * n_keys + j] = x;
      mx[h] = std::max(mx[h], x);
    }
  }
  float inv[kMaxHeads];
  for (int h = 0; h < g; ++h) {
    float* s = scores + h * n_keys;
    double sum = 0;
    for (int64_t j = 0; j < n_keys; ++j) {
      s[j] = std::exp(s[j] - mx[h]);
      sum += s[j];
    }
    inv[h] = float(1.0 / sum);
  }
  __m512 o[kMaxHeads][kMaxVec];
  for (int h = 0; h < g; ++h)
    for (int i = 0; i < nv; ++i) o[h][i] = _mm512_setzero_ps();
  for (int64_t j = 0; j < n_keys; ++j) {
    const auto* vr = reinterpret_cast<const uint16_t*>(v + j * v_stride);
    __m512 vf[kMaxVec];
    for (int i = 0; i < nv; ++i)
      vf[i] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(vr + 16 * i)));
    for (int h = 0; h < g; ++h) {
      // Probabilities are rounded to F16 before weighting V, as llama.cpp does.
      const __m512 w = _mm512_set1_ps(_cvtsh_ss(_cvtss_sh(scores[h * n_keys + j] * inv[h], 0)));
      for (int i = 0; i < nv; ++i) o[h][i] = _mm512_fmadd_ps(w, vf[i], o[h][i]);
    }
  }
  for (int h = 0; h < g; ++h)
    for (int i = 0; i < nv; ++i) _mm512_storeu_ps(out + h * hd + 16 * i, o[h][i]);
}

}  // namespace

void register_avx512_attn(KernelTable& t) {
  t.mad_f16 = mad_f16_avx512;
  t.attn_f16 = attn_f16_avx512;
}

}  // namespace hearth::kernels
