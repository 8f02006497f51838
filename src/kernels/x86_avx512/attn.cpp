// Attention helpers for AVX-512.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "base/fp16.h"
#include "kernels/x86_avx512/common.h"
#include "kernels/x86_avx512/x86_avx512.h"
#include "quant/blocks.h"

namespace hearth::kernels {
namespace {

using avx512::exp_neg;

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

// Elements d0..d0+15 of a K or V row as floats, from the tile's F32 rows or straight from a
// cache row (the values to_f32 gives, exactly: every conversion here is exact).
struct LoadF32 {
  static __m512 at(const uint8_t* row, int d0) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + d0);
  }
};
struct LoadF16 {
  static __m512 at(const uint8_t* row, int d0) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row) + d0 / 16));
  }
};
struct LoadQ8_0 {
  static __m512 at(const uint8_t* row, int d0) {
    const auto* b = reinterpret_cast<const block_q8_0*>(row) + d0 / QK8_0;
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs + (d0 & 31)));
    return _mm512_mul_ps(_mm512_set1_ps(fp16_to_fp32(b->d)),
                         _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(x)));
  }
};
struct LoadQ4_0 {  // low nibbles are elements 0-15 of a block, high nibbles 16-31
  static __m512 at(const uint8_t* row, int d0) {
    const auto* b = reinterpret_cast<const block_q4_0*>(row) + d0 / QK4_0;
    const __m512i x =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs)));
    const __m512i nib =
        (d0 & 16) ? _mm512_srli_epi32(x, 4) : _mm512_and_si512(x, _mm512_set1_epi32(15));
    return _mm512_mul_ps(_mm512_set1_ps(fp16_to_fp32(b->d)),
                         _mm512_cvtepi32_ps(_mm512_sub_epi32(nib, _mm512_set1_epi32(8))));
  }
};

// NR rows x ND * 16 dims of tile_pv, the counts known at compile time so the accumulators stay in
// registers (with run-time counts the compiler kept them on the stack and copied them out with
// memcpy).
template <class Load, int NR, int ND>
void pv_block(int r0, int d0, int hdv, int n, const uint8_t* v, size_t v_stride, const float* p,
              size_t pr, size_t pj, const float* corr, float* o) {
  __m512 acc[NR][ND];
  for (int rr = 0; rr < NR; ++rr) {
    const __m512 c = _mm512_set1_ps(corr[r0 + rr]);
    for (int i = 0; i < ND; ++i)
      acc[rr][i] = _mm512_mul_ps(c, _mm512_loadu_ps(o + size_t(r0 + rr) * hdv + d0 + 16 * i));
  }
  for (int j = 0; j < n; ++j) {
    __m512 vv[ND];
    for (int i = 0; i < ND; ++i) vv[i] = Load::at(v + size_t(j) * v_stride, d0 + 16 * i);
    const float* pjr = p + size_t(j) * pj + size_t(r0) * pr;
    for (int rr = 0; rr < NR; ++rr) {
      const __m512 pv = _mm512_set1_ps(pjr[size_t(rr) * pr]);
      for (int i = 0; i < ND; ++i) acc[rr][i] = _mm512_fmadd_ps(pv, vv[i], acc[rr][i]);
    }
  }
  for (int rr = 0; rr < NR; ++rr)
    for (int i = 0; i < ND; ++i)
      _mm512_storeu_ps(o + size_t(r0 + rr) * hdv + d0 + 16 * i, acc[rr][i]);
}

// o = o * corr + P V for the m rows, P(r, j) at p[r * pr + j * pj], V row j at v + j * v_stride:
// 4 rows x 64 dims of accumulators per pass over the keys, each a chain over j = 0..n-1 (both
// attn_tile layouts below sum in this one order).
template <class Load>
void tile_pv(int m, int hdv, int n, const uint8_t* v, size_t v_stride, const float* p, size_t pr,
             size_t pj, const float* corr, float* o) {
  using Fn = void (*)(int, int, int, int, const uint8_t*, size_t, const float*, size_t, size_t,
                      const float*, float*);
  static constexpr Fn fns[4][4] = {
      {pv_block<Load, 1, 1>, pv_block<Load, 1, 2>, pv_block<Load, 1, 3>, pv_block<Load, 1, 4>},
      {pv_block<Load, 2, 1>, pv_block<Load, 2, 2>, pv_block<Load, 2, 3>, pv_block<Load, 2, 4>},
      {pv_block<Load, 3, 1>, pv_block<Load, 3, 2>, pv_block<Load, 3, 3>, pv_block<Load, 3, 4>},
      {pv_block<Load, 4, 1>, pv_block<Load, 4, 2>, pv_block<Load, 4, 3>, pv_block<Load, 4, 4>}};
  for (int r0 = 0; r0 < m; r0 += 4) {
    const int nr = std::min(4, m - r0);
    for (int d0 = 0; d0 < hdv; d0 += 64) {
      const int nd = std::min(4, (hdv - d0) / 16);
      fns[nr - 1][nd - 1](r0, d0, hdv, n, v, v_stride, p, pr, pj, corr, o);
    }
  }
}

