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

// K and V rows are converted once per key and shared by the g query heads of the group. The
// summation order is llama.cpp's (see KernelTable::attn_f16).
void attn_f16_avx512(int hd, int g, const uint16_t* q16, const uint8_t* k, size_t k_stride,
                     const uint8_t* v, size_t v_stride, int64_t n_keys, int64_t key0, float scale,
                     float softcap, float* scores, float* lanes, float* out) {
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
  const int64_t b0 = key0 & ~int64_t(15), end = key0 + n_keys;
  for (int h = 0; h < g; ++h) {
    float* s = scores + h * n_keys;
    for (int64_t j = 0; j < n_keys; ++j) s[j] = std::exp(s[j] - mx[h]);
    // The denominator: each aligned block of 16 positions folded, then summed in double.
    double sum = 0;
    for (int64_t b = b0; b < end; b += 16) {
      const int64_t lo = std::max(b, key0), hi = std::min(b + 16, end);
      const __mmask16 m = __mmask16(((1u << (hi - lo)) - 1) << (lo - b));
      sum += double(_mm512_reduce_add_ps(_mm512_maskz_loadu_ps(m, s + (b - key0))));
    }
    inv[h] = float(1.0 / sum);
  }
  // out[d]: 16 lane accumulators per dim (lane = position mod 16), folded like the scores. Keys
  // are visited lane by lane so each lane's accumulators stay in registers.
  const int lane0 = int(key0 & 15);
  for (int lane = 0; lane < 16; ++lane) {
    __m512 o[kMaxHeads][kMaxVec];
    for (int h = 0; h < g; ++h)
      for (int i = 0; i < nv; ++i) o[h][i] = _mm512_setzero_ps();
    for (int64_t j = (lane - lane0 + 16) & 15; j < n_keys; j += 16) {
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
      for (int i = 0; i < nv; ++i)
        _mm512_storeu_ps(lanes + (size_t(h) * 16 + size_t(lane)) * hd + 16 * i, o[h][i]);
  }
  for (int h = 0; h < g; ++h) {
    const float* ln = lanes + size_t(h) * 16 * hd;
    for (int i = 0; i < nv; ++i) {
      __m512 t[8];
      for (int l = 0; l < 8; ++l)
        t[l] = _mm512_add_ps(_mm512_loadu_ps(ln + l * hd + 16 * i),
                             _mm512_loadu_ps(ln + (l + 8) * hd + 16 * i));
      for (int l = 0; l < 4; ++l) t[l] = _mm512_add_ps(t[l], t[l + 4]);
      const __m512 r = _mm512_add_ps(_mm512_add_ps(t[0], t[2]), _mm512_add_ps(t[1], t[3]));
      _mm512_storeu_ps(out + h * hd + 16 * i, r);
    }
  }
}

}  // namespace

void register_avx512_attn(KernelTable& t) {
  t.mad_f16 = mad_f16_avx512;
  t.attn_f16 = attn_f16_avx512;
}

}  // namespace hearth::kernels
