// AVX-512 VNNI kernels on load-time repacked Q4_0 weights (kernels.h's RepackEntry): decode and
// small batches at the memory-bandwidth bound, as repacked.cpp does for the K-quants.
//
// Layout. Rows in groups of 16, lane i of every vector = row i; a group is stored in chunks of 8
// blocks (256 elements; a row whose K is not a multiple of 256 ends in a shorter chunk), chunks
// one after the other, groups one after the other. A chunk of n blocks, 288 n bytes (the file's
// 18 bytes per row and block):
//   [0, 256 n)         qs: vector 4b + k (b: block of the chunk, k < 4) holds dword k of block
//                      b's qs of each row: low nibbles = elements 4k .. 4k + 3 of the block, high
//                      nibbles = elements 16 + 4k .. + 3.
//   [256 n, 288 n)     d: 16 f16 (the 16 rows) per block.
// With d apart, a whole chunk is 36 cache lines and every qs vector one line; groups of one block
// (288 bytes) would split 3 of every 4 vector loads across two lines.
//
// Sums: llama.cpp's order, as the file layout's kernels (unpacked.cpp, x86/row_stream.h) and its
// own AVX2 code: per block, 8 lanes of 4 elements, each lane's exact integer sum of (q - 8) * y,
// one float accumulator per lane fed fma(dx * dy, lane sum), the 8 lanes folded at the end as
// hsum(__m256). Here a lane of llama.cpp's is one whole vector (16 rows): vpdpbusd of the low or
// high nibbles of vector k against the activation quad broadcast {1to16}, started from -8 * the
// quad's sum (computed once per call and activation row). So repacking changes no result bit
// (Kernels.RepackedQ4_0EqualsFileLayout): Q4_0 logits stay llama.cpp's. The price is 8
// conversions and 8 FMAs per block, 16 rows and activation row where an exact integer per block
// would take one of each, and at most 3 activation rows per register tile (8 accumulators each).
// Decode hides it under the memory stream (hearth-kernel-bench --stream: 25.9 GB/s per core either
// way, as packed Q4_K); small batches are compute-bound: in cache, ns per 256 weights and
// activation row at M = 2..7, 2.4-2.5 against 1.4-1.7 for the per-block order (file
// layout: 6.2-7.1; Zen 5, loaded machine).
//
// Prefill (M >= kPrefillRows, whole 256-element chunks) runs the file layout's rows-16 GEMM
// (gemm_rows16.cpp) on chunks expanded in a few vector ops: bit-identical to the file layout's
// prefill, without its scalar per-row unpack (M = 8 in cache: 2.1 against 8.6 ns, as above).
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "kernels/x86_avx512/common.h"
#include "kernels/x86_avx512/gemm_vnni.h"
#include "kernels/x86_avx512/repack_common.h"
#include "kernels/x86_avx512/x86_avx512.h"
#include "quant/blocks.h"

namespace hearth::kernels {
namespace {

using namespace avx512;

constexpr int kGroup = 16;
constexpr int kChunk = 8;  // blocks per chunk
constexpr size_t kBlockBytes = kGroup * sizeof(block_q4_0);
constexpr size_t kChunkBytes = kChunk * kBlockBytes;
static_assert(kBlockBytes == 288 && kChunkBytes == 2304 && QK_K == kChunk * QK4_0);

// Where M >= this, the rows-16 GEMM as for the file layout (unpacked.cpp's gemm_unpacked), so
// packed and file layout agree bit for bit at every M.
constexpr int64_t kPrefillRows = 8;

size_t q40_packed_bytes(int64_t K, int64_t n_rows) {
  return size_t(n_rows / kGroup) * size_t(K / QK4_0) * kBlockBytes;
}

// ---- Packing (load time, parallel over the pool by ops/).

// Row `row`'s qs of blocks b .. b + nh - 1 (nh <= 4) side by side, zero past them. Only the qs
// bytes are read (the last block of a mapping may end the mapping).
inline __m512i qs_of_4_blocks(const uint8_t* row, int64_t b, int nh) {
  const auto* x = reinterpret_cast<const block_q4_0*>(row) + b;
  const auto ld = [&](int j) {
    return j < nh ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[j].qs))
                  : _mm_setzero_si128();
  };
  const __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(ld(0)), ld(1), 1);
  const __m256i hi = _mm256_inserti128_si256(_mm256_castsi128_si256(ld(2)), ld(3), 1);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