// Rows with nothing seen yet keep mx = -inf: their terms subtract 0 instead (and are masked).
inline __m512 softmax_shift(__m512 m_new) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(m_new, m_new, _CMP_EQ_OQ) &
                                  _mm512_cmp_ps_mask(m_new, _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ),
                              _mm512_setzero_ps(), m_new);
}

// In place: t[i] becomes column i of the 16 x 16 block whose rows were t[0..15].
inline void transpose16(__m512 t[16]) {
  __m512 a[16];
  for (int i = 0; i < 16; i += 2) {  // 2x2 blocks of single floats
    a[i] = _mm512_unpacklo_ps(t[i], t[i + 1]);
    a[i + 1] = _mm512_unpackhi_ps(t[i], t[i + 1]);
  }
  for (int i = 0; i < 16; i += 4)
    for (int h = 0; h < 2; ++h) {  // 4x4 blocks: pairs of floats
      const __m512d x = _mm512_castps_pd(a[i + h]), y = _mm512_castps_pd(a[i + 2 + h]);
      t[i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(x, y));
      t[i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x, y));
    }
  // The 128-bit chunk c of t[4g + e] is now rows 4g..4g+3 of column 4c + e: two rounds of
  // 128-bit shuffles put the four row groups of each column together.
  for (int i = 0; i < 8; ++i) {
    const int r = (i / 4) * 8 + i % 4;  // pairs (0,4) (1,5) (2,6) (3,7) (8,12) ...
    a[r] = _mm512_shuffle_f32x4(t[r], t[r + 4], 0x88);
    a[r + 4] = _mm512_shuffle_f32x4(t[r], t[r + 4], 0xDD);
  }
  for (int i = 0; i < 8; ++i) {
    t[i] = _mm512_shuffle_f32x4(a[i], a[i + 8], 0x88);
    t[i + 8] = _mm512_shuffle_f32x4(a[i], a[i + 8], 0xDD);
  }
}

