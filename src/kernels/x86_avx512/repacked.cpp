// AVX-512 VNNI kernels on load-time repacked K-quant weights (kernels.h's RepackEntry), for
// decode and small batches at the memory-bandwidth bound.
//
// Layout. Rows are taken in groups of 16; a group is stored super-block after super-block
// (256 elements of each of its 16 rows), groups one after the other, so a thread's share of a
// matrix is one sequential stream. Within a group's super-block every 64-byte vector holds 4
// bytes of each of the 16 rows — 32-bit lane i = row i — so vpdpbusd against an activation quad
// broadcast from memory ({1to16}) sums 16 rows at once: no horizontal sums, and the per-row
// scales sit in lanes too, applied with one integer multiply per sub-block for all 16 rows.
// The byte count per row is the file's (no padding, no widened scales):
//
//   Q4_K, 2304 bytes = 16 x 144:
//     [0, 2048)     qs: vector c = 8p + k (p: sub-block pair, k: quad) holds dword k of the
//                   original qs[32p .. 32p + 32) of each row: low nibbles = elements 64p + 4k
//                   .. +3 (sub-block 2p), high nibbles = elements 64p + 32 + 4k .. +3 (2p + 1).
//     [2048, 2240)  the 12 scale bytes as three vectors: vector w lane i = dword w of row i's
//                   scales (6-bit scales/mins unpacked with a few vector ops per 16 rows).
//     [2240, 2272)  d of the 16 rows (f16);  [2272, 2304) dmin of the 16 rows (f16).
//   Q5_K, 2816 bytes = 16 x 176: Q4_K's layout with the fifth bits inserted after qs:
//     [0, 2048) qs as Q4_K;  [2048, 2560) qh: vector k = dword k of qh of each row (bit 2p of a
//     byte tops the low nibble of vector (p, k), bit 2p + 1 its high nibble);  [2560, 2752)
//     scales;  [2752, 2784) d;  [2784, 2816) dmin.
//   Q6_K, 3360 bytes = 16 x 210:
//     [0, 2048)     ql: vector 16n + k (n: 128-element half, k < 16) = dword k of ql[64n ..] of
//                   each row (low nibbles elements 128n + 4k .., high nibbles 128n + 64 + 4k ..).
//     [2048, 3072)  qh: vector 8n + k = dword k of qh[32n ..] of each row; bit pair t of a byte
//                   tops element 128n + 32t + 4k + byte.
//     [3072, 3328)  scales: vector j (32 bytes) holds (scale 2j, scale 2j + 1) of each row as an
//                   int8 pair, sign-extended to an int16 pair per lane.
//     [3328, 3360)  d of the 16 rows (f16).
//
// Sums: per 16 rows an int32 lane accumulates sum_j scale_j * dot_j (the dots of a sub-block are
// at most 32 * 15 * 128 for Q4_K, 16 * 63 * 128 for Q6_K: the scaled sums stay far below 2^31)
// and the min / offset term sum_j m_j * bsum_j by vpdpwssd against the activation's bsums; one
// float conversion per super-block. Results differ from the unpacked kernels only by float
// rounding (exact integer sums, one rounding fewer per sub-block).
//
// Prefill (M >= 16) runs the rows-16 GEMM of the file's layout (gemm_rows16.cpp), each group's
// super-block expanded to its interleaved form with a few vector ops (k4_expand, q6k_expand) in
// place of the per-row unpack and transpose: the same tiles, bit-identical results. (The tiles of
// up to 4 activation rows below, which used to serve prefill too, measured 13-34% below it on the
// whole 1B model's pp512, Zen 5, 2 threads.)
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "kernels/x86_avx512/common.h"
#include "kernels/x86_avx512/gemm_vnni.h"
#include "kernels/x86_avx512/repack_common.h"
#include "kernels/x86_avx512/x86_avx512.h"
#include "quant/blocks.h"
#include "quant/kquants.h"

