// K-quants: 256-element super-blocks split into sub-blocks of 16 or 32 with quantized scales.
//   Q2_K: 16 x 16, 2-bit q, 4-bit scale and min      x = d*sc*q - dmin*m
//   Q3_K: 16 x 16, 3-bit q (2 low bits + hmask), 6-bit signed scales   x = d*sc*(q - 4)
//   Q4_K:  8 x 32, 4-bit q, 6-bit scale and min      x = d*sc*q - dmin*m
//   Q5_K:  8 x 32, 5-bit q (4 + qh)                   x = d*sc*q - dmin*m
//   Q6_K: 16 x 16, 6-bit q (4 in ql + 2 in qh), int8 scales   x = d*sc*(q - 32)
//   IQ4_XS: 8 x 32, code-book values, 6-bit scales   x = d*(ls - 32)*kvalues[q]
// All are dotted with Q8_K activations (per 256: f32 d, int8 q, int16 sums of each 16).
// The quantizers reproduce llama.cpp's scale searches so files come out bit-identical.
#include "quant/kquants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "quant/blocks.h"
#include "quant/families.h"
#include "quant/rounding.h"

namespace hearth {
namespace {

constexpr float kGroupMaxEps = 1e-15f;

// Scale and min for n values in [0, nmax] minimising the weighted error: a first guess from the
// range, then nstep+1 refinements that refit scale and min by least squares. Returns the scale;
// the min is returned negated (what the block stores as a positive "m").
float make_qkx2_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  float mn = x[0], mx = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (mn > 0) mn = 0;
  if (mx == mn) {
    std::memset(L, 0, size_t(n));
    *the_min = -mn;
    return 0.0f;
  }
  float iscale = nmax / (mx - mn);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - mn))));
    L[i] = uint8_t(l);
    float diff = scale * L[i] + mn - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += w[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -mn;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (mx - mn);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - mn))));
      Laux[i] = uint8_t(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * Laux[i] + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += w[i] * diff;
      }
      if (cur_error < best_error) {
        std::memcpy(L, Laux, size_t(n));
        best_error = cur_error;
        scale = this_scale;
        mn = this_min;
      }
    }
  }
  *the_min = -mn;
  return scale;
}

// Symmetric scale for n values in [-nmax, nmax-1] (stored +nmax), refined over 18 nearby
// scales by a weighted (x²) least-squares fit.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  float mx = 0, amax = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      mx = x[i];
    }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, size_t(n));
    return 0.0f;
  }
  float iscale = -nmax / mx;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
    L[i] = int8_t(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / mx;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = int8_t(nmax + std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i]))));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Symmetric 3-bit-style scale with iterative per-element refinement (Q3_K).
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
  float mx = 0, amax = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      mx = x[i];
    }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, size_t(n));
    return 0.0f;
  }
  const float iscale = -nmax / mx;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
    L[i] = int8_t(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int itry = 0; itry < 5; ++itry) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (slx > 0) {
        float sl2 = suml2 - w * L[i] * L[i];
        int nl = std::max(-nmax, std::min(nmax - 1, nearest_int(x[i] * sl2 / slx)));
        if (nl != L[i]) {
          slx += w * x[i] * nl;
          sl2 += w * nl * nl;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = int8_t(nl);
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = int8_t(L[i] + nmax);
  return sumlx / suml2;
}

// Q2_K / Q3_K element order: element e of half h = e / 128 sits in qs[32h + e % 32] at bit
// 2 * ((e % 128) / 32).
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < QK_K; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] =
          uint8_t(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}
inline int q2_at(const uint8_t* qs, int e) {
  return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

// Q4_K/Q5_K: packs eight 6-bit scales and mins into 12 bytes (inverse of get_scale_min_k4).
void pack_scale_min_k4(const uint8_t* ls, const uint8_t* lm, uint8_t* s) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] = ls[j];
      s[j + 4] = lm[j];
    } else {
      s[j + 4] = uint8_t((ls[j] & 15) | ((lm[j] & 15) << 4));
      s[j - 4] |= uint8_t((ls[j] >> 4) << 6);
      s[j] |= uint8_t((lm[j] >> 4) << 6);
    }
  }
}

