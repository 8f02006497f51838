// AVX-512 VNNI prefill GEMM with weight rows interleaved 16 to a vector (issue #19).
//
// The column GEMM (kernels/x86/gemm_cols.h) broadcasts 4 weight bytes for every vpdpbusd: one load
// per multiply, so its inner loop is bound by loads, and its activation tile (16 columns x K)
// outgrows L1 for the FFN's K. Here the roles are swapped:
//   - weights: a block of rows is unpacked once per call (UnpackFn, any quant type) and transposed
//     so one zmm holds 4 consecutive K bytes of 16 rows — lane i = row i;
//   - activations: 4 bytes of one column are broadcast straight from its Q8 row (no repacking of
//     the activations at all);
//   - a register tile of RZ x 16 rows by C columns does RZ x C vpdpbusd per RZ + C loads;
//   - K is taken in chunks of kChunk elements so a tile's weights (RZ x 16 rows x kChunk bytes)
//     stay in L1 while every column sweeps them; partial sums go through Y (the tile's 16 rows of
//     one column are 64 contiguous bytes of Y).
//   true weight = scale[g] * u - off[g]   =>   y = sum_g dy_g * (scale[g] * sum(u * a) - off[g] *
//   sum(a))  — the same algebra as gemm_cols, so the two agree to float rounding.
// With Q8_K activations (one d per 256) and K-quant weights (integer sub-block scales: Block16's
// integer form) a super-block is summed in int32, exactly:
//   mins (Q4_K, Q5_K, Q2_K):  y += d_a * (d * sum_g isc[g] * sum(u * a) - dmin * sum_g imin[g] *
//                             bsum_g), the mins' sum by vpdpwssd once per super-block;
//   zero point zp (Q6_K, Q3_K, IQ4_XS):  y += d_a * d * sum_g isc[g] * (sum(u * a) - zp * bsum_g),
//                             each group's dot starting from -zp * bsum_g instead of 0;
// per group an integer multiply-add where the float form spends a conversion and three FMA-unit
// ops per accumulator (on Zen 5 vpmulld / vpaddd issue beside vpdpbusd, the float ops compete
// with it for the same two pipes), and the float step once per super-block.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "base/fp16.h"
#include "kernels/x86_avx512/gemm_vnni.h"
#include "quant/blocks.h"

