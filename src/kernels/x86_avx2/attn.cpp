// Attention helpers for AVX2 + F16C.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "base/fp16.h"
#include "kernels/x86_avx2/common.h"
#include "kernels/x86_avx2/x86_avx2.h"
#include "quant/blocks.h"

namespace hearth::kernels {
namespace {

using avx2::exp_neg;

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

// NR rows x ND * 8 dims of the P V step, P(r, j) at st[j * mp + r]: the counts known at compile
// time so the accumulators stay in registers (with run-time counts the compiler kept them on the
// stack). Each accumulator is a chain over j = 0..n-1 from o * corr.
template <int NR, int ND>
void pv_block(int r0, int d0, int hdv, int n, const float* v, const float* st, size_t mp,
              const float* corr, float* o) {
  __m256 acc[NR][ND];
  for (int rr = 0; rr < NR; ++rr) {
    const __m256 c = _mm256_set1_ps(corr[r0 + rr]);
    for (int i = 0; i < ND; ++i)
      acc[rr][i] = _mm256_mul_ps(c, _mm256_loadu_ps(o + size_t(r0 + rr) * hdv + d0 + 8 * i));
  }
  for (int j = 0; j < n; ++j) {
    __m256 vv[ND];
    for (int i = 0; i < ND; ++i) vv[i] = _mm256_loadu_ps(v + size_t(j) * hdv + d0 + 8 * i);
    const float* pj = st + size_t(j) * mp + r0;
    for (int rr = 0; rr < NR; ++rr) {
      const __m256 p = _mm256_broadcast_ss(pj + rr);
      for (int i = 0; i < ND; ++i) acc[rr][i] = _mm256_fmadd_ps(p, vv[i], acc[rr][i]);
    }
  }
  for (int rr = 0; rr < NR; ++rr)
    for (int i = 0; i < ND; ++i)
      _mm256_storeu_ps(o + size_t(r0 + rr) * hdv + d0 + 8 * i, acc[rr][i]);
}

// KernelTable::attn_tile. Scores go to st transposed (st[j * mp + r]): st = K Qt, one broadcast
// K element times 8 query rows per FMA, and the softmax runs across 8 rows per vector.
void attn_tile_avx2(int hd, int hdv, int m, const float* q, const float* qt, const float* k,
                    const float* v, int n, const int32_t* lo, const int32_t* hi, float softcap,
                    float* mx, float* l, float* o, float* st) {
  (void)q;
  const int mp = (m + 15) & ~15, np = (n + 15) & ~15;
  const int m8 = (m + 7) & ~7;  // row vectors that hold real rows
  float* corr = st + size_t(np) * mp;
  for (int j = 0; j < np; j += 4) {
    for (int rv = 0; rv < m8; rv += 16) {
      const bool two = rv + 8 < m8;
      __m256 acc[4][2];
      for (int kk = 0; kk < 4; ++kk) acc[kk][0] = acc[kk][1] = _mm256_setzero_ps();
      for (int d = 0; d < hd; ++d) {
        const __m256 qa = _mm256_loadu_ps(qt + size_t(d) * mp + rv);
        const __m256 qb = two ? _mm256_loadu_ps(qt + size_t(d) * mp + rv + 8) : qa;
        for (int kk = 0; kk < 4; ++kk) {
          const __m256 kb = _mm256_broadcast_ss(k + size_t(j + kk) * hd + d);
          acc[kk][0] = _mm256_fmadd_ps(kb, qa, acc[kk][0]);
          acc[kk][1] = _mm256_fmadd_ps(kb, qb, acc[kk][1]);
        }
      }
      for (int kk = 0; kk < 4; ++kk) {
        _mm256_storeu_ps(st + size_t(j + kk) * mp + rv, acc[kk][0]);
        if (two) _mm256_storeu_ps(st + size_t(j + kk) * mp + rv + 8, acc[kk][1]);
      }
    }
  }
  if (softcap > 0)
    for (int j = 0; j < n; ++j)
      for (int r = 0; r < m; ++r) {
        float& x = st[size_t(j) * mp + r];
        x = softcap * std::tanh(x / softcap);
      }
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  for (int r0 = 0; r0 < m8; r0 += 8) {
    alignas(32) int32_t blo[8], bhi[8];
    alignas(32) float bm[8], bl[8];
    int jlo = n, jhi = 0;
    for (int i = 0; i < 8; ++i) {
      const int r = r0 + i;
      const bool ok = r < m && lo[std::min(r, m - 1)] < hi[std::min(r, m - 1)];
      blo[i] = ok ? lo[r] : 0;
      bhi[i] = ok ? hi[r] : 0;
      bm[i] = r < m ? mx[r] : -INFINITY;
      bl[i] = r < m ? l[r] : 0.0f;
      if (ok) jlo = std::min(jlo, blo[i]), jhi = std::max(jhi, bhi[i]);
    }
    const __m256i vlo = _mm256_load_si256(reinterpret_cast<const __m256i*>(blo));
    const __m256i vhi = _mm256_load_si256(reinterpret_cast<const __m256i*>(bhi));
    auto in_mask = [&](int j) {
      const __m256i vj = _mm256_set1_epi32(j);
      return _mm256_castsi256_ps(
          _mm256_andnot_si256(_mm256_cmpgt_epi32(vlo, vj), _mm256_cmpgt_epi32(vhi, vj)));
    };
    const __m256 m_old = _mm256_load_ps(bm);
    __m256 mt = ninf;
    for (int j = jlo; j < jhi; ++j)
      mt = _mm256_blendv_ps(mt, _mm256_max_ps(mt, _mm256_loadu_ps(st + size_t(j) * mp + r0)),
                            in_mask(j));
    const __m256 m_new = _mm256_max_ps(m_old, mt);
    // Rows that have seen nothing yet keep -inf: subtract 0 instead (their terms are masked).
    const __m256 m_sub =
        _mm256_blendv_ps(_mm256_setzero_ps(), m_new, _mm256_cmp_ps(m_new, ninf, _CMP_NEQ_OQ));
    const __m256 c = exp_neg(_mm256_sub_ps(m_old, m_sub));
    __m256 sum = _mm256_setzero_ps();
    for (int j = 0; j < n; ++j) {
      float* sj = st + size_t(j) * mp + r0;
      if (j < jlo || j >= jhi) {
        _mm256_storeu_ps(sj, _mm256_setzero_ps());
        continue;
      }
      const __m256 p =
          _mm256_and_ps(in_mask(j), exp_neg(_mm256_sub_ps(_mm256_loadu_ps(sj), m_sub)));
      sum = _mm256_add_ps(sum, p);
      _mm256_storeu_ps(sj, p);
    }
    _mm256_store_ps(bl, _mm256_fmadd_ps(_mm256_load_ps(bl), c, sum));
    _mm256_store_ps(bm, m_new);
    _mm256_storeu_ps(corr + r0, c);
    for (int i = 0; i < 8 && r0 + i < m; ++i) {
      l[r0 + i] = bl[i];
      mx[r0 + i] = bm[i];
    }
  }
  // o = o * corr + P V: 2 rows x 32 dims of accumulators per pass over the keys (8 of the 16 ymm
  // registers; 4 rows spilled).
  using Fn = void (*)(int, int, int, int, const float*, const float*, size_t, const float*, float*);
  static constexpr Fn fns[2][4] = {
      {pv_block<1, 1>, pv_block<1, 2>, pv_block<1, 3>, pv_block<1, 4>},
      {pv_block<2, 1>, pv_block<2, 2>, pv_block<2, 3>, pv_block<2, 4>}};
  for (int r0 = 0; r0 < m; r0 += 2) {
    const int nr = std::min(2, m - r0);
    for (int d0 = 0; d0 < hdv; d0 += 32) {
      const int nd = std::min(4, (hdv - d0) / 8);
      fns[nr - 1][nd - 1](r0, d0, hdv, n, v, st, size_t(mp), corr, o);
    }
  }
}

void to_f32_f16_avx2(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  for (; i < n; ++i) dst[i] = fp16_to_fp32(x[i]);
}

void to_f32_q8_0_avx2(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q8_0*>(src);
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const __m256 d = _mm256_set1_ps(fp16_to_fp32(b[i].d));
    for (int h = 0; h < 4; ++h) {
      const __m128i x = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b[i].qs + 8 * h));
      _mm256_storeu_ps(dst + i * 32 + 8 * h,
                       _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(x))));
    }
  }
}