// Shared first half of the Q4_K/Q5_K quantizers: per-32 scale/min search, then 6-bit scales.
template <int NMAX>
void qk_scales_mins(const float* x, uint16_t& d, uint16_t& dmin, uint8_t* scales, uint8_t* L,
                    float rmin, int nstep) {
  uint8_t Laux[32];
  float w[32], mins[8], sc[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(x[32 * j + l]);
    sc[j] = make_qkx2_quants(32, NMAX, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep,
                             false);
    max_scale = std::max(max_scale, sc[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = uint8_t(std::min(63, nearest_int(inv_scale * sc[j])));
    lm[j] = uint8_t(std::min(63, nearest_int(inv_min * mins[j])));
  }
  std::memset(scales, 0, K_SCALE_SIZE);
  pack_scale_min_k4(ls, lm, scales);
  d = fp32_to_fp16(max_scale / 63.0f);
  dmin = fp32_to_fp16(max_min / 63.0f);
  for (int j = 0; j < 8; ++j) {
    uint8_t s, m;
    get_scale_min_k4(j, scales, s, m);
    const float dd = fp16_to_fp32(d) * s;
    if (dd == 0) continue;
    const float dm = fp16_to_fp32(dmin) * m;
    for (int i = 0; i < 32; ++i)
      L[32 * j + i] = uint8_t(std::max(0, std::min(NMAX, nearest_int((x[32 * j + i] + dm) / dd))));
  }
}

}  // namespace

// ---- Q8_K

void quantize_row_q8_K_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_K*>(vy);
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    float mx = 0, amax = 0;
    for (int j = 0; j < QK_K; ++j)
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        mx = x[j];
      }
    if (amax == 0) {
      std::memset(&y[b], 0, sizeof(block_q8_K));
      continue;
    }
    const float iscale = -127.0f / mx;
    for (int j = 0; j < QK_K; ++j) y[b].qs[j] = int8_t(std::min(127, nearest_int(iscale * x[j])));
    for (int g = 0; g < QK_K / 16; ++g) {
      int s = 0;
      for (int i = 0; i < 16; ++i) s += y[b].qs[16 * g + i];
      y[b].bsums[g] = int16_t(s);
    }
    y[b].d = 1 / iscale;
  }
}

void dequantize_row_q8_K(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_q8_K*>(vx);
  for (int64_t b = 0; b < n / QK_K; ++b)
    for (int j = 0; j < QK_K; ++j) y[b * QK_K + j] = x[b].d * x[b].qs[j];
}

// ---- Q2_K

void quantize_row_q2_K_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q2_K*>(vy);
  uint8_t L[QK_K], Laux[16];
  float w[16], mins[16], sc[16];
  constexpr float q4scale = 15.0f;
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) w[l] = std::fabs(x[16 * j + l]);
      sc[j] =
          make_qkx2_quants(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
      max_scale = std::max(max_scale, sc[j]);
      max_min = std::max(max_min, mins[j]);
    }
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < 16; ++j) y[b].scales[j] = uint8_t(nearest_int(iscale * sc[j]));
      y[b].d = fp32_to_fp16(max_scale / q4scale);
    } else {
      std::memset(y[b].scales, 0, 16);
      y[b].d = fp32_to_fp16(0.0f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < 16; ++j) y[b].scales[j] |= uint8_t(nearest_int(iscale * mins[j]) << 4);
      y[b].dmin = fp32_to_fp16(max_min / q4scale);
    } else {
      y[b].dmin = fp32_to_fp16(0.0f);
    }
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y[b].d) * (y[b].scales[j] & 15);
      if (d == 0) continue;
      const float dm = fp16_to_fp32(y[b].dmin) * (y[b].scales[j] >> 4);
      for (int i = 0; i < 16; ++i)
        L[16 * j + i] = uint8_t(std::max(0, std::min(3, nearest_int((x[16 * j + i] + dm) / d))));
    }
    pack_2bit(L, y[b].qs);
  }
}

void dequantize_row_q2_K(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_q2_K*>(vx);
  for (int64_t b = 0; b < n / QK_K; ++b, y += QK_K) {
    const float d = fp16_to_fp32(x[b].d), dmin = fp16_to_fp32(x[b].dmin);
    for (int e = 0; e < QK_K; ++e) {
      const uint8_t s = x[b].scales[e / 16];
      y[e] = d * (s & 15) * q2_at(x[b].qs, e) - dmin * (s >> 4);
    }
  }
}

float vec_dot_q2_K_q8_K(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q2_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  float sum = 0;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int32_t isum = 0, imin = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int i = 0; i < 16; ++i) s += q2_at(x[b].qs, 16 * j + i) * y[b].qs[16 * j + i];
      isum += (x[b].scales[j] & 15) * s;
      imin += (x[b].scales[j] >> 4) * y[b].bsums[j];
    }
    sum += y[b].d * (fp16_to_fp32(x[b].d) * isum - fp16_to_fp32(x[b].dmin) * imin);
  }
  return sum;
}

