// kernels/unpack_rows.h — weight super-blocks (256 elements) unpacked to unsigned bytes u with a
// float scale and offset per group of 16 or 32 elements, so that weight = scale[g] * u - off[g].
// Header-only with internal linkage: each ISA folder includes it and gets a copy compiled with its
// own flags (the scalar code may be auto-vectorised with that ISA).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "base/fp16.h"
#include "quant/blocks.h"
#include "quant/kquants.h"
#include "quant/types.h"

namespace hearth::kernels {

struct RowUnpack {
  alignas(64) uint8_t u[256];
  float scale[16];
  float off[16];
  // The AVX-512 K-quant unpackers (Q8_K activations) also give the integer form its rows-16
  // GEMM sums in: weight = d * isc[g] * u - dmin * imin[g] (scale = d * isc, off = dmin * imin).
  int16_t isc[16];
  int16_t imin[16];
  float d, dmin;
  // Signed-weight forms only (u holds signed bytes; the AVX2 sign-trick GEMM): |u|, so the
  // inner loop does not take the absolute value once per column tile. Not touched otherwise.
  alignas(64) uint8_t su[256];
};

// Unpacks super-block `sb` (256 elements) of one weight row.
using UnpackFn = void (*)(const uint8_t* row, int64_t sb, RowUnpack& out);

namespace {

inline float _h2f(uint16_t h) {
  return fp16_to_fp32(h);
}

// Q4_K / Q5_K: 8 groups of 32 with 6-bit scales and mins (weight = d * sc * q - dmin * m).
inline void k4_row_scales(const uint8_t* scales, uint16_t d16, uint16_t dmin16, RowUnpack& o) {
  const float d = _h2f(d16), dmin = _h2f(dmin16);
  o.d = d;
  o.dmin = dmin;
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, scales, sc, m);
    o.scale[j] = d * sc;
    o.off[j] = dmin * m;
    o.isc[j] = sc;
    o.imin[j] = m;
  }
}

// ---- Unpackers: element i of the super-block -> o.u[i].

inline void unpack_q5_K(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const block_q5_K& b = reinterpret_cast<const block_q5_K*>(row)[sb];
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      o.u[64 * c + l] = uint8_t((b.qs[32 * c + l] & 15) | (((b.qh[l] >> (2 * c)) & 1) << 4));
      o.u[64 * c + 32 + l] =
          uint8_t((b.qs[32 * c + l] >> 4) | (((b.qh[l] >> (2 * c + 1)) & 1) << 4));
    }
  k4_row_scales(b.scales, b.d, b.dmin, o);
}

