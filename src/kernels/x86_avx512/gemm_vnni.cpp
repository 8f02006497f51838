#include "kernels/x86_avx512/gemm_vnni.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "quant/blocks.h"

namespace hearth::kernels::avx512 {
namespace {

constexpr int kCols = 16;  // activation rows per vector
constexpr int kRows = 8;   // weight rows per register tile (<= 8)

// One column tile (16 activation rows) of K elements, repacked.
struct ActTile {
  int8_t* q;        // [K/4][16][4]
  float* dy;        // [K/32][16]   activation scale per 32-element group
  float* ysum;      // [K/group][16] sum of the int8 values per scale group
  int32_t* lane_c;  // [K/4][16] -128 * sum of each 4 values (gemm_vnni_q8_0_lanes only)
};

// Per-thread scratch, grown on demand (prefill only; decode never gets here).
std::vector<uint8_t>& scratch() {
  thread_local std::vector<uint8_t> s;
  return s;
}

void repack(ActFormat fmt, int group, int64_t K, const uint8_t* A, size_t a_stride, int64_t m0,
            int64_t M, ActTile& t) {
  const int64_t n4 = K / 4, n32 = K / 32, ng = K / group;
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
        d = _cvtsh_ss(b->d);
      } else {
        const auto* b = reinterpret_cast<const block_q8_1*>(row) + g;
        src = b->qs;
        d = _cvtsh_ss(b->d);
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
          ys = _cvtsh_ss(reinterpret_cast<const block_q8_1*>(row)[g].s) / d;
        t.ysum[(g * per + s) * kCols + c] = live ? ys : 0.0f;
      }
    }
    (void)n4;
    (void)ng;
  }
}

// rows[r] points at the K/256 unpacked super-blocks of weight row r. GROUP is a template
// parameter so the inner loop unrolls and the R integer accumulators stay in registers.
template <int R, int GROUP>
void tile(int64_t K, const RowUnpack* const* rows, const ActTile& t, __m512* acc) {
  constexpr int ng = 256 / GROUP, steps = GROUP / 4;
  constexpr int group = GROUP;
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < K / 256; ++sb) {
    const RowUnpack* u[R];
    for (int r = 0; r < R; ++r) u[r] = rows[r] + sb;
    for (int g = 0; g < ng; ++g) {
      __m512i isum[R];
      for (int r = 0; r < R; ++r) isum[r] = _mm512_setzero_si512();
      const int64_t k4_0 = sb * 64 + int64_t(g) * steps;
      for (int s = 0; s < steps; ++s) {
        const __m512i a = _mm512_load_si512(t.q + (k4_0 + s) * 64);
        for (int r = 0; r < R; ++r) {
          int32_t w4;
          std::memcpy(&w4, u[r]->u + g * group + 4 * s, 4);
          isum[r] = _mm512_dpbusd_epi32(isum[r], _mm512_set1_epi32(w4), a);
        }
      }
      const int64_t gg = sb * ng + g;
      const __m512 ys = _mm512_load_ps(t.ysum + gg * kCols);
      const __m512 dy = _mm512_load_ps(t.dy + ((sb * 256 + int64_t(g) * group) / 32) * kCols);
      for (int r = 0; r < R; ++r) {
        const __m512 v =
            _mm512_fmsub_ps(_mm512_cvtepi32_ps(isum[r]), _mm512_set1_ps(u[r]->scale[g]),
                            _mm512_mul_ps(ys, _mm512_set1_ps(u[r]->off[g])));
        acc[r] = _mm512_fmadd_ps(v, dy, acc[r]);
      }
    }
  }
}