// Q4_0: low nibbles are elements 0-15 of a block, high nibbles 16-31, both offset by 8.
void to_f32_q4_0_avx2(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q4_0*>(src);
  const __m256i eight = _mm256_set1_epi32(8), mask = _mm256_set1_epi32(15);
  for (int64_t i = 0; i < n / QK4_0; ++i) {
    const __m256 d = _mm256_set1_ps(fp16_to_fp32(b[i].d));
    for (int h = 0; h < 2; ++h) {
      const __m256i x =
          _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b[i].qs + 8 * h)));
      const __m256i lo = _mm256_sub_epi32(_mm256_and_si256(x, mask), eight);
      const __m256i hi = _mm256_sub_epi32(_mm256_srli_epi32(x, 4), eight);
      _mm256_storeu_ps(dst + i * 32 + 8 * h, _mm256_mul_ps(d, _mm256_cvtepi32_ps(lo)));
      _mm256_storeu_ps(dst + i * 32 + 16 + 8 * h, _mm256_mul_ps(d, _mm256_cvtepi32_ps(hi)));
    }
  }
}

}  // namespace

void register_avx2_attn(KernelTable& t) {
  t.mad_f16 = mad_f16_avx2;
  t.attn_f16 = attn_f16_avx2;
  t.attn_tile = attn_tile_avx2;
  t.to_f32[uint32_t(DType::F16)] = to_f32_f16_avx2;
  t.to_f32[uint32_t(DType::Q8_0)] = to_f32_q8_0_avx2;
  t.to_f32[uint32_t(DType::Q4_0)] = to_f32_q4_0_avx2;
}

}  // namespace hearth::kernels
