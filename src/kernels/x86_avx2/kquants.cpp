// AVX2 kernels for the K-quants and IQ4_XS against Q8_K activations.
//
// Every type is unpacked in registers to one form — 8 vectors of 32 bytes in element order, a
// 16-bit scale vector per 32 elements, and the per-16 offsets the activation's bsums remove — and
// dotted by one kernel: vpmaddubsw (u8 x s8 -> s16 pairs), vpmaddwd by the scales, integer sums
// over the super-block, one FMA per super-block. The drivers (decode, small batches, blocked
// batches) are kernels/x86/row_stream.h; prefill of 8 or more rows goes through gemm_cols.
#include "quant/kquants.h"

#include <cstring>

#include "kernels/generic/generic.h"
#include "kernels/unpack_rows.h"
#include "kernels/x86/kscales.h"
#include "kernels/x86/row_stream.h"
#include "kernels/x86_avx2/common.h"
#include "kernels/x86_avx2/gemm_cols.h"
#include "kernels/x86_avx2/x86_avx2.h"
#include "quant/blocks.h"

namespace hearth::kernels {
namespace {

using namespace avx2;

// The Q8_K activation quantizer, bit-identical to quantize_row_q8_K_ref: the value of largest
// magnitude (the first one on ties) sets the scale, cvtps rounds to nearest even like the
// reference's nearest_int.
void quantize_row_q8_K_avx2(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_K*>(vy);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    __m256 vmax = _mm256_setzero_ps();
    for (int j = 0; j < QK_K; j += 8)
      vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(x + j), abs_mask));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    if (amax == 0) {
      std::memset(&y[b], 0, sizeof(block_q8_K));
      continue;
    }
    const float mx = q8k_signed_max(x, amax);
    const float iscale = -127.0f / mx;
    const __m256 vs = _mm256_set1_ps(iscale);
    const __m256i v127 = _mm256_set1_epi32(127);
    for (int j = 0; j < QK_K; j += 16) {
      const __m256i q0 =
          _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), vs)), v127);
      const __m256i q1 =
          _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8), vs)), v127);
      // packs works per 128-bit lane: restore element order before narrowing to bytes.
      const __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
      _mm_storeu_si128(
          reinterpret_cast<__m128i*>(y[b].qs + j),
          _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1)));
      const __m256i s = _mm256_add_epi32(q0, q1);
      __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      t = _mm_add_epi32(t, _mm_unpackhi_epi64(t, t));
      t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 1));
      y[b].bsums[j / 16] = int16_t(_mm_cvtsi128_si32(t));
    }
    y[b].d = 1 / iscale;
  }
}

// One super-block: q[j] holds elements 32j .. 32j+31. Unsigned forms: weight = d * sc * q -
// doff * off16 per 16 elements; the signed form (IQ4_XS) has q signed and no offset.
struct KUnp {
  __m256i q[8];
  // The 16-bit scales, picked per 32 elements by scale_at (kept compact so that an unpacked
  // super-block and the accumulators of a 4-row pass fit the 16 ymm registers).
  __m256i sb[2];
  __m256i off16;  // per 16 elements, multiplied with the activation's bsums
  __m128i off32;  // Q4_K/Q5_K instead: per 32 elements (the mins), against bsums summed by pairs
  float d, doff;
};