// Q8_0 x Q8_0 in llama.cpp's summation order (x86_avx512/legacy.cpp says why): for each weight
// row, 8 accumulators of 16 columns, one per 4-byte lane of a block, each fed one FMA of
// (dx * dy) * lane_dot per block; the lanes are then summed as hsum(__m256) does. Costs ~2.5x the
// vector ops of tile() per block, still well ahead of llama.cpp's own prefill (PERFORMANCE.md).
template <int R>
void tile_q8_0_lanes(int64_t K, const RowUnpack* const* rows, const ActTile& t, __m512* out) {
  __m512 acc[R][8];
  for (int r = 0; r < R; ++r)
    for (int l = 0; l < 8; ++l) acc[r][l] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < K / 256; ++sb) {
    for (int g = 0; g < 8; ++g) {
      const int64_t blk = sb * 8 + g;
      const __m512 dy = _mm512_load_ps(t.dy + blk * kCols);
      __m512 d[R];
      for (int r = 0; r < R; ++r) d[r] = _mm512_mul_ps(_mm512_set1_ps(rows[r][sb].scale[g]), dy);
      for (int l = 0; l < 8; ++l) {
        const int64_t k4 = blk * 8 + l;
        const __m512i a = _mm512_load_si512(t.q + k4 * 64);
        const __m512i c = _mm512_load_si512(t.lane_c + k4 * kCols);
        for (int r = 0; r < R; ++r) {
          int32_t w4;
          std::memcpy(&w4, rows[r][sb].u + g * 32 + 4 * l, 4);
          const __m512i dot = _mm512_dpbusd_epi32(c, _mm512_set1_epi32(w4), a);
          acc[r][l] = _mm512_fmadd_ps(d[r], _mm512_cvtepi32_ps(dot), acc[r][l]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const auto& v = acc[r];
    out[r] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(v[0], v[4]), _mm512_add_ps(v[2], v[6])),
                           _mm512_add_ps(_mm512_add_ps(v[1], v[5]), _mm512_add_ps(v[3], v[7])));
  }
}

template <int GROUP>
void tile_rows(int nr, int64_t K, const RowUnpack* const* rows, const ActTile& t, __m512* acc) {
  switch (nr) {
    case 1:
      return tile<1, GROUP>(K, rows, t, acc);
    case 2:
      return tile<2, GROUP>(K, rows, t, acc);
    case 3:
      return tile<3, GROUP>(K, rows, t, acc);
    case 4:
      return tile<4, GROUP>(K, rows, t, acc);
    case 5:
      return tile<5, GROUP>(K, rows, t, acc);
    case 6:
      return tile<6, GROUP>(K, rows, t, acc);
    case 7:
      return tile<7, GROUP>(K, rows, t, acc);
    default:
      return tile<8, GROUP>(K, rows, t, acc);
  }
}

void tile_lanes_any(int nr, int64_t K, const RowUnpack* const* rows, const ActTile& t,
                    __m512* acc) {
  int r = 0;
  for (; r + 2 <= nr; r += 2) tile_q8_0_lanes<2>(K, rows + r, t, acc + r);
  if (r < nr) tile_q8_0_lanes<1>(K, rows + r, t, acc + r);
}

// Repacks the activations, unpacks weight rows in L2-sized blocks and sweeps the column tiles
// over them; Tile(nr, K, rows, tile, acc) computes nr <= kRows rows x 16 columns.
using TileFn = void (*)(int nr, int64_t K, const RowUnpack* const* rows, const ActTile& t,
                        __m512* acc);

void run_gemm(TileFn tile_fn, bool lanes, UnpackFn unpack, int group, ActFormat act, int64_t K,
              const void* W, size_t w_stride, int64_t n_rows, const void* A, size_t a_stride,
              int64_t M, float* Y, size_t ldy) {
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* a = static_cast<const uint8_t*>(A);
  const size_t q_bytes = size_t(K) * kCols, dy_bytes = size_t(K / 32) * kCols * 4,
               ys_bytes = size_t(K / group) * kCols * 4, lc_bytes = lanes ? size_t(K) * kCols : 0;
  const size_t tile_bytes = q_bytes + dy_bytes + ys_bytes + lc_bytes;
  const int64_t n_tiles = (M + kCols - 1) / kCols;
  auto& s = scratch();
  if (s.size() < tile_bytes * n_tiles + 64) s.resize(tile_bytes * n_tiles + 64);
  uint8_t* base =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(s.data()) + 63) & ~uintptr_t(63));
  thread_local std::vector<ActTile> tiles;
  if (tiles.size() < size_t(n_tiles)) tiles.resize(static_cast<size_t>(n_tiles));
  for (int64_t i = 0; i < n_tiles; ++i) {
    uint8_t* p = base + i * tile_bytes;
    tiles[i] = {reinterpret_cast<int8_t*>(p), reinterpret_cast<float*>(p + q_bytes),
                reinterpret_cast<float*>(p + q_bytes + dy_bytes),
                lanes ? reinterpret_cast<int32_t*>(p + q_bytes + dy_bytes + ys_bytes) : nullptr};
    repack(act, group, K, a, a_stride, i * kCols, M, tiles[i]);
  }
  // Rows are unpacked once per call, in blocks (~192 KiB unpacked) that stay in L2 while all
  // column tiles sweep over them.
  const int64_t nsb = K / 256;
  const int64_t rb =
      std::max<int64_t>(kRows, int64_t(192 * 1024 / (nsb * sizeof(RowUnpack))) / kRows * kRows);
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
        __m512 acc[kRows];
        tile_fn(nr, K, rows, tiles[ti], acc);
        for (int i = 0; i < nr; ++i) _mm512_store_ps(out[i], acc[i]);
        for (int i = 0; i < nr; ++i)
          for (int64_t c = 0; c < mc; ++c) Y[(m0 + c) * ldy + r + i] = out[i][c];
      }
    }
  }
}

}  // namespace

void gemm_vnni_q8_0_lanes(UnpackFn unpack, int64_t K, const void* W, size_t w_stride,
                          int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y,
                          size_t ldy) {
  run_gemm(tile_lanes_any, true, unpack, 32, ActFormat::kQ8_0, K, W, w_stride, n_rows, A, a_stride,
           M, Y, ldy);
}

void gemm_vnni(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W, size_t w_stride,
               int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy) {
  run_gemm(group == 32 ? tile_rows<32> : tile_rows<16>, false, unpack, group, act, K, W, w_stride,
           n_rows, A, a_stride, M, Y, ldy);
}

}  // namespace hearth::kernels::avx512