namespace hearth::kernels {
namespace {

using namespace avx512;

constexpr int kGroup = 16;
constexpr size_t kQ4Bytes = kGroup * sizeof(block_q4_K);  // one group's super-block
constexpr size_t kQ5Bytes = kGroup * sizeof(block_q5_K);
constexpr size_t kQ6Bytes = kGroup * sizeof(block_q6_K);
static_assert(kQ4Bytes == 2304 && kQ5Bytes == 2816 && kQ6Bytes == 3360);

// Q4_K and Q5_K share one layout but for Q5_K's qh, inserted after qs.
template <bool kQ5>
struct K4Layout {
  using Block = std::conditional_t<kQ5, block_q5_K, block_q4_K>;
  static constexpr size_t kQh = 2048, kScales = kQ5 ? 2560 : 2048, kD = kScales + 192,
                          kDmin = kD + 32, kBytes = kDmin + 32;
  static_assert(kBytes == kGroup * sizeof(Block));
};

// ---- Packing (load time, parallel over the pool by ops/). Every field is a run of dwords whose
// dword k of row i goes to lane i of one vector: 16 rows' blocks are loaded 16 dwords at a time,
// transposed (16 x 16 dwords) and each resulting vector stored where its dword index belongs.
// (The scalar reference of the layout is in tests/unit/kernels/kernels_test.cpp.)

// The first n_dwords dwords of 16 blocks (src[i]: row i's), transposed: put(k, v) gets the
// vector whose lane i is dword k of block i. Masked loads: nothing past a block's dwords is read
// (the last block of a mapping may end the mapping).
template <class Put>
[[gnu::always_inline]] inline void transpose_blocks(const uint8_t* const src[16], int n_dwords,
                                                    Put&& put) {
  // 16 row streams are more than the hardware prefetcher follows: fetch 4 blocks ahead.
  for (int i = 0; i < 16; ++i)
    for (int off = 0; off < 4 * n_dwords + 63; off += 64)
      _mm_prefetch(reinterpret_cast<const char*>(src[i]) + 16 * n_dwords + off, _MM_HINT_T0);
  for (int k0 = 0; k0 < n_dwords; k0 += 16) {
    const int n = std::min(16, n_dwords - k0);
    const __mmask16 mask = __mmask16((1u << n) - 1);
    __m512i r[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_maskz_loadu_epi32(mask, src[i] + 4 * k0);
    transpose16(r);
    for (int k = 0; k < n; ++k) put(k0 + k, r[k]);
  }
}

inline void store_lo16(uint8_t* dst, __m512i v) {  // the low halves of the 16 dwords
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_cvtepi32_epi16(v));
}

template <bool kQ5>
size_t k4_packed_bytes(int64_t K, int64_t n_rows) {
  return size_t(n_rows / kGroup) * size_t(K / QK_K) * K4Layout<kQ5>::kBytes;
}

template <bool kQ5>
void k4_pack(int64_t K, const void* W, size_t w_stride, int64_t n_rows, void* out) {
  using L = K4Layout<kQ5>;
  using Block = typename L::Block;
  static_assert(sizeof(Block) % 4 == 0 && offsetof(Block, scales) == 4 &&
                offsetof(Block, qs) == sizeof(Block) - 128);
  constexpr int kQsDword = int(offsetof(Block, qs) / 4);  // 4 (Q4_K) or 12 (Q5_K, after qh)
  const int64_t nsb = K / QK_K;
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t g = 0; g < n_rows / kGroup; ++g)
    for (int64_t sb = 0; sb < nsb; ++sb) {
      uint8_t* p = o + size_t(g * nsb + sb) * L::kBytes;
      const uint8_t* src[16];
      for (int i = 0; i < kGroup; ++i)
        src[i] = static_cast<const uint8_t*>(W) + size_t(g * kGroup + i) * w_stride +
                 size_t(sb) * sizeof(Block);
      // Dwords: 0 = d | dmin << 16, 1-3 scales, (Q5_K: 4-11 qh), then 32 of qs.
      transpose_blocks(src, int(sizeof(Block) / 4), [&](int k, __m512i v) {
        if (k == 0) {
          store_lo16(p + L::kD, v);
          store_lo16(p + L::kDmin, _mm512_srli_epi32(v, 16));
        } else if (k < 4) {
          _mm512_storeu_si512(p + L::kScales + 64 * (k - 1), v);
        } else if (k < kQsDword) {
          _mm512_storeu_si512(p + L::kQh + 64 * (k - 4), v);
        } else {
          _mm512_storeu_si512(p + 64 * (k - kQsDword), v);
        }
      });
    }
}

size_t q6k_packed_bytes(int64_t K, int64_t n_rows) {
  return size_t(n_rows / kGroup) * size_t(K / QK_K) * kQ6Bytes;
}

void q6k_pack(int64_t K, const void* W, size_t w_stride, int64_t n_rows, void* out) {
  static_assert(offsetof(block_q6_K, qh) == 128 && offsetof(block_q6_K, scales) == 192 &&
                offsetof(block_q6_K, d) == 208);
  const int64_t nsb = K / QK_K;
  auto* o = static_cast<uint8_t*>(out);
  for (int64_t g = 0; g < n_rows / kGroup; ++g)
    for (int64_t sb = 0; sb < nsb; ++sb) {
      uint8_t* p = o + size_t(g * nsb + sb) * kQ6Bytes;
      const uint8_t* src[16];
      for (int i = 0; i < kGroup; ++i)
        src[i] = static_cast<const uint8_t*>(W) + size_t(g * kGroup + i) * w_stride +
                 size_t(sb) * sizeof(block_q6_K);
      // Dwords 0-31 ql, 32-47 qh, 48-51 scales (int8 pairs 2w and 2w + 1 in each); d apart.
      transpose_blocks(src, 52, [&](int k, __m512i v) {
        if (k < 48) {
          _mm512_storeu_si512(p + (k < 32 ? 64 * k : 2048 + 64 * (k - 32)), v);
        } else {
          store_lo16(p + 3072 + 64 * (k - 48), v);
          store_lo16(p + 3072 + 64 * (k - 48) + 32, _mm512_srli_epi32(v, 16));
        }
      });
      for (int i = 0; i < kGroup; ++i) std::memcpy(p + 3328 + 2 * i, src[i] + 208, 2);
    }
}

// ---- Decode and small batches: NC activation rows against one group of 16 rows.

// Byte b of each dword, zero-extended to the dword (vpshufb control, same in every 128-bit lane).
inline __m512i byte_of_dword(int b) {
  const auto c = [b](int r) { return 4 * r + b; };
  return _mm512_broadcast_i32x4(_mm_setr_epi8(char(c(0)), -1, -1, -1, char(c(1)), -1, -1, -1,
                                              char(c(2)), -1, -1, -1, char(c(3)), -1, -1, -1));
}
// Bytes b and b + 1 of each dword as a zero-extended int16 pair.
inline __m512i pair_of_dword(int b) {
  const auto c = [b](int r, int k) { return char(4 * r + b + k); };
  return _mm512_broadcast_i32x4(_mm_setr_epi8(c(0, 0), -1, c(0, 1), -1, c(1, 0), -1, c(1, 1), -1,
                                              c(2, 0), -1, c(2, 1), -1, c(3, 0), -1, c(3, 1), -1));
}

// Y[c * ldy + i] = row i of the group . activation row c, for c < NC; nsb super-blocks.
// Q5_K's fifth bit of the low (hi = false) or high nibbles of qs vector (p, k): bit 2p (+ 1) of
// the qh bytes, moved to bit 4 (masked by the caller; 16-bit shifts, bits from the neighbouring
// byte land outside bit 4).
template <int P, bool kHi>
[[gnu::always_inline]] inline __m512i q5_bit4(__m512i qh) {
  constexpr int b = 2 * P + (kHi ? 1 : 0);
  if constexpr (b < 4)
    return _mm512_slli_epi16(qh, 4 - b);
  else if constexpr (b == 4)
    return qh;
  else
    return _mm512_srli_epi16(qh, b - 4);
}

// The 16 rows' 6-bit scales and mins of one super-block (get_scale_min_k4, one dword per lane):
// byte j of sc[0] / mn[0] is sub-block j's (j < 4), byte j of sc[1] / mn[1] sub-block 4 + j's.
struct K4Scales {
  __m512i sc[2], mn[2];
};
template <bool kQ5>
[[gnu::always_inline]] inline K4Scales k4_scales(const uint8_t* g) {
  using L = K4Layout<kQ5>;
  const __m512i m4 = _mm512_set1_epi8(0x0f), m6 = _mm512_set1_epi8(0x3f),
                m30 = _mm512_set1_epi8(0x30);
  const __m512i w0 = _mm512_loadu_si512(g + L::kScales),
                w1 = _mm512_loadu_si512(g + L::kScales + 64),
                w2 = _mm512_loadu_si512(g + L::kScales + 128);
  // (w2 & 0x0f) | ((w0 >> 2) & 0x30): ternlog 0xd8 = c ? b : a with c = the 0x0f mask.
  return {
      {_mm512_and_si512(w0, m6),
       _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi32(w0, 2), m30), w2, m4, 0xd8)},
      {_mm512_and_si512(w1, m6),
       _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi32(w1, 2), m30),
                                 _mm512_srli_epi32(w2, 4), m4, 0xd8)}};
}

