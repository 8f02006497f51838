// Q8_0 x Q8_0 prefill in llama.cpp's summation order with weight rows interleaved 16 to a vector
// (as gemm_rows16.cpp; legacy.cpp says why the order matters). It replaces the column GEMM's
// tile_q8_0_lanes (x86/gemm_cols.h) on AVX-512: ~98 -> ~180 multiply-adds/ns per Zen 5 core
// (PERFORMANCE.md).
//
// llama.cpp's order, per (weight row, activation row): 8 float accumulators, lane j fed by bytes
// 4j .. 4j + 3 of every 32-element block, acc[j] = fma(dx * dy, float(int dot of lane j), acc[j]);
// at the end ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)). Here:
//   - weights: per 16-row group and block, 8 zmm of signed bytes (quad j of the 16 rows, lane i =
//     row i), 8 zmm of the dots' starts -128 * (sum of the quad's 4 bytes) and the 16 rows' dx as
//     floats: 1088 contiguous bytes, transposed from the rows a chunk at a time;
//   - activations: converted once per call to unsigned bytes a + 128 and dy as floats; vpdpbusd
//     (unsigned x signed) then sums (a + 128) . x = a . x + 128 * sum(x) onto -128 * sum(x): the
//     exact signed integer llama.cpp converts. The start is per weight row, so one load serves
//     every column (an activation-side start, weights x + 128, costs a broadcast load per dot:
//     185 against 210 multiply-adds/ns as an L1-resident loop; the tile is bound by its loads
//     nearly as much as by vpdpbusd and the FMA, which share two pipes on Zen 5);
//   - a tile of 16 rows x 3 columns keeps its 8 x 3 lane sums in registers; per block one multiply
//     dx16 * dy per column, then per quad one weight and one start load, and per column one
//     broadcast, vpdpbusd, conversion and FMA;
//   - K goes in chunks of kChunk blocks (34 KiB of weights, in L1 while all M columns sweep it);
//     the lane sums of each (group, column) wait in a per-thread scratch between chunks, which
//     changes no bit. Each tile over the whole K, weights streaming from L2, was ~30% slower.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/x86_avx512/common.h"
#include "kernels/x86_avx512/gemm_vnni.h"
#include "quant/blocks.h"

namespace hearth::kernels::avx512 {
namespace {

// One block of one 16-row group: q[j] = quad j of the 16 rows (signed, lane i = row i), the start
// of each quad's dot (-128 * the sum of its 4 bytes), then dx of the 16 rows.
struct alignas(64) Block16Q8 {
  int8_t q[8][16][4];
  int32_t corr[8][16];
  float dx[16];
};
static_assert(sizeof(Block16Q8) == 17 * 64);

inline __m256i load256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Blocks [b0, b1) of the rows r0 .. r0 + n_valid - 1 into out (the missing rows of a tail group
// repeat the last row with dx = 0: their lanes are never stored).
void interleave_q8_0(const uint8_t* w, size_t w_stride, int64_t r0, int n_valid, int64_t b0,
                     int64_t b1, Block16Q8* out) {
  alignas(64) int32_t idx[16];
  for (int r = 0; r < 16; ++r) idx[r] = int32_t(size_t(std::min(r, n_valid - 1)) * w_stride);
  const __m512i vidx = _mm512_load_si512(idx);
  const __mmask16 valid = __mmask16((1u << n_valid) - 1);
  const __m512i ones = _mm512_set1_epi8(1);
  const uint8_t* base = w + size_t(r0) * w_stride;
  size_t off[16];  // of each row's qs
  for (int r = 0; r < 16; ++r) off[r] = size_t(idx[r]) + offsetof(block_q8_0, qs);
  for (int64_t b = b0; b < b1; ++b, ++out) {
    const uint8_t* blk = base + size_t(b) * sizeof(block_q8_0);
    // d and the first two qs bytes: the low 16 bits of each dword are the fp16 scale.
    const __m512i d = _mm512_i32gather_epi32(vidx, blk, 1);
    _mm512_store_ps(out->dx, _mm512_maskz_mov_ps(valid, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d))));
    // The 16 x 8 dwords of qs transposed: z[k] = rows k and k + 8; per 256-bit half an 8 x 8
    // transpose (dwords, then qwords), then the 128-bit lanes gathered across the pairs.
    __m512i z[8], t[8];
    for (int k = 0; k < 8; ++k)
      z[k] = _mm512_inserti64x4(_mm512_castsi256_si512(load256(blk + off[k])),
                                load256(blk + off[k + 8]), 1);
    for (int k = 0; k < 8; k += 2) {
      t[k] = _mm512_unpacklo_epi32(z[k], z[k + 1]);      // dwords 0, 1 (4, 5) of rows k, k + 1
      t[k + 1] = _mm512_unpackhi_epi32(z[k], z[k + 1]);  // dwords 2, 3 (6, 7)
    }
    for (int h = 0; h < 8; h += 4) {                         // rows 0-3 (8-11), then 4-7 (12-15)
      z[h + 0] = _mm512_unpacklo_epi64(t[h], t[h + 2]);      // per lane L: dword 0 (L odd: 4)
      z[h + 1] = _mm512_unpackhi_epi64(t[h], t[h + 2]);      // dword 1 (5)
      z[h + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]);  // dword 2 (6)
      z[h + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]);  // dword 3 (7)
    }
    // z[i] lanes: rows 0-3 dword i, rows 0-3 dword i + 4, rows 8-11 dword i, rows 8-11 i + 4;
    // z[4 + i] the same for rows 4-7 and 12-15.
    const __m512i lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    for (int i = 0; i < 4; ++i) {
      const __m512i q[2] = {_mm512_permutex2var_epi64(z[i], lo, z[4 + i]),
                            _mm512_permutex2var_epi64(z[i], hi, z[4 + i])};
      for (int h = 0; h < 2; ++h) {
        _mm512_store_si512(out->q[i + 4 * h], q[h]);
        const __m512i sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, q[h]);
        _mm512_store_si512(out->corr[i + 4 * h],
                           _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 7)));
      }
    }
  }
}