inline __m256i load(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// 16 int8 scales, one per 16 elements: widened once, each half put in both 128-bit lanes.
HEARTH_KERNEL_INLINE void scales_per16(__m128i s8, KUnp& u) {
  const __m256i s16 = _mm256_cvtepi8_epi16(s8);
  u.sb[0] = _mm256_permute2x128_si256(s16, s16, 0x00);  // scales 0-7 in both lanes
  u.sb[1] = _mm256_permute2x128_si256(s16, s16, 0x11);  // scales 8-15
}
// 8 int16 scales, one per 32 elements, in both lanes.
HEARTH_KERNEL_INLINE void scales_per32(__m128i s16, KUnp& u) {
  u.sb[0] = _mm256_broadcastsi128_si256(s16);
}
// The scales of elements 32j..32j+31 as 16 int16 lanes (lanes 0-7 for the first 16 elements,
// 8-15 for the rest): one vpshufb. Per 16: int16 2j in the low lane, 2j + 1 in the high one.
template <bool kPer32>
HEARTH_KERNEL_INLINE __m256i scale_at(const KUnp& u, int j) {
  if constexpr (kPer32) {
    return _mm256_shuffle_epi8(u.sb[0], _mm256_set1_epi16(int16_t(0x0100 + 0x0202 * j)));
  } else {
    const int a = 4 * (j % 4), b = a + 2;  // byte offsets of int16 2j and 2j + 1 in their lane
    const __m256i pick = _mm256_setr_epi8(
        char(a), char(a + 1), char(a), char(a + 1), char(a), char(a + 1), char(a), char(a + 1),
        char(a), char(a + 1), char(a), char(a + 1), char(a), char(a + 1), char(a), char(a + 1),
        char(b), char(b + 1), char(b), char(b + 1), char(b), char(b + 1), char(b), char(b + 1),
        char(b), char(b + 1), char(b), char(b + 1), char(b), char(b + 1), char(b), char(b + 1));
    return _mm256_shuffle_epi8(u.sb[j / 4], pick);
  }
}
HEARTH_KERNEL_INLINE __m128i u8x8_to_s16(uint64_t s8) {
  return _mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(s8)));
}

// Q4_K and Q5_K: scales and mins (6 bits each, 12 bytes), by 32-bit word arithmetic: scales and
// mins 0-3 are the low 6 bits of bytes 0-3 / 4-7; 4-7 take 4 bits from bytes 8-11 and their top
// 2 bits from the top of bytes 0-3 / 4-7.
HEARTH_KERNEL_INLINE void k4_scales(const uint8_t* scales, uint16_t d, uint16_t dmin, KUnp& u) {
  uint32_t w[3];
  std::memcpy(w, scales, 12);
  const uint32_t sc_lo = w[0] & 0x3f3f3f3f, mn_lo = w[1] & 0x3f3f3f3f;
  const uint32_t sc_hi = (w[2] & 0x0f0f0f0f) | (((w[0] >> 6) & 0x03030303) << 4);
  const uint32_t mn_hi = ((w[2] >> 4) & 0x0f0f0f0f) | (((w[1] >> 6) & 0x03030303) << 4);
  scales_per32(u8x8_to_s16(uint64_t(sc_lo) | (uint64_t(sc_hi) << 32)), u);
  u.off32 = _mm_cvtepu8_epi16(
      _mm_cvtsi64_si128(int64_t(uint64_t(mn_lo) | (uint64_t(mn_hi) << 32))));  // m0..m7
  u.d = h2f(d);
  u.doff = h2f(dmin);
}

// Q4_K: chunk c of qs (32 bytes) holds sub-block 2c in its low nibbles, 2c + 1 in its high ones.
HEARTH_KERNEL_INLINE void regs_q4_K(const uint8_t* row, int64_t sb, KUnp& u) {
  const block_q4_K& b = reinterpret_cast<const block_q4_K*>(row)[sb];
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int c = 0; c < 4; ++c) {
    const __m256i q = load(b.qs + 32 * c);
    u.q[2 * c] = _mm256_and_si256(q, m4);
    u.q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
  }
  k4_scales(b.scales, b.d, b.dmin, u);
}

// Q5_K: Q4_K plus a fifth bit, bit j of qh[l] for element 32j + l (16-bit shifts: bits
// crossing in from the neighbouring byte are masked off).
HEARTH_KERNEL_INLINE void regs_q5_K(const uint8_t* row, int64_t sb, KUnp& u) {
  const block_q5_K& b = reinterpret_cast<const block_q5_K*>(row)[sb];
  const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
  const __m256i qh = load(b.qh);
  for (int c = 0; c < 4; ++c) {
    const __m256i q = load(b.qs + 32 * c);
    const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one);
    const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one);
    u.q[2 * c] = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_slli_epi16(h0, 4));
    u.q[2 * c + 1] =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm256_slli_epi16(h1, 4));
  }
  k4_scales(b.scales, b.d, b.dmin, u);
}

