// AVX-512 + VNNI kernels for the K-quants against Q8_K activations.
//
// Weights are unpacked once per super-block to unsigned bytes and dotted with the int8
// activations by vpdpbusd (u8 x s8 -> s32, 64 MACs per instruction); sub-block scales are applied
// in float per 32-bit lane, and the min / offset terms come from the activation's bsums. A tile of
// up to 4 activation rows reuses each unpacked super-block (prefill).
#include "quant/kquants.h"

#include "kernels/x86/kscales.h"
#include "kernels/x86/row_stream.h"
#include "kernels/x86_avx512/common.h"
#include "kernels/x86_avx512/gemm_vnni.h"
#include "kernels/x86_avx512/x86_avx512.h"
#include "quant/blocks.h"

namespace hearth::kernels {
namespace {

using namespace avx512;

// ---- Q8_K activation quantizer (bit-identical to quantize_row_q8_K_ref).
void quantize_row_q8_K_avx512(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_K*>(vy);
  const __m512 sign_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    // Signed value of largest magnitude (first one on ties, as the reference scans).
    __m512 vmax = _mm512_setzero_ps();
    for (int j = 0; j < QK_K; j += 16)
      vmax = _mm512_max_ps(vmax, _mm512_and_ps(_mm512_loadu_ps(x + j), sign_mask));
    const float amax = _mm512_reduce_max_ps(vmax);
    if (amax == 0) {
      std::memset(&y[b], 0, sizeof(block_q8_K));
      continue;
    }
    const float mx = q8k_signed_max(x, amax);
    const float iscale = -127.0f / mx;
    const __m512 vs = _mm512_set1_ps(iscale);
    const __m512i v127 = _mm512_set1_epi32(127);
    for (int j = 0; j < QK_K; j += 16) {
      // cvtps rounds to nearest even, like the reference's nearest_int.
      __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j), vs));
      q = _mm512_min_epi32(q, v127);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + j), _mm512_cvtsepi32_epi8(q));
      y[b].bsums[j / 16] = int16_t(_mm512_reduce_add_epi32(q));
    }
    y[b].d = 1 / iscale;
  }
}

// ---- Q4_K

struct Q4KUnpacked {
  __m512i q[4];    // nibbles as bytes; q[k] lanes 0-31 / 32-63 = sub-blocks kSub[k][0] / [1]
  __m512 sc[4];    // d * scale per 32-bit lane
  __m256i mins16;  // min of the sub-block of each bsums entry (int16)
  float dmin;
};

// Sub-block scales and mins of Q4_K and Q5_K (12 bytes, 6 bits each) into u.sc / u.mins16.
HEARTH_KERNEL_INLINE void unpack_k4_scales(const uint8_t* scales, uint16_t d, uint16_t dmin,
                                           Q4KUnpacked& u) {
  // Unpack the 12 scale bytes with 32-bit word arithmetic: scales 0-3 / mins 0-3 are the low 6
  // bits of bytes 0-3 / 4-7; scales 4-7 / mins 4-7 take 4 bits from bytes 8-11 and their top 2
  // bits from the top of bytes 0-3 / 4-7.
  uint32_t w[3];
  std::memcpy(w, scales, 12);
  const uint32_t sc_lo = w[0] & 0x3f3f3f3f, mn_lo = w[1] & 0x3f3f3f3f;
  const uint32_t sc_hi = (w[2] & 0x0f0f0f0f) | (((w[0] >> 6) & 0x03030303) << 4);
  const uint32_t mn_hi = ((w[2] >> 4) & 0x0f0f0f0f) | (((w[1] >> 6) & 0x03030303) << 4);
  const __m128i sc8 = _mm_cvtsi64_si128(int64_t(uint64_t(sc_lo) | (uint64_t(sc_hi) << 32)));
  const __m128i mn8 = _mm_cvtsi64_si128(int64_t(uint64_t(mn_lo) | (uint64_t(mn_hi) << 32)));
  const __m256 scf =
      _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc8)), _mm256_set1_ps(h2f(d)));
  const __m512 s8 = _mm512_castps256_ps512(scf);
  // Lane i of q[k] belongs to sub-block (i < 8 ? a : b) with (a, b) = (0,2), (1,3), (4,6), (5,7).
  u.sc[0] =
      _mm512_permutexvar_ps(_mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0), s8);
  u.sc[1] =
      _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1), s8);
  u.sc[2] =
      _mm512_permutexvar_ps(_mm512_set_epi32(6, 6, 6, 6, 6, 6, 6, 6, 4, 4, 4, 4, 4, 4, 4, 4), s8);
  u.sc[3] =
      _mm512_permutexvar_ps(_mm512_set_epi32(7, 7, 7, 7, 7, 7, 7, 7, 5, 5, 5, 5, 5, 5, 5, 5), s8);
  const __m128i m16 = _mm_cvtepu8_epi16(mn8);  // m0..m7 as int16
  u.mins16 = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
  u.dmin = h2f(dmin);
}