// ---- Q3_K

void quantize_row_q3_K_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q3_K*>(vy);
  int8_t L[QK_K];
  float sc[16];
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      sc[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
      if (std::fabs(sc[j]) > amax) {
        amax = std::fabs(sc[j]);
        max_scale = sc[j];
      }
    }
    std::memset(y[b].scales, 0, 12);
    if (max_scale != 0) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < 16; ++j) {
        int l = int8_t(nearest_int(iscale * sc[j]));
        l = std::max(-32, std::min(31, l)) + 32;
        if (j < 8)
          y[b].scales[j] = uint8_t(l & 15);
        else
          y[b].scales[j - 8] |= uint8_t((l & 15) << 4);
        y[b].scales[j % 4 + 8] |= uint8_t((l >> 4) << (2 * (j / 4)));
      }
      y[b].d = fp32_to_fp16(1 / iscale);
    } else {
      y[b].d = fp32_to_fp16(0.0f);
    }
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y[b].d) * q3k_scale(j, y[b].scales);
      if (d == 0) continue;
      for (int i = 0; i < 16; ++i)
        L[16 * j + i] = int8_t(std::max(-4, std::min(3, nearest_int(x[16 * j + i] / d))) + 4);
    }
    std::memset(y[b].hmask, 0, 32);
    uint8_t Lu[QK_K];
    for (int j = 0; j < QK_K; ++j) {
      int l = L[j];
      if (l > 3) {
        y[b].hmask[j % 32] |= uint8_t(1 << (j / 32));
        l -= 4;
      }
      Lu[j] = uint8_t(l);
    }
    pack_2bit(Lu, y[b].qs);
  }
}

namespace {
inline int q3_at(const block_q3_K& b, int e) {
  const int hi = (b.hmask[e % 32] >> (e / 32)) & 1;
  return q2_at(b.qs, e) - (hi ? 0 : 4);
}
}  // namespace

void dequantize_row_q3_K(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_q3_K*>(vx);
  for (int64_t b = 0; b < n / QK_K; ++b, y += QK_K) {
    const float d = fp16_to_fp32(x[b].d);
    for (int e = 0; e < QK_K; ++e) y[e] = d * q3k_scale(e / 16, x[b].scales) * q3_at(x[b], e);
  }
}

float vec_dot_q3_K_q8_K(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q3_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  float sum = 0;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int i = 0; i < 16; ++i) s += q3_at(x[b], 16 * j + i) * y[b].qs[16 * j + i];
      isum += q3k_scale(j, x[b].scales) * s;
    }
    sum += y[b].d * fp16_to_fp32(x[b].d) * isum;
  }
  return sum;
}

// ---- Q4_K: 64-element chunk c uses qs[32c .. 32c+31]: low nibbles are sub-block 2c, high 2c+1.

void quantize_row_q4_K_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q4_K*>(vy);
  uint8_t L[QK_K];
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    qk_scales_mins<15>(x, y[b].d, y[b].dmin, y[b].scales, L, -1.0f, 20);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l)
        y[b].qs[32 * c + l] = uint8_t(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }
}

namespace {
inline int q4k_at(const uint8_t* qs, int e) {
  const int c = e / 64, r = e % 64;
  return r < 32 ? (qs[32 * c + r] & 15) : (qs[32 * c + r - 32] >> 4);
}
inline int q5k_at(const block_q5_K& b, int e) {
  return q4k_at(b.qs, e) | (((b.qh[e % 32] >> (e / 32)) & 1) << 4);
}
}  // namespace

void dequantize_row_q4_K(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_q4_K*>(vx);
  for (int64_t b = 0; b < n / QK_K; ++b, y += QK_K) {
    const float d = fp16_to_fp32(x[b].d), dmin = fp16_to_fp32(x[b].dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      get_scale_min_k4(j, x[b].scales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      for (int i = 0; i < 32; ++i) y[32 * j + i] = d1 * q4k_at(x[b].qs, 32 * j + i) - m1;
    }
  }
}

float vec_dot_q4_K_q8_K(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q4_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  float sum = 0;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int32_t isum = 0, imin = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      get_scale_min_k4(j, x[b].scales, sc, m);
      int32_t s = 0;
      for (int i = 0; i < 32; ++i) s += q4k_at(x[b].qs, 32 * j + i) * y[b].qs[32 * j + i];
      isum += sc * s;
      imin += m * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
    }
    sum += y[b].d * (fp16_to_fp32(x[b].d) * isum - fp16_to_fp32(x[b].dmin) * imin);
  }
  return sum;
}