void q40_pack(int64_t K, const void* W, size_t w_stride, int64_t n_rows, void* out) {
  const int64_t nb = K / QK4_0;
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t g = 0; g < n_rows / kGroup; ++g) {
    const uint8_t* row[kGroup];
    for (int i = 0; i < kGroup; ++i)
      row[i] = static_cast<const uint8_t*>(W) + size_t(g * kGroup + i) * w_stride;
    for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
      const int n = int(std::min<int64_t>(kChunk, nb - b0));
      // 16 row streams are more than the hardware prefetcher follows: fetch 4 chunks ahead.
      for (int i = 0; i < kGroup; ++i)
        for (int off = 0; off < kChunk * int(sizeof(block_q4_0)) + 63; off += 64)
          _mm_prefetch(reinterpret_cast<const char*>(row[i]) +
                           (b0 + 4 * kChunk) * int64_t(sizeof(block_q4_0)) + off,
                       _MM_HINT_T0);
      // qs: 4 blocks of the 16 rows per 16 x 16 dword transpose; dword m of a row's 4 blocks is
      // dword m % 4 of block m / 4, i.e. vector 4 (h + m / 4) + m % 4 = 4h + m.
      for (int h = 0; h < n; h += 4) {
        const int nh = std::min(4, n - h);
        __m512i r[16];
        for (int i = 0; i < kGroup; ++i) r[i] = qs_of_4_blocks(row[i], b0 + h, nh);
        transpose16(r);
        for (int m = 0; m < 4 * nh; ++m) _mm512_storeu_si512(o + 64 * (4 * h + m), r[m]);
      }
      for (int b = 0; b < n; ++b)
        for (int i = 0; i < kGroup; ++i)
          std::memcpy(o + 256 * n + 32 * b + 2 * i,
                      &reinterpret_cast<const block_q4_0*>(row[i])[b0 + b].d, 2);
      o += size_t(n) * kBlockBytes;
    }
  }
}

// ---- Decode and small batches: NC activation rows against one group of 16 rows.

// -8 * (sum of the 4 bytes) of each lane of each block of M activation rows, [m][block][lane]:
// the dot of lane l starts from it, so it sums (q - 8) * y exactly with q unsigned.
void lane_offsets(int64_t nb, const uint8_t* A, size_t a_stride, int64_t M, int32_t* out) {
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t m = 0; m < M; ++m) {
    const auto* y = reinterpret_cast<const block_q8_0*>(A + m * a_stride);
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i s =
          _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones,
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (m * nb + b) * 8),
                          _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s, 3)));
    }
  }
}

// Y[c * ldy + i] = row i of the group . activation row c, for c < NC; nb blocks. off: the lane
// offsets (lane_offsets) of activation row 0, a row's nb * 8 apart.
template <int NC>
void q40_group(int64_t nb, const uint8_t* g, const uint8_t* a, size_t a_stride, const int32_t* off,
               float* Y, size_t ldy) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  __m512 acc[NC][8];
  for (int c = 0; c < NC; ++c)
    for (int l = 0; l < 8; ++l) acc[c][l] = _mm512_setzero_ps();
  for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
    const int n = int(std::min<int64_t>(kChunk, nb - b0));
    prefetch_ahead<kChunkBytes>(g);
    for (int j = 0; j < n; ++j) {
      const int64_t b = b0 + j;
      const __m512 dx = _mm512_cvtph_ps(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 256 * n + 32 * j)));
      const block_q8_0* y[NC];
      const int32_t* lane_off[NC];
      __m512 d[NC];
      for (int c = 0; c < NC; ++c) {
        y[c] = reinterpret_cast<const block_q8_0*>(a + c * a_stride) + b;
        lane_off[c] = off + (c * nb + b) * 8;
        d[c] = _mm512_mul_ps(dx, _mm512_set1_ps(h2f(y[c]->d)));  // dx * dy, as llama.cpp rounds it
      }
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m512i v = _mm512_loadu_si512(g + 64 * (4 * j + k));
        const __m512i lo = _mm512_and_si512(v, m4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        for (int c = 0; c < NC; ++c) {
          const __m512i sl =
              _mm512_dpbusd_epi32(_mm512_set1_epi32(lane_off[c][k]), lo, bcast4(y[c]->qs + 4 * k));
          const __m512i sh = _mm512_dpbusd_epi32(_mm512_set1_epi32(lane_off[c][4 + k]), hi,
                                                 bcast4(y[c]->qs + 16 + 4 * k));
          acc[c][k] = _mm512_fmadd_ps(d[c], _mm512_cvtepi32_ps(sl), acc[c][k]);
          acc[c][4 + k] = _mm512_fmadd_ps(d[c], _mm512_cvtepi32_ps(sh), acc[c][4 + k]);
        }
      }
    }
    g += size_t(n) * kBlockBytes;
  }
  // hsum(__m256)'s fold of the 8 lanes: (l + l + 4), then (0 + 2), (1 + 3), then the two.
  for (int c = 0; c < NC; ++c) {
    __m512 s[4];
    for (int l = 0; l < 4; ++l) s[l] = _mm512_add_ps(acc[c][l], acc[c][l + 4]);
    const __m512 s0 = _mm512_add_ps(s[0], s[2]), s1 = _mm512_add_ps(s[1], s[3]);
    _mm512_storeu_ps(Y + c * ldy, _mm512_add_ps(s0, s1));
  }
}