// Pair sums of each activation row's 16-element bsums: sub-block j's sum, as int16 pairs
// (2p, 2p + 1) — dwords 0, 1 | 4, 5 of bsp[c] = pairs (0,1), (2,3) | (4,5), (6,7).
template <int NC>
[[gnu::always_inline]] inline void k4_bsum_pairs(const block_q8_K* const* y, int32_t (*bsp)[8]) {
  for (int c = 0; c < NC; ++c) {
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[c]->bsums));
    const __m256i s32 = _mm256_madd_epi16(bs, _mm256_set1_epi16(1));
    _mm256_store_si256(reinterpret_cast<__m256i*>(bsp[c]), _mm256_packs_epi32(s32, s32));
  }
}

template <bool kQ5, int NC>
void k4_group(int64_t nsb, const uint8_t* g, const uint8_t* a, size_t a_stride, float* Y,
              size_t ldy) {
  using L = K4Layout<kQ5>;
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  // Shuffle controls, built once (the p loop below is unrolled, but GCC rebuilt them per pass).
  const __m512i byte_ctl[4] = {byte_of_dword(0), byte_of_dword(1), byte_of_dword(2),
                               byte_of_dword(3)};
  const __m512i pair_ctl[2] = {pair_of_dword(0), pair_of_dword(2)};
  __m512 fsum[NC];
  for (int c = 0; c < NC; ++c) fsum[c] = _mm512_setzero_ps();
  const __m512i m10 = _mm512_set1_epi8(0x10);
  for (int64_t sb = 0; sb < nsb; ++sb, g += L::kBytes) {
    prefetch_ahead<L::kBytes>(g);
    const block_q8_K* y[NC];
    for (int c = 0; c < NC; ++c) y[c] = reinterpret_cast<const block_q8_K*>(a + c * a_stride) + sb;
    const K4Scales ks = k4_scales<kQ5>(g);
    alignas(32) int32_t bsp[NC][8];
    k4_bsum_pairs<NC>(y, bsp);
    __m512i isc[NC], imn[NC];
    for (int c = 0; c < NC; ++c) isc[c] = imn[c] = _mm512_setzero_si512();
    auto pair = [&]<int p>() {
      __m512i ilo[NC], ihi[NC];
      for (int c = 0; c < NC; ++c) ilo[c] = ihi[c] = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) {
        const __m512i v = _mm512_loadu_si512(g + 64 * (8 * p + k));
        __m512i lo = _mm512_and_si512(v, m4);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        if constexpr (kQ5) {  // a | (b & 0x10): ternlog 0xf8
          const __m512i h = _mm512_loadu_si512(g + L::kQh + 64 * k);
          // Named first: clang's intrinsic is a macro, and a template's comma would split it.
          const __m512i b4_lo = q5_bit4<p, false>(h), b4_hi = q5_bit4<p, true>(h);
          lo = _mm512_ternarylogic_epi32(lo, b4_lo, m10, 0xf8);
          hi = _mm512_ternarylogic_epi32(hi, b4_hi, m10, 0xf8);
        }
        for (int c = 0; c < NC; ++c) {
          ilo[c] = _mm512_dpbusd_epi32(ilo[c], lo, bcast4(y[c]->qs + 64 * p + 4 * k));
          ihi[c] = _mm512_dpbusd_epi32(ihi[c], hi, bcast4(y[c]->qs + 64 * p + 32 + 4 * k));
        }
      }
      const __m512i scv = ks.sc[p / 2], mnv = ks.mn[p / 2];
      const __m512i s0 = _mm512_shuffle_epi8(scv, byte_ctl[2 * (p % 2)]);
      const __m512i s1 = _mm512_shuffle_epi8(scv, byte_ctl[2 * (p % 2) + 1]);
      const __m512i mp = _mm512_shuffle_epi8(mnv, pair_ctl[p % 2]);
      const int bi = (p / 2) * 4 + p % 2;
      for (int c = 0; c < NC; ++c) {
        isc[c] = _mm512_add_epi32(isc[c], _mm512_mullo_epi32(ilo[c], s0));
        isc[c] = _mm512_add_epi32(isc[c], _mm512_mullo_epi32(ihi[c], s1));
        imn[c] = _mm512_dpwssd_epi32(imn[c], mp, _mm512_set1_epi32(bsp[c][bi]));
      }
    };
    pair.template operator()<0>();
    pair.template operator()<1>();
    pair.template operator()<2>();
    pair.template operator()<3>();
    const __m512 d =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + L::kD)));
    const __m512 dmin =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + L::kDmin)));
    for (int c = 0; c < NC; ++c) {
      const __m512 t = _mm512_fmsub_ps(_mm512_cvtepi32_ps(isc[c]), d,
                                       _mm512_mul_ps(_mm512_cvtepi32_ps(imn[c]), dmin));
      fsum[c] = _mm512_fmadd_ps(t, _mm512_set1_ps(y[c]->d), fsum[c]);
    }
  }
  for (int c = 0; c < NC; ++c) _mm512_storeu_ps(Y + c * ldy, fsum[c]);
}

