#include "kernels/x86_avx2/gemm_cols.h"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "base/fp16.h"
#include "quant/blocks.h"

namespace hearth::kernels::avx2 {
namespace {

constexpr int kCols = 8;  // activation rows per ymm
constexpr int kRows = 4;  // weight rows per register tile (16 ymm registers)

struct ActTile {
  int16_t* q;   // [K/2][8][2]
  float* dy;    // [K/32][8]   activation scale per 32-element block
  float* ysum;  // [K/group][8] sum of the int8 values per scale group
};

void repack(ActFormat fmt, int group, int64_t K, const uint8_t* A, size_t a_stride, int64_t m0,
            int64_t M, ActTile& t) {
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
      for (int k2 = 0; k2 < 16; ++k2) {
        int16_t* dst = t.q + ((g * 16 + k2) * kCols + c) * 2;
        dst[0] = live ? src[2 * k2] : 0;
        dst[1] = live ? src[2 * k2 + 1] : 0;
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

// Weight row unpacked for the whole K: 16-bit values (pairs are broadcast as one int32) plus the
// per-group scale and offset.
struct WideRow {
  const uint16_t* u;
  const float* scale;
  const float* off;
};

template <int R, int GROUP>
void tile(int64_t K, const WideRow* rows, const ActTile& t, __m256* acc) {
  constexpr int steps = GROUP / 2;
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t g = 0; g < K / GROUP; ++g) {
    __m256i isum[R];
    for (int r = 0; r < R; ++r) isum[r] = _mm256_setzero_si256();
    const int64_t k2_0 = g * steps;
    for (int s = 0; s < steps; ++s) {
      const __m256i a =
          _mm256_load_si256(reinterpret_cast<const __m256i*>(t.q + (k2_0 + s) * kCols * 2));
      for (int r = 0; r < R; ++r) {
        const __m256i w =
            _mm256_set1_epi32(*reinterpret_cast<const int32_t*>(rows[r].u + g * GROUP + 2 * s));
        isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(w, a));
      }
    }
    const __m256 ys = _mm256_load_ps(t.ysum + g * kCols);
    const __m256 dy = _mm256_load_ps(t.dy + ((g * GROUP) / 32) * kCols);
    for (int r = 0; r < R; ++r) {
      const __m256 v =
          _mm256_fmsub_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_set1_ps(rows[r].scale[g]),
                          _mm256_mul_ps(ys, _mm256_set1_ps(rows[r].off[g])));
      acc[r] = _mm256_fmadd_ps(v, dy, acc[r]);
    }
  }
}

template <int GROUP>
void run_tile(int nr, int64_t K, const WideRow* rows, const ActTile& t, __m256* acc) {
  switch (nr) {
    case 1:
      tile<1, GROUP>(K, rows, t, acc);
      break;
    case 2:
      tile<2, GROUP>(K, rows, t, acc);
      break;
    case 3:
      tile<3, GROUP>(K, rows, t, acc);
      break;
    default:
      tile<4, GROUP>(K, rows, t, acc);
      break;
  }
}

}  // namespace

void gemm_cols(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W, size_t w_stride,
               int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy) {
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* a = static_cast<const uint8_t*>(A);
  const size_t q_bytes = size_t(K) * kCols * 2, dy_bytes = size_t(K / 32) * kCols * 4,
               ys_bytes = size_t(K / group) * kCols * 4;
  const size_t tile_bytes = q_bytes + dy_bytes + ys_bytes;
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
    tiles[i] = {reinterpret_cast<int16_t*>(p), reinterpret_cast<float*>(p + q_bytes),
                reinterpret_cast<float*>(p + q_bytes + dy_bytes)};
    repack(act, group, K, a, a_stride, i * kCols, M, tiles[i]);
  }
  // Rows are unpacked and widened once per call, in blocks (~256 KiB) that stay in L2 while all
  // column tiles sweep over them.
  const int64_t nsb = K / 256, ng = K / group;
  const int64_t row_bytes = K * 2 + ng * 8;
  const int64_t rb = std::max<int64_t>(kRows, (256 * 1024 / row_bytes) / kRows * kRows);
  thread_local std::vector<uint16_t> wide;
  thread_local std::vector<float> scales;
  if (wide.size() < size_t(rb * K)) wide.resize(size_t(rb * K));
  if (scales.size() < size_t(rb * ng * 2)) scales.resize(size_t(rb * ng * 2));
  RowUnpack u;
  alignas(32) float out[kRows][kCols];
  for (int64_t r0 = 0; r0 < n_rows; r0 += rb) {
    const int64_t r1 = std::min(n_rows, r0 + rb);
    for (int64_t r = r0; r < r1; ++r) {
      uint16_t* wr = wide.data() + (r - r0) * K;
      float* sc = scales.data() + (r - r0) * ng * 2;
      const int per = 256 / group;
      for (int64_t sb = 0; sb < nsb; ++sb) {
        unpack(w + r * w_stride, sb, u);
        for (int i = 0; i < 256; i += 16)
          _mm256_storeu_si256(
              reinterpret_cast<__m256i*>(wr + sb * 256 + i),
              _mm256_cvtepu8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(u.u + i))));
        for (int j = 0; j < per; ++j) {
          sc[sb * per + j] = u.scale[j];
          sc[ng + sb * per + j] = u.off[j];
        }
      }
    }
    for (int64_t ti = 0; ti < n_tiles; ++ti) {
      const int64_t m0 = ti * kCols, mc = std::min<int64_t>(kCols, M - m0);
      for (int64_t r = r0; r < r1; r += kRows) {
        const int nr = int(std::min<int64_t>(kRows, r1 - r));
        WideRow rows[kRows];
        for (int i = 0; i < nr; ++i) {
          const float* sc = scales.data() + (r + i - r0) * ng * 2;
          rows[i] = {wide.data() + (r + i - r0) * K, sc, sc + ng};
        }
        __m256 acc[kRows];
        if (group == 32)
          run_tile<32>(nr, K, rows, tiles[ti], acc);
        else
          run_tile<16>(nr, K, rows, tiles[ti], acc);
        for (int i = 0; i < nr; ++i) _mm256_store_ps(out[i], acc[i]);
        for (int i = 0; i < nr; ++i)
          for (int64_t c = 0; c < mc; ++c) Y[(m0 + c) * ldy + r + i] = out[i][c];
      }
    }
  }
}

}  // namespace hearth::kernels::avx2