// attn_tile for few rows (decode: one token's group of heads). Keys go in lanes instead of rows,
// from K transposed 16 keys at a time, so no lane is padding; each score is still the same FMA
// chain over the head dims, and the softmax and P V take the same elementwise steps in the same
// order, so every row's result equals the rows-in-lanes kernel's bit for bit (prefill = decode).
// K row j at k + j * k_stride, V row j at v + j * v_stride, read through Load: F32 tile rows, or
// the cache's own rows (attn_tile_cache).
template <int M, class Load>
void attn_tile_few(int hd, int hdv, const float* q, const uint8_t* k, size_t k_stride,
                   const uint8_t* v, size_t v_stride, int n, const int32_t* lo, const int32_t* hi,
                   float softcap, float* mx, float* l, float* o, float* s) {
  const int np = (n + 15) & ~15;
  float* sc = s;                      // M x np: scores, then probabilities
  float* corr = sc + size_t(M) * np;  // M
  float* kt = corr + 16;              // hd x 16: 16 keys transposed
  for (int j0 = 0; j0 < np; j0 += 16) {
    for (int d0 = 0; d0 < hd; d0 += 16) {
      __m512 t[16];
      for (int jj = 0; jj < 16; ++jj)  // keys past n (padding) are zero
        t[jj] = j0 + jj < n ? Load::at(k + size_t(j0 + jj) * k_stride, d0) : _mm512_setzero_ps();
      transpose16(t);
      for (int i = 0; i < 16; ++i) _mm512_storeu_ps(kt + size_t(d0 + i) * 16, t[i]);
    }
    __m512 acc[M];
    for (int r = 0; r < M; ++r) acc[r] = _mm512_setzero_ps();
    for (int d = 0; d < hd; ++d) {
      const __m512 kv = _mm512_loadu_ps(kt + size_t(d) * 16);
      for (int r = 0; r < M; ++r)
        acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[size_t(r) * hd + d]), kv, acc[r]);
    }
    for (int r = 0; r < M; ++r) _mm512_storeu_ps(sc + size_t(r) * np + j0, acc[r]);
  }
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int r = 0; r < M; ++r) {
    float* sr = sc + size_t(r) * np;
    if (softcap > 0)
      for (int j = 0; j < n; ++j) sr[j] = softcap * std::tanh(sr[j] / softcap);
    const int a = lo[r] < hi[r] ? lo[r] : 0, b = lo[r] < hi[r] ? hi[r] : 0;
    __m512 mt = _mm512_set1_ps(-INFINITY);
    for (int j0 = a & ~15; j0 < b; j0 += 16) {
      const __m512i vj = _mm512_add_epi32(_mm512_set1_epi32(j0), lane);
      const __mmask16 in = _mm512_cmpge_epi32_mask(vj, _mm512_set1_epi32(a)) &
                           _mm512_cmplt_epi32_mask(vj, _mm512_set1_epi32(b));
      mt = _mm512_mask_max_ps(mt, in, mt, _mm512_loadu_ps(sr + j0));
    }
    const __m512 m_old = _mm512_set1_ps(mx[r]);
    const __m512 m_new = _mm512_max_ps(m_old, _mm512_set1_ps(_mm512_reduce_max_ps(mt)));
    const __m512 m_sub = softmax_shift(m_new);
    const __m512 c = exp_neg(_mm512_sub_ps(m_old, m_sub));
    for (int j0 = 0; j0 < np; j0 += 16) {
      const __m512i vj = _mm512_add_epi32(_mm512_set1_epi32(j0), lane);
      const __mmask16 in = _mm512_cmpge_epi32_mask(vj, _mm512_set1_epi32(a)) &
                           _mm512_cmplt_epi32_mask(vj, _mm512_set1_epi32(b));
      _mm512_storeu_ps(sr + j0, _mm512_maskz_mov_ps(
                                    in, exp_neg(_mm512_sub_ps(_mm512_loadu_ps(sr + j0), m_sub))));
    }
    float sum = 0;  // key by key, as the rows-in-lanes kernel adds them
    for (int j = a; j < b; ++j) sum += sr[j];
    l[r] = _mm512_cvtss_f32(_mm512_fmadd_ps(_mm512_set1_ps(l[r]), c, _mm512_set1_ps(sum)));
    mx[r] = _mm512_cvtss_f32(m_new);
    corr[r] = _mm512_cvtss_f32(c);
  }
  tile_pv<Load>(M, hdv, n, v, v_stride, sc, size_t(np), 1, corr, o);
}

template <class Load>
void attn_tile_few_m(int hd, int hdv, int m, const float* q, const uint8_t* k, size_t k_stride,
                     const uint8_t* v, size_t v_stride, int n, const int32_t* lo, const int32_t* hi,
                     float softcap, float* mx, float* l, float* o, float* s) {
  switch (m) {
#define HEARTH_FEW(M)                                                                              \
  case M:                                                                                          \
    return attn_tile_few<M, Load>(hd, hdv, q, k, k_stride, v, v_stride, n, lo, hi, softcap, mx, l, \
                                  o, s);
    HEARTH_FEW(1)
    HEARTH_FEW(2)
    HEARTH_FEW(3)
    HEARTH_FEW(4)
    HEARTH_FEW(5)
    HEARTH_FEW(6)
    HEARTH_FEW(7)
    HEARTH_FEW(8)
#undef HEARTH_FEW
    default:
      break;
  }
}

// KernelTable::attn_tile_cache: the few-rows kernel reading K and V rows from the cache.
template <class Load>
void attn_tile_cache_avx512(int hd, int hdv, int m, const float* q, const uint8_t* k,
                            size_t k_stride, const uint8_t* v, size_t v_stride, int n,
                            const int32_t* lo, const int32_t* hi, float softcap, float* mx,
                            float* l, float* o, float* s) {
  attn_tile_few_m<Load>(hd, hdv, m, q, k, k_stride, v, v_stride, n, lo, hi, softcap, mx, l, o, s);
}