namespace hearth::kernels::avx512 {
namespace {

constexpr int kChunk = 512;  // K elements per pass over the columns
constexpr int kGroupsPerChunk = kChunk / 32;

// How a tile applies the scales and offsets: Block16's float form (Q8_0 / Q8_1 activations), or
// its integer form (Q8_K) with per-row mins (imin2, dmin: Q4_K, Q5_K, Q2_K) or with a fixed zero
// point (weight = d * isc * (q - zp): Q6_K, Q3_K, IQ4_XS), summed into the dots.
enum class Form { kFloat, kMins, kZeroPoint };

// Transposes the unpacked super-block of 16 rows into the interleaved form (16 x 16 dwords per
// 64 bytes of K, done with the standard 4-stage shuffle network).
void interleave(const RowUnpack* const* rows, int n_valid, int ng, bool ints, Block16& b) {
  for (int part = 0; part < 4; ++part) {  // K bytes 64*part .. 64*part+63: quads 16*part..+15
    __m512i v[16];
    for (int r = 0; r < 16; ++r)
      v[r] = r < n_valid ? _mm512_load_si512(rows[r]->u + 64 * part) : _mm512_setzero_si512();
    // 16x16 transpose of 32-bit elements: v[r] lane j -> out[j] lane r.
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
      t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
      v[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
      v[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
      v[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
      v[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    // Now v[4a + k] holds, per 128-bit lane L, dword k of rows 4a..4a+3 for K-quad 4L + ... :
    // lane L of v[4a + k] = (row 4a .. 4a+3) x quad (4L + k) within this 64-byte part.
    for (int a = 0; a < 4; ++a)
      for (int k = 0; k < 4; ++k) t[4 * a + k] = v[4 * a + k];
    for (int k = 0; k < 4; ++k) {
      // Gather, for quad index 4L + k, the four 128-bit lanes L of t[k], t[4+k], t[8+k], t[12+k]
      // (rows 0-3, 4-7, 8-11, 12-15) into one zmm per L.
      const __m512i ab_lo = _mm512_shuffle_i32x4(t[k], t[4 + k], 0x44);  // L0,L1 of a | b
      const __m512i ab_hi = _mm512_shuffle_i32x4(t[k], t[4 + k], 0xEE);  // L2,L3
      const __m512i cd_lo = _mm512_shuffle_i32x4(t[8 + k], t[12 + k], 0x44);
      const __m512i cd_hi = _mm512_shuffle_i32x4(t[8 + k], t[12 + k], 0xEE);
      // L0: a.L0 b.L0 c.L0 d.L0
      _mm512_store_si512(b.q[16 * part + 4 * 0 + k], _mm512_shuffle_i32x4(ab_lo, cd_lo, 0x88));
      _mm512_store_si512(b.q[16 * part + 4 * 1 + k], _mm512_shuffle_i32x4(ab_lo, cd_lo, 0xDD));
      _mm512_store_si512(b.q[16 * part + 4 * 2 + k], _mm512_shuffle_i32x4(ab_hi, cd_hi, 0x88));
      _mm512_store_si512(b.q[16 * part + 4 * 3 + k], _mm512_shuffle_i32x4(ab_hi, cd_hi, 0xDD));
    }
  }
  if (!ints) {
    for (int g = 0; g < ng; ++g)
      for (int r = 0; r < 16; ++r) {
        b.scale[g][r] = r < n_valid ? rows[r]->scale[g] : 0.0f;
        b.off[g][r] = r < n_valid ? rows[r]->off[g] : 0.0f;
      }
    return;
  }
  for (int r = 0; r < 16; ++r) {
    const bool v = r < n_valid;
    for (int g = 0; g < ng; ++g) b.isc[g][r] = v ? rows[r]->isc[g] : 0;
    for (int j = 0; j < ng / 2; ++j)
      b.imin2[j][r] = v ? int32_t(uint16_t(rows[r]->imin[2 * j]) |
                                  uint32_t(uint16_t(rows[r]->imin[2 * j + 1])) << 16)
                        : 0;
    b.d[r] = v ? rows[r]->d : 0.0f;
    b.dmin[r] = v ? rows[r]->dmin : 0.0f;
  }
}

// Where the 32-element group g of an activation row starts, and its scale.
struct ActLayout {
  size_t block_bytes;
  int groups_per_block;  // 8 for Q8_K (one d per 256), 1 for Q8_0 / Q8_1
  size_t qs_off;
  size_t group_off(int64_t g) const {
    return size_t(g / groups_per_block) * block_bytes + qs_off + size_t(g % groups_per_block) * 32;
  }
};

ActLayout act_layout(ActFormat f) {
  switch (f) {
    case ActFormat::kQ8K:
      return {sizeof(block_q8_K), 8, offsetof(block_q8_K, qs)};
    case ActFormat::kQ8_0:
      return {sizeof(block_q8_0), 1, offsetof(block_q8_0, qs)};
    default:
      return {sizeof(block_q8_1), 1, offsetof(block_q8_1, qs)};
  }
}

// Per column: dy per 32-group and the sum of the int8 values per scale group (ys), as the offset
// term needs; column-major [m][g].
void column_sums(ActFormat fmt, int group, int64_t K, const uint8_t* A, size_t a_stride, int64_t M,
                 float* dy, float* ys) {
  const int64_t n32 = K / 32, per = 32 / group, nys = K / group;
  for (int64_t m = 0; m < M; ++m) {
    const uint8_t* row = A + m * a_stride;
    for (int64_t g = 0; g < n32; ++g) {
      const int8_t* q;
      float d;
      if (fmt == ActFormat::kQ8K) {
        const auto* b = reinterpret_cast<const block_q8_K*>(row) + g / 8;
        q = b->qs + (g % 8) * 32;
        d = b->d;
        // bsums hold the sums of 16: one or two per group.
        const int16_t* bs = b->bsums + (g % 8) * 2;
        if (per == 2) {
          ys[m * nys + 2 * g] = float(bs[0]);
          ys[m * nys + 2 * g + 1] = float(bs[1]);
        } else {
          ys[m * nys + g] = float(bs[0] + bs[1]);
        }
        dy[m * n32 + g] = d;
        continue;
      }
      if (fmt == ActFormat::kQ8_0) {
        const auto* b = reinterpret_cast<const block_q8_0*>(row) + g;
        q = b->qs;
        d = fp16_to_fp32(b->d);
      } else {
        const auto* b = reinterpret_cast<const block_q8_1*>(row) + g;
        q = b->qs;
        d = fp16_to_fp32(b->d);
      }
      dy[m * n32 + g] = d;
      for (int s = 0; s < per; ++s) {
        int sum = 0;
        for (int i = 0; i < group; ++i) sum += q[s * group + i];
        float v = float(sum);
        // Q8_1 carries s = d * sum(q) rounded to f16; the reference's offset term uses it.
        if (fmt == ActFormat::kQ8_1 && d != 0)
          v = fp16_to_fp32(reinterpret_cast<const block_q8_1*>(row)[g].s) / d;
        ys[m * nys + g * per + s] = v;
      }
    }
  }
}

// The integer forms' activation sums (Q8_K's bsums, per 16), per column m and super-block sb at
// out + (m * nsb + sb) * 16:
//   kMins: dword j = the sums of groups 2j and 2j + 1 as an int16 pair (|sum| <= 32 * 128), the
//     operand of vpdpwssd against Block16's imin2;
//   kZeroPoint: dword g = -zp * the sum of group g, the start of group g's dot, so that it sums
//     (q - zp) * a (|.| <= 32 * 128 * 128 per group).
void int_sums(Form form, int group, int zp, int64_t K, const uint8_t* A, size_t a_stride, int64_t M,
              int32_t* out) {
  const int64_t nsb = K / 256;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t sb = 0; sb < nsb; ++sb) {
      const int16_t* bs = (reinterpret_cast<const block_q8_K*>(A + m * a_stride) + sb)->bsums;
      int32_t gs[16];  // per group
      const int ng = 256 / group;
      for (int g = 0; g < ng; ++g) gs[g] = group == 16 ? bs[g] : bs[2 * g] + bs[2 * g + 1];
      int32_t* o = out + (m * nsb + sb) * 16;
      for (int j = 0; j < 16; ++j) o[j] = 0;
      if (form == Form::kZeroPoint)
        for (int g = 0; g < ng; ++g) o[g] = -zp * gs[g];
      else
        for (int j = 0; j < ng / 2; ++j)
          o[j] = int32_t(uint32_t(uint16_t(gs[2 * j])) | uint32_t(uint16_t(gs[2 * j + 1])) << 16);
    }
}

// What a tile reads: the rows (RZ consecutive interleaved groups, `gstride` Block16s apart), the
// C activation rows and their sums, the 32-groups [g0, g1) of one chunk; y: Y of the tile (column
// c's 16 rows of group z at y + c * ldy + 16 * z); first: the chunk starts the sum.
struct TileArgs {
  const Block16* blk;
  size_t gstride;
  int64_t g0, g1;
  const uint8_t* const* col;
  const size_t* goff;         // float form: byte offset of each 32-group in an activation row
  const float* const* dyc;    // float form: dy per 32-group
  const float* const* ysc;    // float form: activation sum per scale group
  const int32_t* const* isc;  // integer forms: int_sums of each column
  float* y;
  size_t ldy;
  bool first;
};

// RZ x 16 rows (RZ consecutive interleaved groups, `gstride` Block16s apart) by C columns over the
// 32-groups [g0, g1) of one chunk. acc: Y of the tile (column c's 16 rows of group z at
// y + c * ldy + 16 * z); first: the chunk starts the sum.
template <int RZ, int C, int GROUP>
void tile_float(const TileArgs& t) {
  const Block16* blk = t.blk;
  const size_t gstride = t.gstride, ldy = t.ldy;
  const int64_t g0 = t.g0, g1 = t.g1;
  const uint8_t* const* col = t.col;
  const size_t* goff = t.goff;
  const float* const* dyc = t.dyc;
  const float* const* ysc = t.ysc;
  float* y = t.y;
  const bool first = t.first;
  constexpr int per = 32 / GROUP, steps = GROUP / 4;
  __m512 f[RZ][C];
  for (int z = 0; z < RZ; ++z)
    for (int c = 0; c < C; ++c)
      f[z][c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + c * ldy + 16 * z);
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t sb = g >> 3;
    const int gi = int(g & 7);
    const uint8_t* ac[C];
    for (int c = 0; c < C; ++c) ac[c] = col[c] + goff[g];
    const Block16* bz[RZ];
    for (int z = 0; z < RZ; ++z) bz[z] = blk + z * gstride + size_t(sb);
    for (int sub = 0; sub < per; ++sub) {
      __m512i is[RZ][C];
      for (int z = 0; z < RZ; ++z)
        for (int c = 0; c < C; ++c) is[z][c] = _mm512_setzero_si512();
      for (int s = 0; s < steps; ++s) {
        const int k = sub * steps + s;  // quad within the group
        __m512i w[RZ];
        for (int z = 0; z < RZ; ++z) w[z] = _mm512_load_si512(bz[z]->q[gi * 8 + k]);
        for (int c = 0; c < C; ++c) {
          int32_t a4;
          std::memcpy(&a4, ac[c] + 4 * k, 4);
          const __m512i a = _mm512_set1_epi32(a4);
          for (int z = 0; z < RZ; ++z) is[z][c] = _mm512_dpbusd_epi32(is[z][c], w[z], a);
        }
      }
      const int sg = gi * per + sub;      // scale group within the super-block
      const int64_t gys = g * per + sub;  // scale group within the row
      for (int z = 0; z < RZ; ++z) {
        const __m512 sc = _mm512_load_ps(bz[z]->scale[sg]);
        const __m512 of = _mm512_load_ps(bz[z]->off[sg]);
        for (int c = 0; c < C; ++c) {
          const __m512 v = _mm512_fmsub_ps(_mm512_cvtepi32_ps(is[z][c]), sc,
                                           _mm512_mul_ps(of, _mm512_set1_ps(ysc[c][gys])));
          f[z][c] = _mm512_fmadd_ps(v, _mm512_set1_ps(dyc[c][g]), f[z][c]);
        }
      }
    }
  }
  for (int z = 0; z < RZ; ++z)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + c * ldy + 16 * z, f[z][c]);
}

// The integer forms over the super-blocks of [g0, g1). Bounds (|a| <= 128): a group's dot is at
// most 32 * 15 * 128 (Q4_K), 32 * 31 * 128 (Q5_K), 16 * 32 * 128 (Q6_K, q - 32) or 32 * 128 * 128
// (IQ4_XS, q - 128), times |isc| <= 63, 63, 128 or 32, summed over 8 or 16 groups: < 2^28; the
// mins: 4 or 8 pairs of imin <= 63 by |bsum| <= 4096.
template <int RZ, int C, int GROUP, Form F>
void tile_int(const TileArgs& t) {
  constexpr int ng = 256 / GROUP, steps = GROUP / 4;
  const int64_t sb0 = t.g0 / 8, sb1 = t.g1 / 8;
  // The tile's sums over the chunk, apart from Y: Y's columns are ldy floats apart (often a
  // multiple of 4 KiB), and its loads would wait on the stores of the previous super-block.
  alignas(64) float f[RZ][C][16];
  for (int z = 0; z < RZ; ++z)
    for (int c = 0; c < C; ++c)
      _mm512_store_ps(f[z][c],
                      t.first ? _mm512_setzero_ps() : _mm512_loadu_ps(t.y + c * t.ldy + 16 * z));
  const uint8_t* col[C];
  const int32_t* isc[C];
  for (int c = 0; c < C; ++c) col[c] = t.col[c], isc[c] = t.isc[c];
  for (int64_t sb = sb0; sb < sb1; ++sb) {
    const block_q8_K* ab[C];
    const int32_t* is16[C];
    for (int c = 0; c < C; ++c) {
      ab[c] = reinterpret_cast<const block_q8_K*>(col[c]) + sb;
      is16[c] = isc[c] + sb * 16;
    }
    const Block16* bz[RZ];
    for (int z = 0; z < RZ; ++z) bz[z] = t.blk + z * t.gstride + size_t(sb);
    __m512i acc[RZ][C];
    for (int z = 0; z < RZ; ++z)
      for (int c = 0; c < C; ++c) acc[z][c] = _mm512_setzero_si512();
    for (int g = 0; g < ng; ++g) {
      __m512i is[RZ][C];
      for (int c = 0; c < C; ++c) {
        // The zero point's -zp * bsum: a broadcast load where kMins zeroes a register.
        const __m512i i0 =
            F == Form::kZeroPoint ? _mm512_set1_epi32(is16[c][g]) : _mm512_setzero_si512();
        for (int z = 0; z < RZ; ++z) is[z][c] = i0;
      }
      for (int s = 0; s < steps; ++s) {
        const int k = g * steps + s;  // quad within the super-block
        __m512i w[RZ];
        for (int z = 0; z < RZ; ++z) w[z] = _mm512_load_si512(bz[z]->q[k]);
        for (int c = 0; c < C; ++c) {
          int32_t a4;
          std::memcpy(&a4, ab[c]->qs + 4 * k, 4);
          const __m512i a = _mm512_set1_epi32(a4);
          for (int z = 0; z < RZ; ++z) is[z][c] = _mm512_dpbusd_epi32(is[z][c], w[z], a);
        }
      }
      for (int z = 0; z < RZ; ++z) {
        const __m512i sc = _mm512_load_si512(bz[z]->isc[g]);
        for (int c = 0; c < C; ++c)
          acc[z][c] = _mm512_add_epi32(acc[z][c], _mm512_mullo_epi32(is[z][c], sc));
      }
    }
    if constexpr (F == Form::kMins) {
      // All RZ x C min sums at once: independent chains (the group accumulators are free now).
      __m512i mn[RZ][C];
      for (int z = 0; z < RZ; ++z)
        for (int c = 0; c < C; ++c) mn[z][c] = _mm512_setzero_si512();
      for (int j = 0; j < ng / 2; ++j)
        for (int z = 0; z < RZ; ++z) {
          const __m512i mi = _mm512_load_si512(bz[z]->imin2[j]);
          for (int c = 0; c < C; ++c)
            mn[z][c] = _mm512_dpwssd_epi32(mn[z][c], mi, _mm512_set1_epi32(is16[c][j]));
        }
      for (int z = 0; z < RZ; ++z) {
        const __m512 d = _mm512_load_ps(bz[z]->d), dmin = _mm512_load_ps(bz[z]->dmin);
        for (int c = 0; c < C; ++c) {
          const __m512 v = _mm512_fmsub_ps(_mm512_cvtepi32_ps(acc[z][c]), d,
                                           _mm512_mul_ps(_mm512_cvtepi32_ps(mn[z][c]), dmin));
          _mm512_store_ps(f[z][c],
                          _mm512_fmadd_ps(v, _mm512_set1_ps(ab[c]->d), _mm512_load_ps(f[z][c])));
        }
      }
    } else {
      for (int z = 0; z < RZ; ++z) {
        const __m512 d = _mm512_load_ps(bz[z]->d);
        for (int c = 0; c < C; ++c)
          _mm512_store_ps(f[z][c], _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[z][c]),
                                                   _mm512_mul_ps(d, _mm512_set1_ps(ab[c]->d)),
                                                   _mm512_load_ps(f[z][c])));
      }
    }
  }
  for (int z = 0; z < RZ; ++z)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(t.y + c * t.ldy + 16 * z, _mm512_load_ps(f[z][c]));
}

using TileFn = void (*)(const TileArgs&);

template <int RZ, int C, int GROUP, Form F>
TileFn tile_fn() {
  if constexpr (F == Form::kFloat)
    return tile_float<RZ, C, GROUP>;
  else
    return tile_int<RZ, C, GROUP, F>;
}

// RZ row groups by 1..C columns for one GROUP and form.
template <int RZ, int C, int GROUP, Form F>
TileFn tile_for(int nc) {
  static_assert(C <= 6);
  TileFn fs[6] = {tile_fn<RZ, 1, GROUP, F>(),
                  tile_fn<RZ, std::min(2, C), GROUP, F>(),
                  tile_fn<RZ, std::min(3, C), GROUP, F>(),
                  tile_fn<RZ, std::min(4, C), GROUP, F>(),
                  tile_fn<RZ, std::min(5, C), GROUP, F>(),
                  tile_fn<RZ, std::min(6, C), GROUP, F>()};
  return fs[nc - 1];
}

template <int RZ, int C, Form F>
TileFn tile_for(int group, int nc) {
  return group == 32 ? tile_for<RZ, C, 32, F>(nc) : tile_for<RZ, C, 16, F>(nc);
}

template <int RZ, int C>
TileFn tile_for(Form form, int group, int nc) {
  switch (form) {
    case Form::kMins:
      return tile_for<RZ, C, Form::kMins>(group, nc);
    case Form::kZeroPoint:
      return tile_for<RZ, C, Form::kZeroPoint>(group, nc);
    default:
      return tile_for<RZ, C, Form::kFloat>(group, nc);
  }
}

// The GEMM over interleaved super-blocks: fill(q, n_valid, sb, block) writes super-block sb of
// 16-row group q (rows 16q .. 16q + n_valid - 1, the rest zero) before its tiles use it.
template <class Fill>
void rows16(Fill&& fill, int group, ActFormat act, int zero_point, int64_t K, int64_t n_rows,
            const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy) {
  constexpr int kRZ = 3, kC = 4;
  const auto* a = static_cast<const uint8_t*>(A);
  const int64_t nsb = K / 256, n32 = K / 32;
  const ActLayout al = act_layout(act);
  const Form form = act != ActFormat::kQ8K ? Form::kFloat
                    : zero_point > 0       ? Form::kZeroPoint
                                           : Form::kMins;
  const bool ints = form != Form::kFloat;
  // Per-thread scratch, grown on demand (prefill only).
  thread_local std::vector<float> dy, ys;
  thread_local std::vector<int32_t> isums;
  thread_local std::vector<size_t> goff;  // byte offset of each 32-group in an activation row
  if (ints) {
    if (isums.size() < size_t(M * nsb * 16)) isums.resize(size_t(M * nsb * 16));
    int_sums(form, group, zero_point, K, a, a_stride, M, isums.data());
  } else {
    if (dy.size() < size_t(M * n32)) dy.resize(size_t(M * n32));
    if (ys.size() < size_t(M * (K / group))) ys.resize(size_t(M * (K / group)));
    column_sums(act, group, K, a, a_stride, M, dy.data(), ys.data());
    goff.resize(size_t(n32));
    for (int64_t g = 0; g < n32; ++g) goff[size_t(g)] = al.group_off(g);
  }
  // Rows in blocks of whole 16-row groups, ~256 KiB interleaved (L2), unpacked once per call.
  const int64_t groups_per_block =
      std::max<int64_t>(kRZ, int64_t(256 * 1024 / (nsb * sizeof(Block16))) / kRZ * kRZ);
  thread_local std::vector<Block16> il;
  if (il.size() < size_t(groups_per_block * nsb)) il.resize(size_t(groups_per_block * nsb));
  // A tile of rows whose count is not a multiple of 16 writes its padding lanes to a scratch Y.
  thread_local std::vector<float> ypad;
  const int64_t rows16 = (n_rows + 15) / 16;
  const bool pad = n_rows % 16 != 0;
  if (pad && ypad.size() < size_t(M) * 16 * kRZ) ypad.resize(size_t(M) * 16 * kRZ);
  const TileFn full = tile_for<kRZ, kC>(form, group, kC);
  const TileFn single = tile_for<1, kC>(form, group, kC);
  for (int64_t q0 = 0; q0 < rows16; q0 += groups_per_block) {
    const int64_t q1 = std::min(rows16, q0 + groups_per_block);
    for (int64_t q = q0; q < q1; ++q) {
      const int n_valid = int(std::min<int64_t>(16, n_rows - q * 16));
      for (int64_t sb = 0; sb < nsb; ++sb) fill(q, n_valid, sb, il[size_t((q - q0) * nsb + sb)]);
    }
    for (int64_t g0 = 0; g0 < n32; g0 += kGroupsPerChunk) {
      const int64_t g1 = std::min(n32, g0 + kGroupsPerChunk);
      for (int64_t q = q0; q < q1;) {
        const int rz = q + kRZ <= q1 ? kRZ : 1;
        const Block16* blk = il.data() + size_t((q - q0) * nsb);
        // The last group of an unaligned row count goes through ypad, then is copied out.
        const bool tail = pad && q + rz == rows16;
        for (int64_t m0 = 0; m0 < M; m0 += kC) {
          const int nc = int(std::min<int64_t>(kC, M - m0));
          const uint8_t* col[kC];
          const float* dyc[kC];
          const float* ysc[kC];
          const int32_t* isc[kC];
          for (int c = 0; c < nc; ++c) {
            col[c] = a + (m0 + c) * a_stride;
            dyc[c] = ints ? nullptr : dy.data() + (m0 + c) * n32;
            ysc[c] = ints ? nullptr : ys.data() + (m0 + c) * (K / group);
            isc[c] = ints ? isums.data() + (m0 + c) * nsb * 16 : nullptr;
          }
          float* y = tail ? ypad.data() + size_t(m0) * 16 * rz : Y + m0 * ldy + q * 16;
          const size_t yl = tail ? size_t(16 * rz) : ldy;
          if (tail && g0 > 0)  // restore the partial sums kept in Y
            for (int c = 0; c < nc; ++c)
              for (int64_t r = q * 16; r < n_rows; ++r)
                y[c * yl + (r - q * 16)] = Y[(m0 + c) * ldy + r];
          TileFn fn;
          if (nc == kC)
            fn = rz == kRZ ? full : single;
          else
            fn = rz == kRZ ? tile_for<kRZ, kC>(form, group, nc) : tile_for<1, kC>(form, group, nc);
          // The next tile's Y (columns ldy floats apart, Y beyond L2) would stall its loads
          // and stores: fetch it a tile ahead.
          for (int64_t m = m0 + kC; m < std::min(M, m0 + 2 * kC); ++m)
            for (int z = 0; z < rz; ++z) __builtin_prefetch(Y + m * ldy + (q + z) * 16, 1);
          fn({blk, size_t(nsb), g0, g1, col, goff.data(), dyc, ysc, isc, y, yl, g0 == 0});
          if (tail)
            for (int c = 0; c < nc; ++c)
              for (int64_t r = q * 16; r < n_rows; ++r)
                Y[(m0 + c) * ldy + r] = y[c * yl + (r - q * 16)];
        }
        q += rz;
      }
    }
  }
}

}  // namespace

