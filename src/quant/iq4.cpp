// IQ4_NL and IQ4_XS quantization: a non-linear 4-bit code book (kvalues_iq4nl) with a weighted
// least-squares scale search per 32-element block, as llama.cpp does without an importance
// matrix (weights = x²). IQ4_XS then quantizes the 8 block scales of a 256 super-block to 6 bits.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "quant/blocks.h"
#include "quant/kquants.h"
#include "quant/legacy.h"
#include "quant/rounding.h"

namespace hearth {
namespace {

constexpr float kGroupMaxEps = 1e-15f;

// Index of the code-book entry nearest to x (ties to the upper entry).
int best_index(const int8_t* v, float x) {
  if (x <= v[0]) return 0;
  if (x >= v[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (x < v[mid])
      hi = mid;
    else
      lo = mid;
  }
  return x - v[hi - 1] < v[hi] - x ? hi - 1 : hi;
}

// Quantizes one super-block of `sb` elements in blocks of 32. Writes L (code indices), the block
// scales (IQ4_XS: 6-bit, into scales_h/scales_l) and the f16 super scale.
void iq4_superblock(int sb, const float* x, uint16_t* dh, uint8_t* q4, uint16_t* scales_h,
                    uint8_t* scales_l) {
  const int8_t* values = kvalues_iq4nl;
  constexpr int ntry = 7;
  float scales[QK_K / 32];
  float weight[32];
  uint8_t L[QK_K];
  std::memset(q4, 0, size_t(sb / 2));
  *dh = fp32_to_fp16(0.0f);
  float max_scale = 0, amax_scale = 0;
  const int nb = sb / 32;
  for (int ib = 0; ib < nb; ++ib) {
    const float* xb = x + ib * 32;
    uint8_t* Lb = L + ib * 32;
    for (int j = 0; j < 32; ++j) weight[j] = xb[j] * xb[j];
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(xb[j]) > amax) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    if (amax < kGroupMaxEps) {
      scales[ib] = 0;
      continue;
    }
    float d = -max / values[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; ++j) {
      const int l = best_index(values, id * xb[j]);
      Lb[j] = uint8_t(l);
      const float q = values[l];
      sumqx += weight[j] * q * xb[j];
      sumq2 += weight[j] * q * q;
    }
    d = sumqx / sumq2;
    float best = d * sumqx;
    for (int itry = -ntry; itry <= ntry; ++itry) {
      id = (itry + values[0]) / max;
      sumqx = sumq2 = 0;
      for (int j = 0; j < 32; ++j) {
        const float q = values[best_index(values, id * xb[j])];
        sumqx += weight[j] * q * xb[j];
        sumq2 += weight[j] * q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
    if (std::fabs(d) > amax_scale) {
      amax_scale = std::fabs(d);
      max_scale = d;
    }
  }
  if (nb > 1) {
    *scales_h = 0;
    const float d = -max_scale / 32;
    *dh = fp32_to_fp16(d);
    const float id = d != 0 ? 1 / d : 0.0f;
    for (int ib = 0; ib < nb; ++ib) {
      int l = nearest_int(id * scales[ib]);
      l = std::max(-32, std::min(31, l));
      const float dl = d * l;
      const float idl = dl != 0 ? 1 / dl : 0.0f;
      for (int j = 0; j < 32; ++j)
        L[ib * 32 + j] = uint8_t(best_index(values, idl * x[ib * 32 + j]));
      l += 32;
      if (ib % 2 == 0)
        scales_l[ib / 2] = uint8_t(l & 15);
      else
        scales_l[ib / 2] |= uint8_t((l & 15) << 4);
      *scales_h |= uint16_t((l >> 4) << (2 * ib));
    }
  } else {
    *dh = fp32_to_fp16(scales[0]);
    const float id = scales[0] != 0 ? 1 / scales[0] : 0.0f;
    for (int j = 0; j < sb; ++j) L[j] = uint8_t(best_index(values, id * x[j]));
  }
  for (int i = 0; i < sb / 32; ++i)
    for (int j = 0; j < 16; ++j)
      q4[16 * i + j] = uint8_t(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

}  // namespace

void quantize_row_iq4_nl_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_iq4_nl*>(vy);
  for (int64_t b = 0; b < n / QK4_NL; ++b)
    iq4_superblock(QK4_NL, x + b * QK4_NL, &y[b].d, y[b].qs, nullptr, nullptr);
}

void quantize_row_iq4_xs_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_iq4_xs*>(vy);
  for (int64_t b = 0; b < n / QK_K; ++b)
    iq4_superblock(QK_K, x + b * QK_K, &y[b].d, y[b].qs, &y[b].scales_h, y[b].scales_l);
}

}  // namespace hearth