// Scores of 4 keys (K rows k, k + hd, ...) against NV * 16 query rows from rv (qt: Q transposed,
// mp rows per dim) into st[kk * mp + rv ..]: one FMA chain over the head dims per score.
template <int NV>
void qk_block(int hd, int mp, int rv, const float* qt, const float* k, float* st) {
  __m512 acc[4][NV];
  for (int kk = 0; kk < 4; ++kk)
    for (int i = 0; i < NV; ++i) acc[kk][i] = _mm512_setzero_ps();
  for (int d = 0; d < hd; ++d) {
    __m512 q[NV];
    for (int i = 0; i < NV; ++i) q[i] = _mm512_loadu_ps(qt + size_t(d) * mp + rv + 16 * i);
    for (int kk = 0; kk < 4; ++kk) {
      const __m512 kb = _mm512_set1_ps(k[size_t(kk) * hd + d]);
      for (int i = 0; i < NV; ++i) acc[kk][i] = _mm512_fmadd_ps(kb, q[i], acc[kk][i]);
    }
  }
  for (int kk = 0; kk < 4; ++kk)
    for (int i = 0; i < NV; ++i) _mm512_storeu_ps(st + size_t(kk) * mp + rv + 16 * i, acc[kk][i]);
}

// The rows-in-lanes form of attn_tile (see attn_tile_avx512).
void attn_tile_rows(int hd, int hdv, int m, const float* qt, const float* k, const float* v, int n,
                    const int32_t* lo, const int32_t* hi, float softcap, float* mx, float* l,
                    float* o, float* st) {
  const int mp = (m + 15) & ~15, np = (n + 15) & ~15;
  float* corr = st + size_t(np) * mp;
  // 4 keys x up to 64 rows per pass: 16 accumulators, 8 loads per 16 FMAs.
  using Fn = void (*)(int, int, int, const float*, const float*, float*);
  static constexpr Fn fns[4] = {qk_block<1>, qk_block<2>, qk_block<3>, qk_block<4>};
  for (int j = 0; j < np; j += 4)
    for (int rv = 0; rv < mp; rv += 64)
      fns[std::min(4, (mp - rv) / 16) - 1](hd, mp, rv, qt, k + size_t(j) * hd, st + size_t(j) * mp);
  if (softcap > 0)
    for (int j = 0; j < n; ++j)
      for (int r = 0; r < m; ++r) {
        float& x = st[size_t(j) * mp + r];
        x = softcap * std::tanh(x / softcap);
      }
  // Online softmax, 16 rows per vector; padding rows see no keys.
  for (int r0 = 0; r0 < mp; r0 += 16) {
    const __mmask16 valid = m - r0 >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (m - r0)) - 1);
    const __m512i vlo = _mm512_maskz_loadu_epi32(valid, lo + r0);
    const __m512i vhi = _mm512_maskz_loadu_epi32(valid, hi + r0);
    int jlo = n, jhi = 0;
    for (int r = r0; r < std::min(m, r0 + 16); ++r)
      if (lo[r] < hi[r]) jlo = std::min(jlo, int(lo[r])), jhi = std::max(jhi, int(hi[r]));
    const __m512 m_old = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), valid, mx + r0);
    __m512 mt = _mm512_set1_ps(-INFINITY);
    for (int j = jlo; j < jhi; ++j) {
      const __m512i vj = _mm512_set1_epi32(j);
      const __mmask16 in = _mm512_cmple_epi32_mask(vlo, vj) & _mm512_cmpgt_epi32_mask(vhi, vj);
      mt = _mm512_mask_max_ps(mt, in, mt, _mm512_loadu_ps(st + size_t(j) * mp + r0));
    }
    const __m512 m_new = _mm512_max_ps(m_old, mt);
    const __m512 m_sub = softmax_shift(m_new);
    const __m512 c = exp_neg(_mm512_sub_ps(m_old, m_sub));
    __m512 sum = _mm512_setzero_ps();
    for (int j = 0; j < n; ++j) {
      float* sj = st + size_t(j) * mp + r0;
      if (j < jlo || j >= jhi) {
        _mm512_storeu_ps(sj, _mm512_setzero_ps());
        continue;
      }
      const __m512i vj = _mm512_set1_epi32(j);
      const __mmask16 in = _mm512_cmple_epi32_mask(vlo, vj) & _mm512_cmpgt_epi32_mask(vhi, vj);
      const __m512 p = _mm512_maskz_mov_ps(in, exp_neg(_mm512_sub_ps(_mm512_loadu_ps(sj), m_sub)));
      sum = _mm512_add_ps(sum, p);
      _mm512_storeu_ps(sj, p);
    }
    const __m512 l_old = _mm512_maskz_loadu_ps(valid, l + r0);
    _mm512_mask_storeu_ps(l + r0, valid, _mm512_fmadd_ps(l_old, c, sum));
    _mm512_mask_storeu_ps(mx + r0, valid, m_new);
    _mm512_storeu_ps(corr + r0, c);
  }
  tile_pv<LoadF32>(m, hdv, n, reinterpret_cast<const uint8_t*>(v), size_t(hdv) * 4, st, 1,
                   size_t(mp), corr, o);
}