// Q4_K / Q5_K against 8 activation rows: as k4_group, but one accumulator per activation row
// at a time (the low nibbles of a sub-block pair, then the high ones, the qs vectors reloaded
// from L1), so the registers hold 8 rows and a group's super-block is unpacked once for 8 rows
// where 4-row tiles unpacked it twice. The same exact integer sums and the same float steps as
// k4_group: every row's result is bit for bit k4_group's.
template <bool kQ5, int NC>
void k4_group_wide(int64_t nsb, const uint8_t* g, const uint8_t* a, size_t a_stride, float* Y,
                   size_t ldy) {
  using L = K4Layout<kQ5>;
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i byte_ctl[4] = {byte_of_dword(0), byte_of_dword(1), byte_of_dword(2),
                               byte_of_dword(3)};
  const __m512i pair_ctl[2] = {pair_of_dword(0), pair_of_dword(2)};
  const __m512i m10 = _mm512_set1_epi8(0x10);
  __m512 fsum[NC];
  for (int c = 0; c < NC; ++c) fsum[c] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb, g += L::kBytes) {
    prefetch_ahead<L::kBytes>(g);
    const block_q8_K* y[NC];
    for (int c = 0; c < NC; ++c) y[c] = reinterpret_cast<const block_q8_K*>(a + c * a_stride) + sb;
    const K4Scales ks = k4_scales<kQ5>(g);
    alignas(32) int32_t bsp[NC][8];
    k4_bsum_pairs<NC>(y, bsp);
    __m512i isc[NC], imn[NC];
    for (int c = 0; c < NC; ++c) isc[c] = imn[c] = _mm512_setzero_si512();
    auto half = [&]<int p, bool kHi>() {
      __m512i acc[NC];
      for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) {
        const __m512i v = _mm512_loadu_si512(g + 64 * (8 * p + k));
        __m512i x = kHi ? _mm512_and_si512(_mm512_srli_epi16(v, 4), m4) : _mm512_and_si512(v, m4);
        if constexpr (kQ5) {  // a | (b & 0x10): ternlog 0xf8
          const __m512i h = _mm512_loadu_si512(g + L::kQh + 64 * k);
          const __m512i b4 = q5_bit4<p, kHi>(h);
          x = _mm512_ternarylogic_epi32(x, b4, m10, 0xf8);
        }
        for (int c = 0; c < NC; ++c)
          acc[c] =
              _mm512_dpbusd_epi32(acc[c], x, bcast4(y[c]->qs + 64 * p + (kHi ? 32 : 0) + 4 * k));
      }
      const __m512i scv = ks.sc[p / 2];
      const __m512i s = _mm512_shuffle_epi8(scv, byte_ctl[2 * (p % 2) + (kHi ? 1 : 0)]);
      for (int c = 0; c < NC; ++c) isc[c] = _mm512_add_epi32(isc[c], _mm512_mullo_epi32(acc[c], s));
    };
    auto pair = [&]<int p>() {
      half.template operator()<p, false>();
      half.template operator()<p, true>();
      const __m512i mp = _mm512_shuffle_epi8(ks.mn[p / 2], pair_ctl[p % 2]);
      const int bi = (p / 2) * 4 + p % 2;
      for (int c = 0; c < NC; ++c)
        imn[c] = _mm512_dpwssd_epi32(imn[c], mp, _mm512_set1_epi32(bsp[c][bi]));
    };
    pair.template operator()<0>();
    pair.template operator()<1>();
    pair.template operator()<2>();
    pair.template operator()<3>();
    const __m512 d =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + L::kD)));
    const __m512 dmin =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + L::kDmin)));
    for (int c = 0; c < NC; ++c) {
      const __m512 t = _mm512_fmsub_ps(_mm512_cvtepi32_ps(isc[c]), d,
                                       _mm512_mul_ps(_mm512_cvtepi32_ps(imn[c]), dmin));
      fsum[c] = _mm512_fmadd_ps(t, _mm512_set1_ps(y[c]->d), fsum[c]);
    }
  }
  for (int c = 0; c < NC; ++c) _mm512_storeu_ps(Y + c * ldy, fsum[c]);
}