// ---- Prefill: a chunk as the rows-16 GEMM's Block16, the bytes, scales and offsets unpack_q4_0
// and its interleave give (so the two prefill paths agree bit for bit).
void q40_expand(const uint8_t* g, Block16& out) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512 k8 = _mm512_set1_ps(8.0f);
  for (int b = 0; b < kChunk; ++b) {
    for (int k = 0; k < 4; ++k) {
      const __m512i v = _mm512_loadu_si512(g + 64 * (4 * b + k));
      _mm512_store_si512(out.q[8 * b + k], _mm512_and_si512(v, m4));  // elements 32b + 4k ..
      _mm512_store_si512(out.q[8 * b + 4 + k],                        // elements 32b + 16 + 4k ..
                         _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
    }
    const __m512 d = _mm512_cvtph_ps(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 256 * kChunk + 32 * b)));
    _mm512_store_ps(out.scale[b], d);
    _mm512_store_ps(out.off[b], _mm512_mul_ps(d, k8));
  }
}

void q40_gemm(int64_t K, const void* Wp, int64_t n_rows, const void* A, size_t a_stride, int64_t M,
              float* Y, size_t ldy) {
  if (M >= kPrefillRows && K % QK_K == 0)
    return gemm_vnni_rows16_packed(q40_expand, kChunkBytes, 32, ActFormat::kQ8_0, K, Wp, n_rows, A,
                                   a_stride, M, Y, ldy);
  const int64_t nb = K / QK4_0;
  const auto* w = static_cast<const uint8_t*>(Wp);
  const auto* a = static_cast<const uint8_t*>(A);
  thread_local std::vector<int32_t> off;
  if (off.size() < size_t(M * nb * 8)) off.resize(size_t(M * nb * 8));
  lane_offsets(nb, a, a_stride, M, off.data());
  // Each group streams from memory once; further column tiles re-read it from L1 / L2.
  for (int64_t gi = 0; gi < n_rows / kGroup; ++gi) {
    const uint8_t* g = w + size_t(gi * nb) * kBlockBytes;
    for (int64_t m0 = 0; m0 < M;) {
      const int64_t left = M - m0;
      const uint8_t* am = a + m0 * a_stride;
      const int32_t* om = off.data() + m0 * nb * 8;
      float* y = Y + m0 * ldy + gi * kGroup;
      if (left == 4 || left == 2) {  // 4 as 2 + 2, not 3 + 1
        q40_group<2>(nb, g, am, a_stride, om, y, ldy);
        m0 += 2;
      } else if (left >= 3) {
        q40_group<3>(nb, g, am, a_stride, om, y, ldy);
        m0 += 3;
      } else {
        q40_group<1>(nb, g, am, a_stride, om, y, ldy);
        m0 += 1;
      }
    }
  }
}

}  // namespace

void register_avx512_repacked_q4_0(KernelTable& t) {
  t.repack[uint32_t(DType::Q4_0)] = {kGroup, q40_packed_bytes, q40_pack, q40_gemm};
}

}  // namespace hearth::kernels