HEARTH_KERNEL_INLINE void unpack_q4_K(const block_q4_K& b, Q4KUnpacked& u) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i qs0 = _mm512_loadu_si512(b.qs), qs1 = _mm512_loadu_si512(b.qs + 64);
  u.q[0] = _mm512_and_si512(qs0, m4);                        // sub 0 | sub 2
  u.q[1] = _mm512_and_si512(_mm512_srli_epi16(qs0, 4), m4);  // sub 1 | sub 3
  u.q[2] = _mm512_and_si512(qs1, m4);                        // sub 4 | sub 6
  u.q[3] = _mm512_and_si512(_mm512_srli_epi16(qs1, 4), m4);  // sub 5 | sub 7
  unpack_k4_scales(b.scales, b.d, b.dmin, u);
}

// Q5_K is Q4_K plus a fifth bit per element: bit 2c (low nibbles of qs chunk c) or 2c + 1 (high
// nibbles) of qh[l]. The same unpacked form and dot serve both.
HEARTH_KERNEL_INLINE void unpack_q5_K(const block_q5_K& b, Q4KUnpacked& u) {
  const __m512i m4 = _mm512_set1_epi8(0x0f), bit4 = _mm512_set1_epi8(0x10);
  const __m512i qs0 = _mm512_loadu_si512(b.qs), qs1 = _mm512_loadu_si512(b.qs + 64);
  const __m512i qh = bcast256(b.qh);
  // Bit lo (first 32 bytes) / hi (last 32) of each qh byte moved to bit 4 (16-bit shifts; bits
  // crossing into the neighbouring byte are masked off).
  auto high = [&](int lo, int hi) {
    const __m512i sh =
        _mm512_inserti64x4(_mm512_set1_epi16(int16_t(lo)), _mm256_set1_epi16(int16_t(hi)), 1);
    return _mm512_and_si512(_mm512_slli_epi16(_mm512_srlv_epi16(qh, sh), 4), bit4);
  };
  u.q[0] = _mm512_or_si512(_mm512_and_si512(qs0, m4), high(0, 2));
  u.q[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(qs0, 4), m4), high(1, 3));
  u.q[2] = _mm512_or_si512(_mm512_and_si512(qs1, m4), high(4, 6));
  u.q[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(qs1, 4), m4), high(5, 7));
  unpack_k4_scales(b.scales, b.d, b.dmin, u);
}

// acc += y.d * sum_k sc[k] * dot(q[k], act[k]);  macc += y.d * dmin * sum(mins * bsums)
HEARTH_KERNEL_INLINE void dot_q4_K(const Q4KUnpacked& u, const block_q8_K& y, __m512& acc,
                                   __m256& macc) {
  const int8_t* a = y.qs;
  const __m512i z = _mm512_setzero_si512();
  const __m512i d0 = _mm512_dpbusd_epi32(z, u.q[0], load2x256(a + 0, a + 64));
  const __m512i d1 = _mm512_dpbusd_epi32(z, u.q[1], load2x256(a + 32, a + 96));
  const __m512i d2 = _mm512_dpbusd_epi32(z, u.q[2], load2x256(a + 128, a + 192));
  const __m512i d3 = _mm512_dpbusd_epi32(z, u.q[3], load2x256(a + 160, a + 224));
  __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(d0), u.sc[0]);
  t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), u.sc[1], t);
  t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d2), u.sc[2], t);
  t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d3), u.sc[3], t);
  acc = _mm512_fmadd_ps(t, _mm512_set1_ps(y.d), acc);
  const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.bsums));
  const __m256 mm = _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, u.mins16));
  macc = _mm256_fmadd_ps(mm, _mm256_set1_ps(y.d * u.dmin), macc);
}

// ---- Q6_K

// The offset form (Q6_K, Q3_K, IQ4_XS, Q2_K): unsigned q with weight d * scale * q - doff * off
// per 16 elements; off is the scale itself for the types stored with a fixed zero point (Q6_K 32,
// Q3_K 4, IQ4_XS 128 after +128) and the 4-bit min for Q2_K.
struct Q6KUnpacked {
  __m512i q[4];      // unsigned values as bytes, elements 64k .. 64k+63 in order
  __m512 sc[4];      // d * scale, lanes 4s..4s+3 = sub-block 4k+s
  __m256i scales16;  // int16 scales
  __m256i off16;     // Q2_K: int16 offsets (its mins) against the activation's bsums
  float d, doff;
};