template <int NC>
void q6k_group(int64_t nsb, const uint8_t* g, const uint8_t* a, size_t a_stride, float* Y,
               size_t ldy) {
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  __m512 fsum[NC];
  for (int c = 0; c < NC; ++c) fsum[c] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb, g += kQ6Bytes) {
    prefetch_ahead<kQ6Bytes>(g);
    const block_q8_K* y[NC];
    for (int c = 0; c < NC; ++c) y[c] = reinterpret_cast<const block_q8_K*>(a + c * a_stride) + sb;
    __m512i isc[NC], ioff[NC];
    for (int c = 0; c < NC; ++c) isc[c] = ioff[c] = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int n = 0; n < 2; ++n) {
      // Scale pairs (8n + 2t, 8n + 2t + 1) for t < 4, as int16 pairs per lane.
      __m512i sp[4];
      for (int t = 0; t < 4; ++t)
        sp[t] = _mm512_cvtepi8_epi16(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 3072 + 32 * (4 * n + t))));
      // Offset term: sum_s scale_s * bsum_s, the bsums (2j, 2j + 1) being one dword.
      for (int c = 0; c < NC; ++c)
        for (int t = 0; t < 4; ++t)
          ioff[c] = _mm512_dpwssd_epi32(ioff[c], sp[t], bcast4(y[c]->bsums + 8 * n + 2 * t));