void gemm_vnni_rows16(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W,
                      size_t w_stride, int64_t n_rows, const void* A, size_t a_stride, int64_t M,
                      float* Y, size_t ldy, int zero_point) {
  const auto* w = static_cast<const uint8_t*>(W);
  const int ng = 256 / group;
  thread_local std::vector<RowUnpack> tmp(16);
  rows16(
      [&](int64_t q, int n_valid, int64_t sb, Block16& out) {
        const RowUnpack* rp[16];
        for (int r = 0; r < n_valid; ++r) {
          unpack(w + (q * 16 + r) * w_stride, sb, tmp[size_t(r)]);
          rp[r] = &tmp[size_t(r)];
        }
        interleave(rp, n_valid, ng, act == ActFormat::kQ8K, out);
      },
      group, act, zero_point, K, n_rows, A, a_stride, M, Y, ldy);
}

void gemm_vnni_rows16_packed(PackedExpandFn expand, size_t sb_bytes, int group, ActFormat act,
                             int64_t K, const void* Wp, int64_t n_rows, const void* A,
                             size_t a_stride, int64_t M, float* Y, size_t ldy, int zero_point) {
  const auto* w = static_cast<const uint8_t*>(Wp);
  const int64_t nsb = K / 256;
  rows16([&](int64_t q, int, int64_t sb,
             Block16& out) { expand(w + size_t(q * nsb + sb) * sb_bytes, out); },
         group, act, zero_point, K, n_rows, A, a_stride, M, Y, ldy);
}

}  // namespace hearth::kernels::avx512