// Q6_K: element 128n + 32k + l = 4 bits of ql (low nibbles of ql[64n + l] for k = 0, of
// ql[64n + 32 + l] for k = 1, their high nibbles for k = 2, 3) | bits 2k..2k+1 of qh[32n + l]
// << 4; weight d * scale * (q - 32).
HEARTH_KERNEL_INLINE void regs_q6_K(const uint8_t* row, int64_t sb, KUnp& u) {
  const block_q6_K& b = reinterpret_cast<const block_q6_K*>(row)[sb];
  const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
  for (int n = 0; n < 2; ++n) {
    const __m256i l0 = load(b.ql + 64 * n), l1 = load(b.ql + 64 * n + 32);
    const __m256i qh = load(b.qh + 32 * n);
    // Bit pair 2k of qh moved to bits 4-5 (16-bit shifts; bits crossing from the neighbouring
    // byte are masked off).
    const __m256i h0 = _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30);
    const __m256i h1 = _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30);
    const __m256i h2 = _mm256_and_si256(qh, m30);
    const __m256i h3 = _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30);
    u.q[4 * n + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), h0);
    u.q[4 * n + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), h1);
    u.q[4 * n + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h2);
    u.q[4 * n + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), h3);
  }
  const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
  scales_per16(s8, u);
  u.off16 = _mm256_cvtepi8_epi16(s8);
  u.d = h2f(b.d);
  u.doff = 32.0f * u.d;
}

// Q2_K / Q3_K low bits: element 128h + 32j + l is bits 2j..2j+1 of qs[32h + l].
inline __m256i q2_bits(__m256i q, int j) {
  return _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), _mm256_set1_epi8(3));
}

// Q2_K: weight d * (scale & 15) * q - dmin * (scale >> 4) per 16 elements.
HEARTH_KERNEL_INLINE void regs_q2_K(const uint8_t* row, int64_t sb, KUnp& u) {
  const block_q2_K& b = reinterpret_cast<const block_q2_K*>(row)[sb];
  for (int h = 0; h < 2; ++h) {
    const __m256i q = load(b.qs + 32 * h);
    for (int j = 0; j < 4; ++j) u.q[4 * h + j] = q2_bits(q, j);
  }
  const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  scales_per16(_mm_and_si128(s, m4), u);
  u.off16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), m4));
  u.d = h2f(b.d);
  u.doff = h2f(b.dmin);
}

// Q3_K: Q2_K's low bits plus 4 * bit (4h + j) of hmask[l]: q in 0..7, weight d * scale * (q - 4).
HEARTH_KERNEL_INLINE void regs_q3_K(const uint8_t* row, int64_t sb, KUnp& u) {
  const block_q3_K& b = reinterpret_cast<const block_q3_K*>(row)[sb];
  const __m256i hm = load(b.hmask), one = _mm256_set1_epi8(1);
  for (int h = 0; h < 2; ++h) {
    const __m256i q = load(b.qs + 32 * h);
    for (int j = 0; j < 4; ++j) {
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + j), one);
      u.q[4 * h + j] = _mm256_or_si256(q2_bits(q, j), _mm256_slli_epi16(hi, 2));
    }
  }
  const __m128i s8 = x86::q3k_scales_s8(b.scales);
  scales_per16(s8, u);
  u.off16 = _mm256_cvtepi8_epi16(s8);
  u.d = h2f(b.d);
  u.doff = 4.0f * u.d;
}

// IQ4_XS: each nibble through the 16-entry code book (signed) with vpshufb; sub-block j is
// qs[16j..16j+15]'s low nibbles, then their high ones; 6-bit scales minus 32, one per 32.
HEARTH_KERNEL_INLINE void regs_iq4_xs(const uint8_t* row, int64_t sb, KUnp& u) {
  const block_iq4_xs& b = reinterpret_cast<const block_iq4_xs*>(row)[sb];
  const __m256i table =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kvalues_iq4nl)));
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int j = 0; j < 8; ++j) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 16 * j));
    const __m256i n = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
    u.q[j] = _mm256_shuffle_epi8(table, n);
  }
  scales_per32(x86::iq4xs_scales_s16(b), u);
  u.d = h2f(b.d);
  u.doff = 0;
}