#pragma GCC unroll 2
      for (int kh = 0; kh < 2; ++kh) {
        __m512i acc[NC][4];
        for (int c = 0; c < NC; ++c)
          for (int t = 0; t < 4; ++t) acc[c][t] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int k = 4 * kh; k < 4 * kh + 4; ++k) {
          const __m512i la = _mm512_loadu_si512(g + 64 * (16 * n + k));
          const __m512i lb = _mm512_loadu_si512(g + 64 * (16 * n + k + 8));
          const __m512i h = _mm512_loadu_si512(g + 2048 + 64 * (8 * n + k));
          // a | (b & 0x30): ternlog 0xf8.
          __m512i q[4];
          q[0] = _mm512_ternarylogic_epi32(_mm512_and_si512(la, m4), _mm512_slli_epi16(h, 4), m30,
                                           0xf8);
          q[1] = _mm512_ternarylogic_epi32(_mm512_and_si512(lb, m4), _mm512_slli_epi16(h, 2), m30,
                                           0xf8);
          q[2] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(la, 4), m4), h, m30,
                                           0xf8);
          q[3] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(lb, 4), m4),
                                           _mm512_srli_epi16(h, 2), m30, 0xf8);
          for (int c = 0; c < NC; ++c)
            for (int t = 0; t < 4; ++t)
              acc[c][t] =
                  _mm512_dpbusd_epi32(acc[c][t], q[t], bcast4(y[c]->qs + 128 * n + 32 * t + 4 * k));
        }
        // Vector t holds sub-block 8n + 2t + kh: the low (kh = 0) or high int16 of pair t.
        for (int t = 0; t < 4; ++t) {
          const __m512i s = kh == 0 ? _mm512_srai_epi32(_mm512_slli_epi32(sp[t], 16), 16)
                                    : _mm512_srai_epi32(sp[t], 16);
          for (int c = 0; c < NC; ++c)
            isc[c] = _mm512_add_epi32(isc[c], _mm512_mullo_epi32(acc[c][t], s));
        }
      }
    }
    const __m512 d =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 3328)));
    for (int c = 0; c < NC; ++c) {
      // q - 32 per element: the offset is 32 * sum scale * bsum.
      const __m512i v = _mm512_sub_epi32(isc[c], _mm512_slli_epi32(ioff[c], 5));
      fsum[c] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(v), d), _mm512_set1_ps(y[c]->d),
                                fsum[c]);
    }
  }
  for (int c = 0; c < NC; ++c) _mm512_storeu_ps(Y + c * ldy, fsum[c]);
}

// Q6_K against 4 to 8 activation rows (small batches: continuous batching's decode step). The
// loop order differs from q6k_group's: one sub-block's accumulator per activation row at a time
// (the weight vectors reloaded from L1 per bit pair), and the -32 offset folded into the same
// int32 sum (scale pairs times -32 against the bsums by vpdpwssd), so 3 vectors per activation
// row stay live and one group's super-block is unpacked once for up to 8 rows where 3-row tiles
// unpacked it 3 times for 8. The integer sums are exact, so every row's result is bit for bit
// q6k_group's: a sequence's logits do not depend on the batch it runs in.
template <int NC>
void q6k_group_wide(int64_t nsb, const uint8_t* g, const uint8_t* a, size_t a_stride, float* Y,
                    size_t ldy) {
  static_assert(NC >= 1 && NC <= 8);
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  const __m512i neg32 = _mm512_set1_epi16(-32);
  __m512 fsum[NC];
  for (int c = 0; c < NC; ++c) fsum[c] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb, g += kQ6Bytes) {
    prefetch_ahead<kQ6Bytes>(g);
    const block_q8_K* y[NC];
    for (int c = 0; c < NC; ++c) y[c] = reinterpret_cast<const block_q8_K*>(a + c * a_stride) + sb;
    __m512i isc[NC];
    for (int c = 0; c < NC; ++c) isc[c] = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int n = 0; n < 2; ++n) {
#pragma GCC unroll 4
      for (int t = 0; t < 4; ++t) {
        // Scale pair (8n + 2t, 8n + 2t + 1) as int16 pairs per lane; times -32 (|x| <= 4096)
        // against the bsum pair: the offset of q - 32, in the same sum.
        const __m512i sp = _mm512_cvtepi8_epi16(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 3072 + 32 * (4 * n + t))));
        const __m512i so = _mm512_mullo_epi16(sp, neg32);
        for (int c = 0; c < NC; ++c)
          isc[c] = _mm512_dpwssd_epi32(isc[c], so, bcast4(y[c]->bsums + 8 * n + 2 * t));
