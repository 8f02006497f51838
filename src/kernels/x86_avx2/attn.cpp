// Attention helpers for AVX2 + F16C.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "base/fp16.h"
#include "kernels/x86_avx2/common.h"
#include "kernels/x86_avx2/x86_avx2.h"

namespace hearth::kernels {
namespace {

void mad_f16_avx2(int64_t n, float* y, const uint16_t* x, float a) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

// 16 lanes as two ymm (lanes 0-7, 8-15).
struct F16x {
  __m256 lo, hi;
};
inline F16x load16h(const uint16_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
}
// _mm512_reduce_add_ps's fold: lanes i + i+8, then + i+4, then i + i+2, then 0 + 1 — which is
// avx2::hsum of the first fold.
inline float tree16(const F16x& v) {
  return avx2::hsum(_mm256_add_ps(v.lo, v.hi));
}

// The AVX-512 kernel (x86_avx512/attn.cpp) with each 16-lane vector as two ymm, so the sums run
// in the same order and the levels agree bit for bit (KernelTable::attn_f16).
void attn_f16_avx2(int hd, int g, const uint16_t* q16, const uint8_t* k, size_t k_stride,
                   const uint8_t* v, size_t v_stride, int64_t n_keys, int64_t key0, float scale,
                   float softcap, float* scores, float* lanes, float* out) {
  constexpr int kMaxVec = 16, kMaxHeads = 16;
  const int nv = hd / 16;
  F16x q[kMaxHeads][kMaxVec];
  for (int h = 0; h < g; ++h)
    for (int i = 0; i < nv; ++i) q[h][i] = load16h(q16 + h * hd + 16 * i);
  float mx[kMaxHeads];
  for (int h = 0; h < g; ++h) mx[h] = -INFINITY;
  for (int64_t j = 0; j < n_keys; ++j) {
    const auto* kr = reinterpret_cast<const uint16_t*>(k + j * k_stride);
    F16x kf[kMaxVec];
    for (int i = 0; i < nv; ++i) kf[i] = load16h(kr + 16 * i);
    for (int h = 0; h < g; ++h) {
      F16x acc = {_mm256_mul_ps(kf[0].lo, q[h][0].lo), _mm256_mul_ps(kf[0].hi, q[h][0].hi)};
      for (int i = 1; i < nv; ++i) {
        acc.lo = _mm256_fmadd_ps(kf[i].lo, q[h][i].lo, acc.lo);
        acc.hi = _mm256_fmadd_ps(kf[i].hi, q[h][i].hi, acc.hi);
      }
      float x = tree16(acc) * scale;
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
      alignas(32) float blk[16] = {};
      for (int64_t p = lo; p < hi; ++p) blk[p - b] = s[p - key0];
      sum += double(tree16({_mm256_load_ps(blk), _mm256_load_ps(blk + 8)}));
    }
    inv[h] = float(1.0 / sum);
  }
  // out[d]: 16 lane accumulators per dim (lane = position mod 16), folded like the scores.
  const int lane0 = int(key0 & 15);
  for (int lane = 0; lane < 16; ++lane) {
    F16x o[kMaxHeads][kMaxVec];
    for (int h = 0; h < g; ++h)
      for (int i = 0; i < nv; ++i) o[h][i] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t j = (lane - lane0 + 16) & 15; j < n_keys; j += 16) {
      const auto* vr = reinterpret_cast<const uint16_t*>(v + j * v_stride);
      F16x vf[kMaxVec];
      for (int i = 0; i < nv; ++i) vf[i] = load16h(vr + 16 * i);
      for (int h = 0; h < g; ++h) {
        // Probabilities are rounded to F16 before weighting V, as llama.cpp does.
        const __m256 w = _mm256_set1_ps(_cvtsh_ss(_cvtss_sh(scores[h * n_keys + j] * inv[h], 0)));
        for (int i = 0; i < nv; ++i) {
          o[h][i].lo = _mm256_fmadd_ps(w, vf[i].lo, o[h][i].lo);
          o[h][i].hi = _mm256_fmadd_ps(w, vf[i].hi, o[h][i].hi);
        }
      }
    }
    for (int h = 0; h < g; ++h)
      for (int i = 0; i < nv; ++i) {
        float* dst = lanes + (size_t(h) * 16 + size_t(lane)) * hd + 16 * i;
        _mm256_storeu_ps(dst, o[h][i].lo);
        _mm256_storeu_ps(dst + 8, o[h][i].hi);
      }
  }
  for (int h = 0; h < g; ++h) {
    const float* ln = lanes + size_t(h) * 16 * hd;
    for (int i = 0; i < nv; ++i)
      for (int half = 0; half < 2; ++half) {
        const int off = 16 * i + 8 * half;
        __m256 t[8];
        for (int l = 0; l < 8; ++l)
          t[l] = _mm256_add_ps(_mm256_loadu_ps(ln + l * hd + off),
                               _mm256_loadu_ps(ln + (l + 8) * hd + off));
        for (int l = 0; l < 4; ++l) t[l] = _mm256_add_ps(t[l], t[l + 4]);
        const __m256 r = _mm256_add_ps(_mm256_add_ps(t[0], t[2]), _mm256_add_ps(t[1], t[3]));
        _mm256_storeu_ps(out + h * hd + off, r);
      }
  }
}

}  // namespace

void register_avx2_attn(KernelTable& t) {
  t.mad_f16 = mad_f16_avx2;
  t.attn_f16 = attn_f16_avx2;
}

}  // namespace hearth::kernels