// ---- Q5_K: Q4_K plus bit 4 of element e in bit e / 32 of qh[e % 32].

void quantize_row_q5_K_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q5_K*>(vy);
  uint8_t L[QK_K];
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    qk_scales_mins<31>(x, y[b].d, y[b].dmin, y[b].scales, L, -0.5f, 15);
    std::memset(y[b].qh, 0, 32);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        int a = L[64 * c + l], h = L[64 * c + 32 + l];
        if (a > 15) {
          a -= 16;
          y[b].qh[l] |= uint8_t(1 << (2 * c));
        }
        if (h > 15) {
          h -= 16;
          y[b].qh[l] |= uint8_t(1 << (2 * c + 1));
        }
        y[b].qs[32 * c + l] = uint8_t(a | (h << 4));
      }
  }
}

void dequantize_row_q5_K(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_q5_K*>(vx);
  for (int64_t b = 0; b < n / QK_K; ++b, y += QK_K) {
    const float d = fp16_to_fp32(x[b].d), dmin = fp16_to_fp32(x[b].dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      get_scale_min_k4(j, x[b].scales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      for (int i = 0; i < 32; ++i) y[32 * j + i] = d1 * q5k_at(x[b], 32 * j + i) - m1;
    }
  }
}

float vec_dot_q5_K_q8_K(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q5_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  float sum = 0;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int32_t isum = 0, imin = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      get_scale_min_k4(j, x[b].scales, sc, m);
      int32_t s = 0;
      for (int i = 0; i < 32; ++i) s += q5k_at(x[b], 32 * j + i) * y[b].qs[32 * j + i];
      isum += sc * s;
      imin += m * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
    }
    sum += y[b].d * (fp16_to_fp32(x[b].d) * isum - fp16_to_fp32(x[b].dmin) * imin);
  }
  return sum;
}

// ---- Q6_K: half h (128 elements) uses ql[64h..], qh[32h..]; for l < 32 the outputs l, l+32,
// l+64, l+96 take low bits ql[l]&15, ql[l+32]&15, ql[l]>>4, ql[l+32]>>4 and high bits from qh[l]
// bits 0-1, 2-3, 4-5, 6-7.

void quantize_row_q6_K_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q6_K*>(vy);
  int8_t L[QK_K];
  float sc[16];
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    float max_scale = 0, max_abs = 0;
    for (int j = 0; j < 16; ++j) {
      sc[j] = make_qx_quants(16, 32, x + 16 * j, L + 16 * j);
      if (std::fabs(sc[j]) > max_abs) {
        max_abs = std::fabs(sc[j]);
        max_scale = sc[j];
      }
    }
    if (max_abs < kGroupMaxEps) {
      std::memset(&y[b], 0, sizeof(block_q6_K));
      y[b].d = fp32_to_fp16(0.0f);
      continue;
    }
    const float iscale = -128.0f / max_scale;
    y[b].d = fp32_to_fp16(1 / iscale);
    for (int j = 0; j < 16; ++j)
      y[b].scales[j] = int8_t(std::min(127, nearest_int(iscale * sc[j])));
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y[b].d) * y[b].scales[j];
      if (d == 0) continue;
      for (int i = 0; i < 16; ++i)
        L[16 * j + i] = int8_t(std::max(-32, std::min(31, nearest_int(x[16 * j + i] / d))) + 32);
    }
    for (int h = 0; h < 2; ++h) {
      const int8_t* Lh = L + 128 * h;
      uint8_t* ql = y[b].ql + 64 * h;
      uint8_t* qh = y[b].qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = uint8_t((Lh[l] & 15) | ((Lh[l + 64] & 15) << 4));
        ql[l + 32] = uint8_t((Lh[l + 32] & 15) | ((Lh[l + 96] & 15) << 4));
        qh[l] = uint8_t((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                        ((Lh[l + 96] >> 4) << 6));
      }
    }
  }
}