#pragma GCC unroll 2
        for (int kh = 0; kh < 2; ++kh) {
          // Sub-block 8n + 2t + kh: quads 4kh .. 4kh + 3 of bit pair t (as q6k_group's q[t]).
          __m512i acc[NC];
          for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_si512();
#pragma GCC unroll 4
          for (int k = 4 * kh; k < 4 * kh + 4; ++k) {
            const __m512i l = _mm512_loadu_si512(g + 64 * (16 * n + k + (t % 2 == 1 ? 8 : 0)));
            const __m512i h = _mm512_loadu_si512(g + 2048 + 64 * (8 * n + k));
            const __m512i lo =
                t < 2 ? _mm512_and_si512(l, m4) : _mm512_and_si512(_mm512_srli_epi16(l, 4), m4);
            const __m512i hb = t == 0   ? _mm512_slli_epi16(h, 4)
                               : t == 1 ? _mm512_slli_epi16(h, 2)
                               : t == 2 ? h
                                        : _mm512_srli_epi16(h, 2);
            const __m512i q = _mm512_ternarylogic_epi32(lo, hb, m30, 0xf8);  // a | (b & 0x30)
            for (int c = 0; c < NC; ++c)
              acc[c] = _mm512_dpbusd_epi32(acc[c], q, bcast4(y[c]->qs + 128 * n + 32 * t + 4 * k));
          }
          const __m512i s = kh == 0 ? _mm512_srai_epi32(_mm512_slli_epi32(sp, 16), 16)
                                    : _mm512_srai_epi32(sp, 16);
          for (int c = 0; c < NC; ++c)
            isc[c] = _mm512_add_epi32(isc[c], _mm512_mullo_epi32(acc[c], s));
        }
      }
    }
    const __m512 d =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 3328)));
    for (int c = 0; c < NC; ++c)
      fsum[c] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isc[c]), d),
                                _mm512_set1_ps(y[c]->d), fsum[c]);
  }
  for (int c = 0; c < NC; ++c) _mm512_storeu_ps(Y + c * ldy, fsum[c]);
}

// ---- Prefill: a group's super-block expanded to the rows-16 GEMM's Block16 (gemm_rows16.cpp),
// the same bytes and integer scales as its row unpack of the file's layout gives (so the two
// prefill paths agree bit for bit), without the per-row unpack and 16 x 16 transpose.

template <bool kQ5>
void k4_expand(const uint8_t* g, Block16& b) {
  using L = K4Layout<kQ5>;
  const __m512i m4 = _mm512_set1_epi8(0x0f), m10 = _mm512_set1_epi8(0x10);
  for (int p = 0; p < 4; ++p)
    for (int k = 0; k < 8; ++k) {
      const __m512i v = _mm512_loadu_si512(g + 64 * (8 * p + k));
      __m512i lo = _mm512_and_si512(v, m4);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      if constexpr (kQ5) {  // bit 2p (2p + 1) of qh to bit 4: a | (b & 0x10), ternlog 0xf8
        const __m512i h = _mm512_loadu_si512(g + L::kQh + 64 * k);
        const __m512i b4_lo = _mm512_slli_epi16(_mm512_srli_epi16(h, 2 * p), 4);
        const __m512i b4_hi = _mm512_slli_epi16(_mm512_srli_epi16(h, 2 * p + 1), 4);
        lo = _mm512_ternarylogic_epi32(lo, b4_lo, m10, 0xf8);
        hi = _mm512_ternarylogic_epi32(hi, b4_hi, m10, 0xf8);
      }
      _mm512_store_si512(b.q[16 * p + k], lo);      // elements 64p + 4k ..
      _mm512_store_si512(b.q[16 * p + 8 + k], hi);  // elements 64p + 32 + 4k ..
    }
  // Block16's integer form (Q8_K activations): the 6-bit scales, the mins as int16 pairs.
  const K4Scales ks = k4_scales<kQ5>(g);
  _mm512_store_ps(b.d,
                  _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + L::kD))));
  _mm512_store_ps(
      b.dmin, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + L::kDmin))));
  for (int j = 0; j < 8; ++j)
    _mm512_store_si512(b.isc[j], _mm512_shuffle_epi8(ks.sc[j / 4], byte_of_dword(j % 4)));
  for (int j = 0; j < 4; ++j)
    _mm512_store_si512(b.imin2[j], _mm512_shuffle_epi8(ks.mn[j / 2], pair_of_dword(2 * (j % 2))));
}