// Scales (int8, one per 16 elements) times d into the per-lane form of Q6KUnpacked.
HEARTH_KERNEL_INLINE void offset_form_scales(__m128i s8, float d, Q6KUnpacked& u) {
  u.d = d;
  const __m512 sf = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(s8)), _mm512_set1_ps(d));
  for (int k = 0; k < 4; ++k) {
    const int s = 4 * k;
    u.sc[k] =
        _mm512_permutexvar_ps(_mm512_set_epi32(s + 3, s + 3, s + 3, s + 3, s + 2, s + 2, s + 2,
                                               s + 2, s + 1, s + 1, s + 1, s + 1, s, s, s, s),
                              sf);
  }
  u.scales16 = _mm256_cvtepi8_epi16(s8);
}

HEARTH_KERNEL_INLINE void unpack_q6_K(const block_q6_K& b, Q6KUnpacked& u) {
  const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(0x30);
  // First 256 bits take qh bits 0-1 (or 4-5), second 2-3 (or 6-7).
  const __m512i sh_lo = shifts16(0, 2), sh_hi = shifts16(4, 6);
  for (int h = 0; h < 2; ++h) {
    const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
    const __m512i qh = bcast256(b.qh + 32 * h);
    // Shift the wanted bit pair down to bits 0-1 of each byte, then up to bits 4-5 (16-bit
    // shifts: bits crossing into the neighbouring byte are masked off).
    const __m512i hb_lo = _mm512_and_si512(_mm512_slli_epi16(_mm512_srlv_epi16(qh, sh_lo), 4), m3);
    const __m512i hb_hi = _mm512_and_si512(_mm512_slli_epi16(_mm512_srlv_epi16(qh, sh_hi), 4), m3);
    u.q[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), hb_lo);
    u.q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), hb_hi);
  }
  offset_form_scales(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)), h2f(b.d), u);
  u.doff = 32.0f * u.d;
}

// sum (d * sc * q - doff * off) * y = sum d * sc * q * y - doff * sum off * bsums. OFF > 0:
// the offset is OFF * the scale (Q6_K 32, Q3_K 4, IQ4_XS 128), a constant the compiler folds
// (measured: carrying it as data cost Q6_K decode 3%); OFF == 0: off16 and doff (Q2_K's mins).
template <int OFF>
HEARTH_KERNEL_INLINE void dot_offset_form(const Q6KUnpacked& u, const block_q8_K& y, __m512& acc,
                                          __m256& macc) {
  const __m512i z = _mm512_setzero_si512();
  __m512 t = _mm512_mul_ps(
      _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(z, u.q[0], _mm512_loadu_si512(y.qs))), u.sc[0]);
  t = _mm512_fmadd_ps(
      _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(z, u.q[1], _mm512_loadu_si512(y.qs + 64))), u.sc[1],
      t);
  t = _mm512_fmadd_ps(
      _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(z, u.q[2], _mm512_loadu_si512(y.qs + 128))), u.sc[2],
      t);
  t = _mm512_fmadd_ps(
      _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(z, u.q[3], _mm512_loadu_si512(y.qs + 192))), u.sc[3],
      t);
  acc = _mm512_fmadd_ps(t, _mm512_set1_ps(y.d), acc);
  const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.bsums));
  if constexpr (OFF > 0) {
    const __m256 mm = _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, u.scales16));
    macc = _mm256_fmadd_ps(mm, _mm256_set1_ps(float(OFF) * y.d * u.d), macc);
  } else {
    const __m256 mm = _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, u.off16));
    macc = _mm256_fmadd_ps(mm, _mm256_set1_ps(y.d * u.doff), macc);
  }
}

// ---- Q3_K, IQ4_XS and Q2_K in the offset form (natural element order, 16 scale lanes).

// Q3_K: element 128h + 32j + l is bits 2j..2j+1 of qs[32h + l] plus 4 * bit (4h + j) of
// hmask[l] (value stored + 4; 16-bit shifts, bits from the neighbouring byte masked off).
HEARTH_KERNEL_INLINE void unpack_q3_K(const block_q3_K& b, Q6KUnpacked& u) {
  const __m512i hm = bcast256(b.hmask), one = _mm512_set1_epi8(1);
  for (int h = 0; h < 2; ++h) {
    const __m512i q = bcast256(b.qs + 32 * h);
    for (int k = 0; k < 2; ++k) {
      const int j = 4 * h + 2 * k;
      const __m512i hi = _mm512_and_si512(_mm512_srlv_epi16(hm, shifts16(j, j + 1)), one);
      u.q[2 * h + k] = _mm512_or_si512(q2_bits(q, k), _mm512_slli_epi16(hi, 2));
    }
  }
  offset_form_scales(x86::q3k_scales_s8(b.scales), h2f(b.d), u);
  u.doff = 4.0f * u.d;
}