// The Kind of row_stream.h for one type: U unpacks; kSigned: q is signed (sign trick, no offset).
// kOff32: the offsets are per 32 elements (off32), taken against the activation's bsums summed by
// pairs once per activation step (shared by the rows of a pass) instead of duplicated per row.
template <void (*U)(const uint8_t*, int64_t, KUnp&), bool kSigned, size_t kBlockBytes,
          bool kOff32 = false>
struct KKind {
  static constexpr int kStep = QK_K;
  static constexpr size_t kStepBytes = kBlockBytes;
  static constexpr int kMaxCols = 4;                 // 16 ymm registers
  static constexpr bool kPer32 = kOff32 || kSigned;  // Q4_K, Q5_K, IQ4_XS
  using Unp = KUnp;
  struct Act {
    const block_q8_K* y;
    __m128i bs32;  // kOff32: sums of the activation per 32 elements
  };
  using Acc = __m256;
  HEARTH_KERNEL_INLINE static void unpack(const uint8_t* row, int64_t sb, Unp& u) { U(row, sb, u); }
  HEARTH_KERNEL_INLINE static void prep(const uint8_t* act, int64_t sb, Act& a) {
    a.y = reinterpret_cast<const block_q8_K*>(act) + sb;
    if constexpr (kOff32) {  // |sum of 32| <= 32 * 127 fits int16
      const __m256i s = _mm256_madd_epi16(load(a.y->bsums), _mm256_set1_epi16(1));
      a.bs32 = _mm_packs_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    }
  }
  static void zero(Acc& a) { a = _mm256_setzero_ps(); }
  HEARTH_KERNEL_INLINE static void dot(const Unp& u, const Act& ya, Acc& acc) {
    const block_q8_K& y = *ya.y;
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      const __m256i yv = load(y.qs + 32 * j);
      __m256i p;
      if constexpr (kSigned)  // |q| <= 127 and |y| <= 127 keep each pair sum below 2^15
        p = _mm256_maddubs_epi16(_mm256_sign_epi8(u.q[j], u.q[j]), _mm256_sign_epi8(yv, u.q[j]));
      else  // q <= 63: no saturation
        p = _mm256_maddubs_epi16(u.q[j], yv);
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_at<kPer32>(u, j)));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(u.d * y.d), acc);
    if constexpr (kOff32) {  // 4 lanes; the upper 4 of the accumulator get 0
      const __m128 off = _mm_cvtepi32_ps(_mm_madd_epi16(ya.bs32, u.off32));
      acc = _mm256_fnmadd_ps(_mm256_zextps128_ps256(off), _mm256_set1_ps(u.doff * y.d), acc);
    } else if constexpr (!kSigned) {
      const __m256i off = _mm256_madd_epi16(load(y.bsums), u.off16);
      acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(off), _mm256_set1_ps(u.doff * y.d), acc);
    }
  }
  static float finish(const Acc& a) { return hsum(a); }
};

// The same super-block in gemm_cols' form (kernels/unpack_rows.h): bytes (unsigned, or signed
// for IQ4_XS) with a float scale and offset per group (16 elements, or 32 where the type's scales
// are per 32).
template <void (*U)(const uint8_t*, int64_t, KUnp&), bool kSigned, int GROUP, bool kOff32>
void unpack_row(const uint8_t* row, int64_t sb, RowUnpack& o) {
  KUnp u;
  U(row, sb, u);
  if constexpr (kOff32)  // per 32 -> per 16: each offset twice
    u.off16 = _mm256_set_m128i(_mm_unpackhi_epi16(u.off32, u.off32),
                               _mm_unpacklo_epi16(u.off32, u.off32));
  for (int j = 0; j < 8; ++j) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(o.u + 32 * j), u.q[j]);
    if constexpr (kSigned)
      _mm256_store_si256(reinterpret_cast<__m256i*>(o.su + 32 * j), _mm256_abs_epi8(u.q[j]));
  }
  alignas(32) int16_t sc[16], off[16];
  for (int g = 0; g < 256 / GROUP; ++g) {
    const int e = g * GROUP;  // first element of the group
    _mm256_store_si256(reinterpret_cast<__m256i*>(sc), scale_at<GROUP == 32>(u, e / 32));
    o.scale[g] = u.d * float(sc[e % 32 == 0 ? 0 : 8]);
  }
  _mm256_store_si256(reinterpret_cast<__m256i*>(off), u.off16);
  for (int g = 0; g < 256 / GROUP; ++g)
    o.off[g] = kSigned ? 0.0f : u.doff * float(off[g * GROUP / 16]);
}

