// kernels/x86/gemm_cols.h — the column-vectorised int8 GEMM for prefill (many activation rows),
// shared by the x86 levels; the vector level comes in as a traits type V.
//
// Activations are repacked once per call so one vector holds 4 consecutive K bytes of V::kCols
// activation rows ("columns"); each weight row is unpacked per 256-element super-block
// (kernels/unpack_rows.h) to unsigned bytes u with a float scale and offset per group of 16 or 32,
// and 4 consecutive weight bytes are broadcast against the activation vector by V::dot4 — one
// vpdpbusd on the VNNI levels, vpmaddubsw + vpmaddwd on plain AVX2 (which needs u <= 127 so no
// 16-bit pair sum saturates) — with no horizontal sums. A register tile of V::kRows weight rows
// x V::kCols columns reuses every load.
//   true weight = scale[g] * u - off[g]   =>   dot = sum_g dy_g * (scale[g] * sum(u*y) - off[g] *
//   sum(y))
//
//   struct V {
//     using I, F;                      // integer and float vectors of kCols 32-bit lanes
//     static constexpr int kCols, kRows;
//     static constexpr bool kSignedW;  // weight bytes are signed values (off 0), not unsigned u;
//                                       // then dot4s(acc, |w|, w, a) replaces dot4
//     static I load(const void*);  static I zero();  static I set1(int32_t);
//     static I dot4(I acc, I w4, I a);  // acc + per lane sum of 4 (u8 w x s8 a) products
//     static constexpr bool kSum16;     // has 16-bit partial sums (tile()):
//     static I mul16(I w, I a);  static I dot16(I acc16, I w, I a);  static I widen(I acc, I p16);
//     static F loadf(const float*);  static void storef(float*, F);  static F set1f(float);
//     static F zerof();  static F cvt(I);  static F add(F, F);  static F mul(F, F);
//     static F fmadd(F a, F b, F c);  static F fmsub(F a, F b, F c);  // a * b +- c
//   };
//
// Header-only with internal linkage: each ISA folder includes it and gets a copy compiled with its
// own flags.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/fp16.h"
#include "kernels/unpack_rows.h"
#include "kernels/x86/act_format.h"
#include "quant/blocks.h"