// IQ4_XS: each nibble through the 16-entry table (+128, unsigned) with vpshufb; sub-block j (32
// elements, one scale) is its 16 low nibbles, then its 16 high ones.
HEARTH_KERNEL_INLINE void unpack_iq4_xs(const block_iq4_xs& b, Q6KUnpacked& u) {
  const __m512i t = _mm512_broadcast_i32x4(iq4nl_table_u8());
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i first = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
  const __m512i second = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
  for (int z = 0; z < 2; ++z) {  // sub-blocks 4z .. 4z+3, one per 128-bit lane
    const __m512i q = _mm512_loadu_si512(b.qs + 64 * z);
    const __m512i lo = _mm512_shuffle_epi8(t, _mm512_and_si512(q, m4));
    const __m512i hi = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(q, 4), m4));
    u.q[2 * z] = _mm512_permutex2var_epi64(lo, first, hi);
    u.q[2 * z + 1] = _mm512_permutex2var_epi64(lo, second, hi);
  }
  const __m128i s16 = x86::iq4xs_scales_s16(b);  // per 16 elements: sub-block j's scale twice
  offset_form_scales(_mm_packs_epi16(_mm_unpacklo_epi16(s16, s16), _mm_unpackhi_epi16(s16, s16)),
                     h2f(b.d), u);
  u.doff = 128.0f * u.d;
}

// Q2_K: element 128h + 32j + l is bits 2j..2j+1 of qs[32h + l]; weight d * (scale & 15) * q -
// dmin * (scale >> 4) per 16 elements.
HEARTH_KERNEL_INLINE void unpack_q2_K(const block_q2_K& b, Q6KUnpacked& u) {
  for (int h = 0; h < 2; ++h) {
    const __m512i q = bcast256(b.qs + 32 * h);
    for (int k = 0; k < 2; ++k) u.q[2 * h + k] = q2_bits(q, k);
  }
  const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  offset_form_scales(_mm_and_si128(s, m4), h2f(b.d), u);
  u.off16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), m4));
  u.doff = h2f(b.dmin);
}

// ---- Prefill: unpack one super-block per row for the column-vectorised GEMM.

// Q4_K and Q5_K: the registers of their decode unpack back in element order (q[2h] / q[2h + 1]
// hold the low / high halves of chunks 2h and 2h + 1: see Q4KUnpacked).
template <typename Block, void (*Unpack)(const Block&, Q4KUnpacked&)>
void unpack_row_k4(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const Block& b = reinterpret_cast<const Block*>(row)[sb];
  Q4KUnpacked u;
  Unpack(b, u);
  for (int h = 0; h < 2; ++h) {
    const __m512i lo = u.q[2 * h], hi = u.q[2 * h + 1];
    _mm256_store_si256(reinterpret_cast<__m256i*>(o.u + 128 * h), _mm512_castsi512_si256(lo));
    _mm256_store_si256(reinterpret_cast<__m256i*>(o.u + 128 * h + 32), _mm512_castsi512_si256(hi));
    _mm256_store_si256(reinterpret_cast<__m256i*>(o.u + 128 * h + 64),
                       _mm512_extracti64x4_epi64(lo, 1));
    _mm256_store_si256(reinterpret_cast<__m256i*>(o.u + 128 * h + 96),
                       _mm512_extracti64x4_epi64(hi, 1));
  }
  k4_row_scales(b.scales, b.d, b.dmin, o);
}

// The offset form (Q6KUnpacked, element order): 16 scale groups, or 8 of 32 for IQ4_XS.
template <typename Block, void (*Unpack)(const Block&, Q6KUnpacked&), int OFF, int GROUP>
void unpack_row_offset_form(const uint8_t* row, int64_t sb, RowUnpack& o) {
  Q6KUnpacked u;
  Unpack(reinterpret_cast<const Block*>(row)[sb], u);
  for (int k = 0; k < 4; ++k) _mm512_store_si512(o.u + 64 * k, u.q[k]);
  alignas(32) int16_t s16[16], off16[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(s16), u.scales16);
  if constexpr (OFF == 0) _mm256_store_si256(reinterpret_cast<__m256i*>(off16), u.off16);
  for (int g = 0; g < 256 / GROUP; ++g) {
    o.scale[g] = u.d * float(s16[g * GROUP / 16]);
    o.off[g] = OFF > 0 ? float(OFF) * o.scale[g] : u.doff * float(off16[g * GROUP / 16]);
    o.isc[g] = s16[g * GROUP / 16];
    o.imin[g] = int16_t(OFF > 0 ? OFF * s16[g * GROUP / 16] : off16[g * GROUP / 16]);
  }
  o.d = u.d;
  o.dmin = OFF > 0 ? u.d : u.doff;
}