void q6k_expand(const uint8_t* g, Block16& b) {
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  for (int n = 0; n < 2; ++n)
    for (int k = 0; k < 8; ++k) {
      const __m512i la = _mm512_loadu_si512(g + 64 * (16 * n + k));
      const __m512i lb = _mm512_loadu_si512(g + 64 * (16 * n + k + 8));
      const __m512i h = _mm512_loadu_si512(g + 2048 + 64 * (8 * n + k));
      // Quad 32n + 8t + k: ql nibbles topped by bit pair t of qh (as q6k_group).
      _mm512_store_si512(
          b.q[32 * n + k],
          _mm512_ternarylogic_epi32(_mm512_and_si512(la, m4), _mm512_slli_epi16(h, 4), m30, 0xf8));
      _mm512_store_si512(
          b.q[32 * n + 8 + k],
          _mm512_ternarylogic_epi32(_mm512_and_si512(lb, m4), _mm512_slli_epi16(h, 2), m30, 0xf8));
      _mm512_store_si512(
          b.q[32 * n + 16 + k],
          _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(la, 4), m4), h, m30, 0xf8));
      _mm512_store_si512(b.q[32 * n + 24 + k],
                         _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(lb, 4), m4),
                                                   _mm512_srli_epi16(h, 2), m30, 0xf8));
    }
  // Block16's integer form (Q8_K activations) with zero point 32: the scales and d.
  _mm512_store_ps(b.d,
                  _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 3328))));
  for (int j = 0; j < 8; ++j) {
    const __m512i x = _mm512_cvtepi8_epi16(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 3072 + 32 * j)));
    _mm512_store_si512(b.isc[2 * j], _mm512_srai_epi32(_mm512_slli_epi32(x, 16), 16));
    _mm512_store_si512(b.isc[2 * j + 1], _mm512_srai_epi32(x, 16));
  }
}

// ---- The RepackEntry gemm: every M.

using GroupFn = void (*)(int64_t, const uint8_t*, const uint8_t*, size_t, float*, size_t);

// From this many activation rows on, the rows-16 GEMM (as for the file's layout: kquants.cpp).
constexpr int64_t kPrefillRows = 16;

template <GroupFn G1, GroupFn G2, GroupFn G3, GroupFn G4, size_t kBytes, PackedExpandFn kExpand,
          int kScaleGroup, int kZeroPoint, GroupFn G8 = nullptr>
void packed_gemm(int64_t K, const void* Wp, int64_t n_rows, const void* A, size_t a_stride,
                 int64_t M, float* Y, size_t ldy) {
  if (M >= kPrefillRows)
    return gemm_vnni_rows16_packed(kExpand, kBytes, kScaleGroup, ActFormat::kQ8K, K, Wp, n_rows, A,
                                   a_stride, M, Y, ldy, kZeroPoint);
  const int64_t nsb = K / QK_K;
  const auto* w = static_cast<const uint8_t*>(Wp);
  const auto* a = static_cast<const uint8_t*>(A);
  // Decode and small batches: each group streams from memory once, further column tiles re-read
  // it from L1.
  for (int64_t gi = 0; gi < n_rows / kGroup; ++gi) {
    const uint8_t* g = w + size_t(gi * nsb) * kBytes;
    const int64_t r = gi * kGroup;
    for (int64_t m0 = 0; m0 < M;) {
      const int64_t left = M - m0;
      const uint8_t* am = a + m0 * a_stride;
      float* y = Y + m0 * ldy + r;
      if (G8 != nullptr && left >= 8) {
        G8(nsb, g, am, a_stride, y, ldy);
        m0 += 8;
      } else if (G4 != nullptr && left >= 4) {
        G4(nsb, g, am, a_stride, y, ldy);
        m0 += 4;
      } else if (left >= 3) {
        G3(nsb, g, am, a_stride, y, ldy);
        m0 += 3;
      } else if (left == 2) {
        G2(nsb, g, am, a_stride, y, ldy);
        m0 += 2;
      } else {
        G1(nsb, g, am, a_stride, y, ldy);
        m0 += 1;
      }
    }
  }
}

}  // namespace

void register_avx512_repacked(KernelTable& t) {
  t.repack[uint32_t(DType::Q4_K)] = {
      kGroup, k4_packed_bytes<false>, k4_pack<false>,
      packed_gemm<k4_group<false, 1>, k4_group<false, 2>, k4_group<false, 3>, k4_group<false, 4>,
                  kQ4Bytes, k4_expand<false>, 32, 0, k4_group_wide<false, 8>>};
  t.repack[uint32_t(DType::Q5_K)] = {
      kGroup, k4_packed_bytes<true>, k4_pack<true>,
      packed_gemm<k4_group<true, 1>, k4_group<true, 2>, k4_group<true, 3>, k4_group<true, 4>,
                  kQ5Bytes, k4_expand<true>, 32, 0, k4_group_wide<true, 8>>};
  // q6k_group holds 4 accumulators per activation row (3 rows at most fit the registers);
  // q6k_group_wide one, for 4 and 8 rows.
  t.repack[uint32_t(DType::Q6_K)] = {
      kGroup, q6k_packed_bytes, q6k_pack,
      packed_gemm<q6k_group<1>, q6k_group<2>, q6k_group<3>, q6k_group_wide<4>, kQ6Bytes, q6k_expand,
                  16, 32, q6k_group_wide<8>>};
}

}  // namespace hearth::kernels