inline void unpack_q2_K(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const block_q2_K& b = reinterpret_cast<const block_q2_K*>(row)[sb];
  for (int e = 0; e < 256; ++e)
    o.u[e] = uint8_t((b.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3);
  const float d = _h2f(b.d), dmin = _h2f(b.dmin);
  for (int j = 0; j < 16; ++j) {
    o.scale[j] = d * (b.scales[j] & 15);
    o.off[j] = dmin * (b.scales[j] >> 4);
  }
}

inline void unpack_q3_K(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const block_q3_K& b = reinterpret_cast<const block_q3_K*>(row)[sb];
  for (int e = 0; e < 256; ++e) {
    const int q2 = (b.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    const int hi = (b.hmask[e % 32] >> (e / 32)) & 1;
    o.u[e] = uint8_t(q2 + 4 * hi);  // value q2 - 4 * (1 - hi), stored + 4
  }
  const float d = _h2f(b.d);
  for (int j = 0; j < 16; ++j) {
    o.scale[j] = d * q3k_scale(j, b.scales);
    o.off[j] = 4.0f * o.scale[j];
  }
}

inline void unpack_iq4_xs(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const block_iq4_xs& b = reinterpret_cast<const block_iq4_xs*>(row)[sb];
  const float d = _h2f(b.d);
  for (int j = 0; j < 8; ++j) {
    const uint8_t* q = b.qs + 16 * j;
    for (int i = 0; i < 16; ++i) {
      o.u[32 * j + i] = uint8_t(kvalues_iq4nl[q[i] & 15] + 128);
      o.u[32 * j + 16 + i] = uint8_t(kvalues_iq4nl[q[i] >> 4] + 128);
    }
    const int ls =
        ((b.scales_l[j / 2] >> (4 * (j % 2))) & 15) | (((b.scales_h >> (2 * j)) & 3) << 4);
    o.scale[j] = d * float(ls - 32);
    o.off[j] = 128.0f * o.scale[j];
  }
}

inline void unpack_q4_K(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const block_q4_K& b = reinterpret_cast<const block_q4_K*>(row)[sb];
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      o.u[64 * c + l] = b.qs[32 * c + l] & 15;
      o.u[64 * c + 32 + l] = b.qs[32 * c + l] >> 4;
    }
  k4_row_scales(b.scales, b.d, b.dmin, o);
}

// 6-bit quants q with weight = d * scale[j] * (q - 32), 16 groups of 16.
inline void unpack_q6_K(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const block_q6_K& b = reinterpret_cast<const block_q6_K*>(row)[sb];
  for (int n = 0; n < 2; ++n) {
    const uint8_t* ql = b.ql + 64 * n;
    const uint8_t* qh = b.qh + 32 * n;
    uint8_t* u = o.u + 128 * n;
    for (int l = 0; l < 32; ++l) {
      u[l] = uint8_t((ql[l] & 15) | ((qh[l] & 3) << 4));
      u[l + 32] = uint8_t((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4));
      u[l + 64] = uint8_t((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
      u[l + 96] = uint8_t((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
    }
  }
  const float d = _h2f(b.d);
  for (int j = 0; j < 16; ++j) {
    o.scale[j] = d * float(b.scales[j]);
    o.off[j] = 32.0f * o.scale[j];
  }
}

// 32-wide types: a "super-block" is 8 consecutive blocks.
inline void unpack_q8_0(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const auto* b = reinterpret_cast<const block_q8_0*>(row) + 8 * sb;
  for (int k = 0; k < 8; ++k) {
    for (int i = 0; i < 32; ++i) o.u[32 * k + i] = uint8_t(int(b[k].qs[i]) + 128);
    o.scale[k] = _h2f(b[k].d);
    o.off[k] = 128.0f * o.scale[k];
  }
}

inline void unpack_q4_0(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const auto* b = reinterpret_cast<const block_q4_0*>(row) + 8 * sb;
  for (int k = 0; k < 8; ++k) {
    for (int i = 0; i < 16; ++i) {
      o.u[32 * k + i] = b[k].qs[i] & 15;
      o.u[32 * k + 16 + i] = b[k].qs[i] >> 4;
    }
    o.scale[k] = _h2f(b[k].d);
    o.off[k] = 8.0f * o.scale[k];
  }
}

inline void unpack_q5_0(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const auto* b = reinterpret_cast<const block_q5_0*>(row) + 8 * sb;
  for (int k = 0; k < 8; ++k) {
    uint32_t qh;
    std::memcpy(&qh, b[k].qh, 4);
    for (int i = 0; i < 16; ++i) {
      o.u[32 * k + i] = uint8_t((b[k].qs[i] & 15) | (((qh >> i) & 1) << 4));
      o.u[32 * k + 16 + i] = uint8_t((b[k].qs[i] >> 4) | (((qh >> (i + 16)) & 1) << 4));
    }
    o.scale[k] = _h2f(b[k].d);
    o.off[k] = 16.0f * o.scale[k];
  }
}

// x = d * q + m: u = q, offset -m.
inline void unpack_q4_1(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const auto* b = reinterpret_cast<const block_q4_1*>(row) + 8 * sb;
  for (int k = 0; k < 8; ++k) {
    for (int i = 0; i < 16; ++i) {
      o.u[32 * k + i] = b[k].qs[i] & 15;
      o.u[32 * k + 16 + i] = b[k].qs[i] >> 4;
    }
    o.scale[k] = _h2f(b[k].d);
    o.off[k] = -_h2f(b[k].m);
  }
}

inline void unpack_q5_1(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const auto* b = reinterpret_cast<const block_q5_1*>(row) + 8 * sb;
  for (int k = 0; k < 8; ++k) {
    uint32_t qh;
    std::memcpy(&qh, b[k].qh, 4);
    for (int i = 0; i < 16; ++i) {
      o.u[32 * k + i] = uint8_t((b[k].qs[i] & 15) | (((qh >> i) & 1) << 4));
      o.u[32 * k + 16 + i] = uint8_t((b[k].qs[i] >> 4) | (((qh >> (i + 16)) & 1) << 4));
    }
    o.scale[k] = _h2f(b[k].d);
    o.off[k] = -_h2f(b[k].m);
  }
}

inline void unpack_iq4_nl(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const auto* b = reinterpret_cast<const block_iq4_nl*>(row) + 8 * sb;
  for (int k = 0; k < 8; ++k) {
    for (int i = 0; i < 16; ++i) {
      o.u[32 * k + i] = uint8_t(kvalues_iq4nl[b[k].qs[i] & 15] + 128);
      o.u[32 * k + 16 + i] = uint8_t(kvalues_iq4nl[b[k].qs[i] >> 4] + 128);
    }
    o.scale[k] = _h2f(b[k].d);
    o.off[k] = 128.0f * o.scale[k];
  }
}

}  // namespace
}  // namespace hearth::kernels