// KernelTable::attn_tile. Scores go to st transposed (st[j * mp + r]) so the softmax runs across
// 16 rows per vector: st = K Qt, one broadcast K element times 16 query rows per FMA, no
// horizontal sums. Each score is one FMA chain over the head dims whatever m is, so a prompt's
// prefill equals its token-by-token decode bit for bit. Up to 8 rows (decode) take
// attn_tile_few, which puts keys in the lanes instead and sums in the same order.
void attn_tile_avx512(int hd, int hdv, int m, const float* q, const float* qt, const float* k,
                      const float* v, int n, const int32_t* lo, const int32_t* hi, float softcap,
                      float* mx, float* l, float* o, float* st) {
  if (m <= 8)
    return attn_tile_few_m<LoadF32>(hd, hdv, m, q, reinterpret_cast<const uint8_t*>(k),
                                    size_t(hd) * 4, reinterpret_cast<const uint8_t*>(v),
                                    size_t(hdv) * 4, n, lo, hi, softcap, mx, l, o, st);
  attn_tile_rows(hd, hdv, m, qt, k, v, n, lo, hi, softcap, mx, l, o, st);
}

void to_f32_f16_avx512(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i,
                     _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
  for (; i < n; ++i) dst[i] = fp16_to_fp32(x[i]);
}

void to_f32_q8_0_avx512(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q8_0*>(src);
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const __m512 d = _mm512_set1_ps(fp16_to_fp32(b[i].d));
    for (int h = 0; h < 2; ++h) {
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs + 16 * h));
      _mm512_storeu_ps(dst + i * 32 + 16 * h,
                       _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(x))));
    }
  }
}

// Q4_0: low nibbles are elements 0-15 of a block, high nibbles 16-31, both offset by 8.
void to_f32_q4_0_avx512(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q4_0*>(src);
  const __m512i eight = _mm512_set1_epi32(8), mask = _mm512_set1_epi32(15);
  for (int64_t i = 0; i < n / QK4_0; ++i) {
    const __m512 d = _mm512_set1_ps(fp16_to_fp32(b[i].d));
    const __m512i x =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs)));
    const __m512i lo = _mm512_sub_epi32(_mm512_and_si512(x, mask), eight);
    const __m512i hi = _mm512_sub_epi32(_mm512_srli_epi32(x, 4), eight);
    _mm512_storeu_ps(dst + i * 32, _mm512_mul_ps(d, _mm512_cvtepi32_ps(lo)));
    _mm512_storeu_ps(dst + i * 32 + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(hi)));
  }
}

}  // namespace

void register_avx512_attn(KernelTable& t) {
  t.mad_f16 = mad_f16_avx512;
  t.attn_f16 = attn_f16_avx512;
  t.attn_tile = attn_tile_avx512;
  t.attn_tile_cache[uint32_t(DType::F32)] = attn_tile_cache_avx512<LoadF32>;
  t.attn_tile_cache[uint32_t(DType::F16)] = attn_tile_cache_avx512<LoadF16>;
  t.attn_tile_cache[uint32_t(DType::Q8_0)] = attn_tile_cache_avx512<LoadQ8_0>;
  t.attn_tile_cache[uint32_t(DType::Q4_0)] = attn_tile_cache_avx512<LoadQ4_0>;
  t.to_f32[uint32_t(DType::F16)] = to_f32_f16_avx512;
  t.to_f32[uint32_t(DType::Q8_0)] = to_f32_q8_0_avx512;
  t.to_f32[uint32_t(DType::Q4_0)] = to_f32_q4_0_avx512;
}

}  // namespace hearth::kernels