namespace hearth::kernels::x86 {
namespace {

// One column tile (V::kCols activation rows) of K elements, repacked.
struct ActTile {
  int8_t* q;        // [K/4][kCols][4]
  float* dy;        // [K/32][kCols]   activation scale per 32-element group
  float* ysum;      // [K/group][kCols] sum of the int8 values per scale group
  int32_t* lane_c;  // [K/4][kCols] -128 * sum of each 4 values (Q8_0 in llama.cpp's order only)
};

template <class V>
void repack(ActFormat fmt, int group, int64_t K, const uint8_t* A, size_t a_stride, int64_t m0,
            int64_t M, ActTile& t) {
  constexpr int kCols = V::kCols;
  const int64_t n32 = K / 32;
  for (int c = 0; c < kCols; ++c) {
    const int64_t m = m0 + c;
    const bool live = m < M;
    const uint8_t* row = A + (live ? m : m0) * a_stride;
    for (int64_t g = 0; g < n32; ++g) {
      const int8_t* src;
      float d;
      if (fmt == ActFormat::kQ8K) {
        const auto* b = reinterpret_cast<const block_q8_K*>(row) + g / 8;
        src = b->qs + (g % 8) * 32;
        d = b->d;
      } else if (fmt == ActFormat::kQ8_0) {
        const auto* b = reinterpret_cast<const block_q8_0*>(row) + g;
        src = b->qs;
        d = fp16_to_fp32(b->d);
      } else {
        const auto* b = reinterpret_cast<const block_q8_1*>(row) + g;
        src = b->qs;
        d = fp16_to_fp32(b->d);
      }
      t.dy[g * kCols + c] = live ? d : 0.0f;
      for (int k4 = 0; k4 < 8; ++k4) {
        int8_t* dst = t.q + ((g * 8 + k4) * kCols + c) * 4;
        if (live)
          std::memcpy(dst, src + 4 * k4, 4);
        else
          std::memset(dst, 0, 4);
        if (t.lane_c)
          t.lane_c[(g * 8 + k4) * kCols + c] =
              live ? -128 * (src[4 * k4] + src[4 * k4 + 1] + src[4 * k4 + 2] + src[4 * k4 + 3]) : 0;
      }
      const int per = 32 / group;
      for (int s = 0; s < per; ++s) {
        int sum = 0;
        for (int i = 0; i < group; ++i) sum += src[s * group + i];
        float ys = float(sum);
        // Q8_1 carries s = d * sum(q) rounded to f16; the reference's min term uses it.
        if (fmt == ActFormat::kQ8_1 && d != 0)
          ys = fp16_to_fp32(reinterpret_cast<const block_q8_1*>(row)[g].s) / d;
        t.ysum[(g * per + s) * kCols + c] = live ? ys : 0.0f;
      }
    }
  }
}

// An empty asm that claims to change v: the compiler must have v in a register here, so it cannot
// reassociate a chain of integer adds into a tree over the fully unrolled steps — which GCC 12
// does, keeping every step's product alive and spilling them to the stack (measured: ~60 stack
// accesses per tile call, and AVX2 IQ4_XS prefill a third slower).
template <class T>
[[gnu::always_inline]] inline void pin(T& v) {
  asm("" : "+v"(v));
}

// rows[r] points at the K/256 unpacked super-blocks of weight row r. GROUP is a template
// parameter so the inner loop unrolls and the R integer accumulators stay in registers.
// SUM16 > 1 (levels without vpdpbusd: V::mul16 / dot16 / widen): the 16-bit products of SUM16
// steps are added in 16 bits before one vpmaddwd widens them — the caller guarantees they cannot
// overflow (SUM16 * 2 * max(u) * 127 < 2^15) — which saves most of the vpmaddwd, the
// multiplier port being what AVX2 prefill is bound by.
template <class V, int R, int GROUP, int SUM16>
void tile(int64_t K, const RowUnpack* const* rows, const ActTile& t, typename V::F* acc) {
  using I = typename V::I;
  using F = typename V::F;
  constexpr int kCols = V::kCols;
  constexpr int ng = 256 / GROUP, steps = GROUP / 4;
  static_assert(steps % SUM16 == 0);
  // Local accumulators: F is a may_alias vector type, so writes through acc would be stored and
  // reloaded around every read of the tile's floats.
  F fsum[R];
  for (int r = 0; r < R; ++r) fsum[r] = V::zerof();
  for (int64_t sb = 0; sb < K / 256; ++sb) {
    const RowUnpack* u[R];
    for (int r = 0; r < R; ++r) u[r] = rows[r] + sb;
    for (int g = 0; g < ng; ++g) {
      I isum[R];
      for (int r = 0; r < R; ++r) isum[r] = V::zero();
      const int64_t k4_0 = sb * 64 + int64_t(g) * steps;
      for (int s0 = 0; s0 < steps; s0 += SUM16) {
        I p16[R];
        for (int s = s0; s < s0 + SUM16; ++s) {
          const I a = V::load(t.q + (k4_0 + s) * kCols * 4);
          for (int r = 0; r < R; ++r) {
            int32_t w4;
            std::memcpy(&w4, u[r]->u + g * GROUP + 4 * s, 4);
            if constexpr (V::kSignedW) {
              int32_t aw4;
              std::memcpy(&aw4, u[r]->su + g * GROUP + 4 * s, 4);
              isum[r] = V::dot4s(isum[r], V::set1(aw4), V::set1(w4), a);
              pin(isum[r]);
            } else if constexpr (SUM16 == 1) {
              isum[r] = V::dot4(isum[r], V::set1(w4), a);
              pin(isum[r]);
            } else {
              p16[r] = s == s0 ? V::mul16(V::set1(w4), a) : V::dot16(p16[r], V::set1(w4), a);
              pin(p16[r]);
            }
          }
        }
        if constexpr (SUM16 > 1)
          for (int r = 0; r < R; ++r) {
            isum[r] = V::widen(isum[r], p16[r]);
            pin(isum[r]);
          }
      }
      const int64_t gg = sb * ng + g;
      const F dy = V::loadf(t.dy + ((sb * 256 + int64_t(g) * GROUP) / 32) * kCols);
      if constexpr (V::kSignedW) {  // no offsets
        for (int r = 0; r < R; ++r)
          fsum[r] = V::fmadd(V::mul(V::cvt(isum[r]), V::set1f(u[r]->scale[g])), dy, fsum[r]);
      } else {
        const F ys = V::loadf(t.ysum + gg * kCols);
        for (int r = 0; r < R; ++r) {
          const F v = V::fmsub(V::cvt(isum[r]), V::set1f(u[r]->scale[g]),
                               V::mul(ys, V::set1f(u[r]->off[g])));
          fsum[r] = V::fmadd(v, dy, fsum[r]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) acc[r] = fsum[r];
}

// Q8_0 x Q8_0 in llama.cpp's summation order (x86_avx512/legacy.cpp says why): for each weight
// row, 8 accumulators of kCols columns, one per 4-byte lane of a block, each fed one FMA of
// (dx * dy) * lane_dot per block; the lanes are then summed as hsum(__m256) does. Costs ~2.5x the
// vector ops of tile() per block.
template <class V, int R>
void tile_q8_0_lanes(int64_t K, const RowUnpack* const* rows, const ActTile& t,
                     typename V::F* out) {
  using I = typename V::I;
  using F = typename V::F;
  constexpr int kCols = V::kCols;
  F acc[R][8];
  for (int r = 0; r < R; ++r)
    for (int l = 0; l < 8; ++l) acc[r][l] = V::zerof();
  for (int64_t sb = 0; sb < K / 256; ++sb) {
    for (int g = 0; g < 8; ++g) {
      const int64_t blk = sb * 8 + g;
      const F dy = V::loadf(t.dy + blk * kCols);
      F d[R];
      for (int r = 0; r < R; ++r) d[r] = V::mul(V::set1f(rows[r][sb].scale[g]), dy);
      for (int l = 0; l < 8; ++l) {
        const int64_t k4 = blk * 8 + l;
        const I a = V::load(t.q + k4 * kCols * 4);
        // Unsigned weights (x + 128) start each lane at -128 * sum(y); signed ones at 0.
        const I c = V::kSignedW ? V::zero() : V::load(t.lane_c + k4 * kCols);
        for (int r = 0; r < R; ++r) {
          int32_t w4;
          std::memcpy(&w4, rows[r][sb].u + g * 32 + 4 * l, 4);
          I dot;
          if constexpr (V::kSignedW) {
            int32_t aw4;
            std::memcpy(&aw4, rows[r][sb].su + g * 32 + 4 * l, 4);
            dot = V::dot4s(c, V::set1(aw4), V::set1(w4), a);
          } else {
            dot = V::dot4(c, V::set1(w4), a);
          }
          acc[r][l] = V::fmadd(d[r], V::cvt(dot), acc[r][l]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const auto& v = acc[r];
    out[r] = V::add(V::add(V::add(v[0], v[4]), V::add(v[2], v[6])),
                    V::add(V::add(v[1], v[5]), V::add(v[3], v[7])));
  }
}

template <class V, int GROUP, int SUM16>
void tile_rows(int nr, int64_t K, const RowUnpack* const* rows, const ActTile& t,
               typename V::F* acc) {
  constexpr int kR = V::kRows;
  static_assert(kR >= 1 && kR <= 8);
  switch (nr) {
    case 1:
      return tile<V, 1, GROUP, SUM16>(K, rows, t, acc);
    case 2:
      return tile<V, std::min(2, kR), GROUP, SUM16>(K, rows, t, acc);
    case 3:
      return tile<V, std::min(3, kR), GROUP, SUM16>(K, rows, t, acc);
    case 4:
      return tile<V, std::min(4, kR), GROUP, SUM16>(K, rows, t, acc);
    case 5:
      return tile<V, std::min(5, kR), GROUP, SUM16>(K, rows, t, acc);
    case 6:
      return tile<V, std::min(6, kR), GROUP, SUM16>(K, rows, t, acc);
    case 7:
      return tile<V, std::min(7, kR), GROUP, SUM16>(K, rows, t, acc);
    default:
      return tile<V, kR, GROUP, SUM16>(K, rows, t, acc);
  }
}

template <class V>
void tile_lanes_any(int nr, int64_t K, const RowUnpack* const* rows, const ActTile& t,
                    typename V::F* acc) {
  // 8 lane accumulators per row: two rows fill 16 of 32 zmm, one row 8 of 16 ymm.
  constexpr int kPair = V::kCols >= 16 ? 2 : 1;
  int r = 0;
  for (; r + kPair <= nr; r += kPair) tile_q8_0_lanes<V, kPair>(K, rows + r, t, acc + r);
  if (r < nr) tile_q8_0_lanes<V, 1>(K, rows + r, t, acc + r);
}

// Repacks the activations, unpacks weight rows in L2-sized blocks and sweeps the column tiles
// over them; tile_fn(nr, K, rows, tile, acc) computes nr <= V::kRows rows x V::kCols columns.
template <class V>
void run_gemm(void (*tile_fn)(int, int64_t, const RowUnpack* const*, const ActTile&,
                              typename V::F*),
              bool lanes, UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W,
              size_t w_stride, int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y,
              size_t ldy) {
  constexpr int kCols = V::kCols, kRows = V::kRows;
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* a = static_cast<const uint8_t*>(A);
  const size_t q_bytes = size_t(K) * kCols, dy_bytes = size_t(K / 32) * kCols * 4,
               ys_bytes = size_t(K / group) * kCols * 4,
               lc_bytes = lanes && !V::kSignedW ? size_t(K) * kCols : 0;
  const size_t tile_bytes = q_bytes + dy_bytes + ys_bytes + lc_bytes;
  const int64_t n_tiles = (M + kCols - 1) / kCols;
  // Per-thread scratch, grown on demand (prefill only; decode never gets here).
  thread_local std::vector<uint8_t> scratch;
  if (scratch.size() < tile_bytes * n_tiles + 64) scratch.resize(tile_bytes * n_tiles + 64);
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) &
                                             ~uintptr_t(63));
  thread_local std::vector<ActTile> tiles;
  if (tiles.size() < size_t(n_tiles)) tiles.resize(static_cast<size_t>(n_tiles));
  for (int64_t i = 0; i < n_tiles; ++i) {
    uint8_t* p = base + i * tile_bytes;
    tiles[i] = {reinterpret_cast<int8_t*>(p), reinterpret_cast<float*>(p + q_bytes),
                reinterpret_cast<float*>(p + q_bytes + dy_bytes),
                lc_bytes ? reinterpret_cast<int32_t*>(p + q_bytes + dy_bytes + ys_bytes) : nullptr};
    repack<V>(act, group, K, a, a_stride, i * kCols, M, tiles[i]);
  }
  // Rows are unpacked once per call, in blocks (~192 KiB unpacked) that stay in L2 while all
  // column tiles sweep over them.
  const int64_t nsb = K / 256;
  // Bytes of a RowUnpack the tiles touch (su only for signed weights).
  constexpr size_t kTouched = sizeof(RowUnpack) - (V::kSignedW ? 0 : sizeof(RowUnpack::su));
  const int64_t rb =
      std::max<int64_t>(kRows, int64_t(192 * 1024 / (nsb * kTouched)) / kRows * kRows);
  thread_local std::vector<RowUnpack> unpacked;
  if (unpacked.size() < size_t(rb * nsb)) unpacked.resize(static_cast<size_t>(rb * nsb));
  alignas(64) float out[kRows][kCols];
  for (int64_t r0 = 0; r0 < n_rows; r0 += rb) {
    const int64_t r1 = std::min(n_rows, r0 + rb);
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t sb = 0; sb < nsb; ++sb)
        unpack(w + r * w_stride, sb, unpacked[size_t((r - r0) * nsb + sb)]);
    for (int64_t ti = 0; ti < n_tiles; ++ti) {
      const int64_t m0 = ti * kCols, mc = std::min<int64_t>(kCols, M - m0);
      for (int64_t r = r0; r < r1; r += kRows) {
        const int nr = int(std::min<int64_t>(kRows, r1 - r));
        const RowUnpack* rows[kRows];
        for (int i = 0; i < nr; ++i) rows[i] = unpacked.data() + (r + i - r0) * nsb;
        typename V::F acc[kRows];
        tile_fn(nr, K, rows, tiles[ti], acc);
        for (int i = 0; i < nr; ++i) V::storef(out[i], acc[i]);
        for (int i = 0; i < nr; ++i)
          for (int64_t c = 0; c < mc; ++c) Y[(m0 + c) * ldy + r + i] = out[i][c];
      }
    }
  }
}

// Y[m * ldy + r] for r < n_rows, m < M; group = 16 or 32 (elements per scale); K % 256 == 0.
// sum16: steps of 16-bit products added before widening (1, 2, 4 or 8; see tile()).
template <class V>
void gemm_cols(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W, size_t w_stride,
               int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy,
               int sum16 = 1) {
  using TileFn = void (*)(int, int64_t, const RowUnpack* const*, const ActTile&, typename V::F*);
  TileFn fn = group == 32 ? tile_rows<V, 32, 1> : tile_rows<V, 16, 1>;
  if constexpr (V::kSum16) {  // a group of 16 is 4 steps, of 32 is 8
    if (sum16 == 2) fn = group == 32 ? tile_rows<V, 32, 2> : tile_rows<V, 16, 2>;
    if (sum16 == 4) fn = group == 32 ? tile_rows<V, 32, 4> : tile_rows<V, 16, 4>;
    if (sum16 >= 8) fn = group == 32 ? tile_rows<V, 32, 8> : tile_rows<V, 16, 4>;
  }
  run_gemm<V>(fn, false, unpack, group, act, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

// Q8_0 weights (unpacked by `unpack` as x + 128, or as x where V::kSignedW, with scale d) x Q8_0
// activations, summed in llama.cpp's order so results equal its bit for bit.
template <class V>
void gemm_cols_q8_0_lanes(UnpackFn unpack, int64_t K, const void* W, size_t w_stride,
                          int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y,
                          size_t ldy) {
  run_gemm<V>(tile_lanes_any<V>, true, unpack, 32, ActFormat::kQ8_0, K, W, w_stride, n_rows, A,
              a_stride, M, Y, ldy);
}

}  // namespace
}  // namespace hearth::kernels::x86