// Prefill of 8 or more activation rows through the column GEMM (IQ4_XS's signed code book
// values through its sign-trick variant); everything else streams rows.
template <void (*U)(const uint8_t*, int64_t, KUnp&), bool kSigned, int GROUP, VecDotFn REF,
          size_t kBlockBytes, int kMaxU, bool kOff32>
void gemm_k(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
            size_t a_stride, int64_t M, float* Y, size_t ldy) {
  if (K % QK_K != 0) {  // K-quant rows are whole super-blocks; not expected
    gemm_from_vec_dot(REF, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
  } else if (M < 8) {
    x86::gemm<KKind<U, kSigned, kBlockBytes, kOff32>>(K, W, w_stride, n_rows, A, a_stride, M, Y,
                                                      ldy);
  } else if constexpr (kSigned) {
    gemm_cols_signed(unpack_row<U, kSigned, GROUP, kOff32>, GROUP, ActFormat::kQ8K, K, W, w_stride,
                     n_rows, A, a_stride, M, Y, ldy);
  } else {
    gemm_cols(unpack_row<U, kSigned, GROUP, kOff32>, GROUP, ActFormat::kQ8K, K, W, w_stride, n_rows,
              A, a_stride, M, Y, ldy, kMaxU);
  }
}

template <void (*U)(const uint8_t*, int64_t, KUnp&), bool kSigned, int GROUP, VecDotFn REF,
          size_t kBlockBytes, int kMaxU = 0, bool kOff32 = false>
void put(KernelTable& t, DType type) {
  t.vec_dot[uint32_t(type)] = x86::vec_dot<KKind<U, kSigned, kBlockBytes, kOff32>>;
  t.gemm[uint32_t(type)] = gemm_k<U, kSigned, GROUP, REF, kBlockBytes, kMaxU, kOff32>;
}

}  // namespace

UnpackFn avx2::row_unpacker(DType type) {
  switch (type) {
    case DType::Q2_K:
      return unpack_row<regs_q2_K, false, 16, false>;
    case DType::Q3_K:
      return unpack_row<regs_q3_K, false, 16, false>;
    case DType::Q4_K:
      return unpack_row<regs_q4_K, false, 32, true>;
    case DType::Q5_K:
      return unpack_row<regs_q5_K, false, 32, true>;
    case DType::Q6_K:
      return unpack_row<regs_q6_K, false, 16, false>;
    default:
      return nullptr;
  }
}

void register_avx2_kquants(KernelTable& t) {
  t.quantize_row[uint32_t(DType::Q8_K)] = quantize_row_q8_K_avx2;
  put<regs_q4_K, false, 32, vec_dot_q4_K_q8_K, sizeof(block_q4_K), 15, true>(t, DType::Q4_K);
  put<regs_q5_K, false, 32, vec_dot_q5_K_q8_K, sizeof(block_q5_K), 31, true>(t, DType::Q5_K);
  put<regs_q6_K, false, 16, vec_dot_q6_K_q8_K, sizeof(block_q6_K), 63>(t, DType::Q6_K);
  put<regs_q3_K, false, 16, vec_dot_q3_K_q8_K, sizeof(block_q3_K), 7>(t, DType::Q3_K);
  put<regs_q2_K, false, 16, vec_dot_q2_K_q8_K, sizeof(block_q2_K), 3>(t, DType::Q2_K);
  put<regs_iq4_xs, true, 32, vec_dot_iq4_xs_q8_K, sizeof(block_iq4_xs)>(t, DType::IQ4_XS);
}

}  // namespace hearth::kernels