namespace {
inline int q6k_at(const block_q6_K& b, int e) {
  const int h = e / 128, r = e % 128, l = r % 32, k = r / 32;
  const uint8_t* ql = b.ql + 64 * h;
  const int lo = (k & 1 ? ql[l + 32] : ql[l]) >> (k & 2 ? 4 : 0) & 15;
  const int hi = (b.qh[32 * h + l] >> (2 * k)) & 3;
  return (lo | (hi << 4)) - 32;
}
}  // namespace

void dequantize_row_q6_K(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_q6_K*>(vx);
  for (int64_t b = 0; b < n / QK_K; ++b, y += QK_K) {
    const float d = fp16_to_fp32(x[b].d);
    for (int e = 0; e < QK_K; ++e) y[e] = d * x[b].scales[e / 16] * q6k_at(x[b], e);
  }
}

float vec_dot_q6_K_q8_K(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q6_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  float sum = 0;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int i = 0; i < 16; ++i) s += q6k_at(x[b], 16 * j + i) * y[b].qs[16 * j + i];
      isum += x[b].scales[j] * s;
    }
    sum += y[b].d * fp16_to_fp32(x[b].d) * isum;
  }
  return sum;
}

// ---- IQ4_XS: sub-block j uses qs[16j .. 16j+15] (low nibbles: elements 0-15, high: 16-31).

namespace {
inline int iq4xs_scale(const block_iq4_xs& b, int j) {
  const int lo = (b.scales_l[j / 2] >> (4 * (j % 2))) & 15;
  const int hi = (b.scales_h >> (2 * j)) & 3;
  return (lo | (hi << 4)) - 32;
}
}  // namespace

void dequantize_row_iq4_xs(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_iq4_xs*>(vx);
  for (int64_t b = 0; b < n / QK_K; ++b, y += QK_K) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < 8; ++j) {
      const float dl = d * iq4xs_scale(x[b], j);
      const uint8_t* q = x[b].qs + 16 * j;
      for (int i = 0; i < 16; ++i) {
        y[32 * j + i] = dl * kvalues_iq4nl[q[i] & 15];
        y[32 * j + 16 + i] = dl * kvalues_iq4nl[q[i] >> 4];
      }
    }
  }
}

float vec_dot_iq4_xs_q8_K(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_iq4_xs*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  float sum = 0;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < 8; ++j) {
      const uint8_t* q = x[b].qs + 16 * j;
      const int8_t* a = y[b].qs + 32 * j;
      int32_t s = 0;
      for (int i = 0; i < 16; ++i)
        s += kvalues_iq4nl[q[i] & 15] * a[i] + kvalues_iq4nl[q[i] >> 4] * a[16 + i];
      isum += iq4xs_scale(x[b], j) * s;
    }
    sum += y[b].d * fp16_to_fp32(x[b].d) * isum;
  }
  return sum;
}

void register_kquant_types(Registry& r) {
  add_type(r, {DType::Q2_K, "q2_K", QK_K, sizeof(block_q2_K), true, true, DType::Q8_K,
               dequantize_row_q2_K, quantize_row_q2_K_ref, vec_dot_q2_K_q8_K});
  add_type(r, {DType::Q3_K, "q3_K", QK_K, sizeof(block_q3_K), true, true, DType::Q8_K,
               dequantize_row_q3_K, quantize_row_q3_K_ref, vec_dot_q3_K_q8_K});
  add_type(r, {DType::Q4_K, "q4_K", QK_K, sizeof(block_q4_K), true, true, DType::Q8_K,
               dequantize_row_q4_K, quantize_row_q4_K_ref, vec_dot_q4_K_q8_K});
  add_type(r, {DType::Q5_K, "q5_K", QK_K, sizeof(block_q5_K), true, true, DType::Q8_K,
               dequantize_row_q5_K, quantize_row_q5_K_ref, vec_dot_q5_K_q8_K});
  add_type(r, {DType::Q6_K, "q6_K", QK_K, sizeof(block_q6_K), true, true, DType::Q8_K,
               dequantize_row_q6_K, quantize_row_q6_K_ref, vec_dot_q6_K_q8_K});
  add_type(r, {DType::Q8_K, "q8_K", QK_K, sizeof(block_q8_K), true, false, DType::Q8_K,
               dequantize_row_q8_K, quantize_row_q8_K_ref, nullptr});
  add_type(r, {DType::IQ4_XS, "iq4_xs", QK_K, sizeof(block_iq4_xs), true, true, DType::Q8_K,
               dequantize_row_iq4_xs, quantize_row_iq4_xs_ref, vec_dot_iq4_xs_q8_K});
}

}  // namespace hearth