// The Kind of kernels/x86/row_stream.h for one type: Unpack fills the registers of a super-block,
// Dot takes them against an activation super-block (terms before y.d, mins / offsets apart).
template <typename Block, typename U, void (*Unpack)(const Block&, U&),
          void (*Dot)(const U&, const block_q8_K&, __m512&, __m256&)>
struct KKind {
  static constexpr int kStep = QK_K;
  static constexpr size_t kStepBytes = sizeof(Block);
  static constexpr int kMaxCols = 8;  // 32 zmm registers
  using Unp = U;
  using Act = const block_q8_K*;
  struct Acc {
    __m512 v;
    __m256 m;
  };
  HEARTH_KERNEL_INLINE static void unpack(const uint8_t* row, int64_t sb, Unp& u) {
    Unpack(reinterpret_cast<const Block*>(row)[sb], u);
  }
  static void zero(Acc& a) {
    a.v = _mm512_setzero_ps();
    a.m = _mm256_setzero_ps();
  }
  static void prep(const uint8_t* act, int64_t sb, Act& a) {
    a = reinterpret_cast<const block_q8_K*>(act) + sb;
  }
  HEARTH_KERNEL_INLINE static void dot(const Unp& u, const Act& y, Acc& a) { Dot(u, *y, a.v, a.m); }
  static float finish(const Acc& a) { return hsum(a.v) - hsum(a.m); }
};

// Prefill (16 or more activation rows) through the column GEMM; decode and small batches stream
// the rows through the shared drivers.
template <class Kind, UnpackFn RowU, int G, int ZP>
void gemm_k(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
            size_t a_stride, int64_t M, float* Y, size_t ldy) {
  if (M >= 16)
    gemm_vnni(RowU, G, ActFormat::kQ8K, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy, ZP);
  else
    x86::gemm<Kind>(K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

// RowU unpacks rows for prefill (G elements per scale, zero point ZP: gemm_vnni).
template <typename Block, typename Unp, void (*Unpack)(const Block&, Unp&),
          void (*Dot)(const Unp&, const block_q8_K&, __m512&, __m256&), UnpackFn RowU, int G,
          int ZP = 0>
void put(KernelTable& t, DType type) {
  using Kind = KKind<Block, Unp, Unpack, Dot>;
  t.vec_dot[uint32_t(type)] = x86::vec_dot<Kind>;
  t.gemm[uint32_t(type)] = gemm_k<Kind, RowU, G, ZP>;
}

}  // namespace

void register_avx512_kquants(KernelTable& t) {
  t.quantize_row[uint32_t(DType::Q8_K)] = quantize_row_q8_K_avx512;
  put<block_q4_K, Q4KUnpacked, unpack_q4_K, dot_q4_K, unpack_row_k4<block_q4_K, unpack_q4_K>, 32>(
      t, DType::Q4_K);
  put<block_q5_K, Q4KUnpacked, unpack_q5_K, dot_q4_K, unpack_row_k4<block_q5_K, unpack_q5_K>, 32>(
      t, DType::Q5_K);
  put<block_q6_K, Q6KUnpacked, unpack_q6_K, dot_offset_form<32>,
      unpack_row_offset_form<block_q6_K, unpack_q6_K, 32, 16>, 16, 32>(t, DType::Q6_K);
  put<block_q3_K, Q6KUnpacked, unpack_q3_K, dot_offset_form<4>,
      unpack_row_offset_form<block_q3_K, unpack_q3_K, 4, 16>, 16, 4>(t, DType::Q3_K);
  put<block_iq4_xs, Q6KUnpacked, unpack_iq4_xs, dot_offset_form<128>,
      unpack_row_offset_form<block_iq4_xs, unpack_iq4_xs, 128, 32>, 32, 128>(t, DType::IQ4_XS);
  put<block_q2_K, Q6KUnpacked, unpack_q2_K, dot_offset_form<0>,
      unpack_row_offset_form<block_q2_K, unpack_q2_K, 0, 16>, 16>(t, DType::Q2_K);
}

}  // namespace hearth::kernels