// One tile of 16 rows x C columns over the n blocks of a chunk (see sweep).
template <int C>
[[gnu::always_inline]] inline void tile_body(const Block16Q8* wg, int64_t n, const uint8_t* ua,
                                             const float* dy, float* st, bool first, bool last,
                                             float* y, size_t ldy, __mmask16 rmask) {
  __m512 acc[8][C];
  for (int j = 0; j < 8; ++j) {
    for (int c = 0; c < C; ++c)
      acc[j][c] = first ? _mm512_setzero_ps() : _mm512_load_ps(st + (c * 8 + j) * 16);
  }
  // The lane sums must stay in registers: every loop inside the blocks' fully unrolled.
#pragma GCC unroll 1
  for (int64_t b = 0; b < n; ++b) {
    const Block16Q8& wb = wg[b];
    const __m512 dx = _mm512_load_ps(wb.dx);
    __m512 s[C];
    for (int c = 0; c < C; ++c) s[c] = _mm512_mul_ps(dx, _mm512_set1_ps(dy[b * C + c]));
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      __m512i w = _mm512_load_si512(wb.q[j]);
      __m512i start = _mm512_load_si512(wb.corr[j]);
      // Loaded once for the C columns: GCC would rather fold both loads into every use.
      asm("" : "+v"(w), "+v"(start));
#pragma GCC unroll 3
      for (int c = 0; c < C; ++c) {
        int32_t a4;
        std::memcpy(&a4, ua + (b * C + c) * 32 + 4 * j, 4);
        // (a + 128) . x = a . x + 128 * sum(x): from -128 * sum(x), llama.cpp's signed integer.
        const __m512i t = _mm512_dpbusd_epi32(start, _mm512_set1_epi32(a4), w);
        acc[j][c] = _mm512_fmadd_ps(s[c], _mm512_cvtepi32_ps(t), acc[j][c]);
      }
    }
  }
  if (!last) {
    for (int j = 0; j < 8; ++j)
      for (int c = 0; c < C; ++c) _mm512_store_ps(st + (c * 8 + j) * 16, acc[j][c]);
    return;
  }
  for (int c = 0; c < C; ++c) {
    const __m512 lo =
        _mm512_add_ps(_mm512_add_ps(acc[0][c], acc[4][c]), _mm512_add_ps(acc[2][c], acc[6][c]));
    const __m512 hi =
        _mm512_add_ps(_mm512_add_ps(acc[1][c], acc[5][c]), _mm512_add_ps(acc[3][c], acc[7][c]));
    _mm512_mask_storeu_ps(y + c * ldy, rmask, _mm512_add_ps(lo, hi));
  }
}

// ntiles tiles of 16 rows x C columns over the n blocks of one chunk of a 16-row group (wg). The
// chunk's activations, per tile of C columns, block-major: block b of the tile's column c as
// unsigned bytes a + 128 at ua0 + (b * C + c) * 32 and its dy at dy0[b * C + c], the next tile
// C * n blocks on. st: per column the 8 lane sums between chunks (Acc), read unless first, written
// unless last; when last, the lanes are summed in llama.cpp's order and stored to y (column m at
// y + m * ldy, the rows of rmask).
template <int C>
void sweep(const Block16Q8* wg, int64_t n, const uint8_t* ua0, const float* dy0, int64_t ntiles,
           float* st, bool first, bool last, float* y, size_t ldy, __mmask16 rmask) {
  for (int64_t tt = 0; tt < ntiles; ++tt)
    tile_body<C>(wg, n, ua0 + size_t(tt * C * n) * 32, dy0 + tt * C * n,
                 st ? st + tt * C * 128 : nullptr, first, last, y + size_t(tt * C) * ldy, ldy,
                 rmask);
}

constexpr int kC = 3;       // columns per tile: 8 x 3 lane accumulators
constexpr int kChunk = 32;  // blocks of K per pass over the columns (16 to 40 measured alike)

// One column's 8 lane sums of a 16-row group between chunks.
struct alignas(64) Acc {
  float v[8][16];
};

struct alignas(32) Bytes32 {
  uint8_t b[32];
};

// Per column and block, dy and the activation bytes as unsigned a + 128, in chunks of `chunk`
// blocks laid out as sweep reads them.
void column_terms(int64_t nb, int64_t chunk, const uint8_t* A, size_t a_stride, int64_t M,
                  float* dy, uint8_t* ua) {
  const __m256i off = _mm256_set1_epi8(char(0x80));
  for (int64_t m = 0; m < M; ++m) {
    const auto* y = reinterpret_cast<const block_q8_0*>(A + size_t(m) * a_stride);
    const int64_t t = m / kC, c = m % kC, nc = std::min<int64_t>(kC, M - t * kC);
    for (int64_t b0 = 0; b0 < nb; b0 += chunk) {
      const int64_t n = std::min(chunk, nb - b0), first = b0 * M + t * kC * n + c;
      for (int64_t b = 0; b < n; ++b) {
        const int64_t i = first + b * nc;
        dy[i] = h2f(y[b0 + b].d);
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b0 + b].qs));
        _mm256_store_si256(reinterpret_cast<__m256i*>(ua + i * 32), _mm256_xor_si256(v, off));
      }
    }
  }
}

}  // namespace

void gemm_q8_0_rows16(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                      size_t a_stride, int64_t M, float* Y, size_t ldy) {
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* a = static_cast<const uint8_t*>(A);
  const int64_t nb = K / 32;
  // Per-thread scratch, grown on demand (prefill only).
  thread_local std::vector<float> dy;
  thread_local std::vector<Bytes32> ua;
  if (dy.size() < size_t(M * nb)) dy.resize(size_t(M * nb));
  if (ua.size() < size_t(M * nb)) ua.resize(size_t(M * nb));
  auto* uab = reinterpret_cast<uint8_t*>(ua.data());
  const int64_t chunk = std::min<int64_t>(kChunk, nb);
  column_terms(nb, chunk, a, a_stride, M, dy.data(), uab);
  const int64_t groups = (n_rows + 15) / 16;
  const int64_t n_tiles = (M + kC - 1) / kC;
  thread_local std::vector<Block16Q8> il;
  if (il.size() < size_t(chunk)) il.resize(size_t(chunk));
  thread_local std::vector<Acc> st;
  if (chunk < nb && st.size() < size_t(n_tiles * kC)) st.resize(size_t(n_tiles * kC));
  for (int64_t q = 0; q < groups; ++q) {
    const int n_valid = int(std::min<int64_t>(16, n_rows - q * 16));
    for (int64_t b0 = 0; b0 < nb; b0 += chunk) {
      const int64_t b1 = std::min(nb, b0 + chunk);
      interleave_q8_0(w, w_stride, q * 16, n_valid, b0, b1, il.data());
      const int64_t n = b1 - b0, full = M / kC;
      const uint8_t* ua0 = uab + size_t(b0 * M) * 32;
      const float* dy0 = dy.data() + b0 * M;
      float* st0 = chunk < nb ? st[0].v[0] : nullptr;
      float* y0 = Y + size_t(q) * 16;
      const __mmask16 rmask = __mmask16((1u << n_valid) - 1);
      sweep<kC>(il.data(), n, ua0, dy0, full, st0, b0 == 0, b1 == nb, y0, ldy, rmask);
      const int64_t m0 = full * kC;
      if (m0 < M)  // the last 1 or 2 columns
        (M - m0 == 1 ? sweep<1> : sweep<2>)(il.data(), n, ua0 + size_t(m0 * n) * 32, dy0 + m0 * n,
                                            1, st0 ? st0 + m0 * 128 : nullptr, b0 == 0, b1 == nb,
                                            y0 + size_t(m0) * ldy, ldy, rmask);
    }
  }
}

}  // namespace hearth::kernels::avx512
