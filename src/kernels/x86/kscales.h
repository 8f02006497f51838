// kernels/x86/kscales.h — the K-quant scale decoders that every x86 level's unpackers share:
// 128-bit integer code (SSE4.1 + AVX2's variable shifts), so the AVX2 and AVX-512 kernels decode
// the packed scales the same way instead of one scalar lookup per scale.
// Header-only with internal linkage, like the other x86/ headers.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant/blocks.h"

namespace hearth::kernels::x86 {
namespace {

// Bit spreading: the 8 nibbles of x into the low nibbles of 8 bytes; the 8 bit pairs of a 16-bit
// x into the low 2 bits of 8 bytes (pdep would do either in one instruction, but is microcoded
// and slow on Zen 1/2, common AVX2 CPUs).
inline uint64_t spread_nibbles(uint32_t x) {
  uint64_t t = x;
  t = (t | (t << 16)) & 0x0000FFFF0000FFFFull;
  t = (t | (t << 8)) & 0x00FF00FF00FF00FFull;
  return (t | (t << 4)) & 0x0F0F0F0F0F0F0F0Full;
}
inline uint64_t spread_pairs(uint16_t x) {
  uint64_t t = x;
  t = (t | (t << 24)) & 0x000000FF000000FFull;
  t = (t | (t << 12)) & 0x000F000F000F000Full;
  return (t | (t << 6)) & 0x0303030303030303ull;
}

// Q3_K: the 16 signed 6-bit scales (one per 16 elements), as int8. Scale j: 4 low bits from byte
// j (j < 8) or byte j - 8's high nibble, 2 high bits from bits 2 (j / 4) .. +1 of byte 8 + j % 4,
// minus 32 (quant/kquants.h's q3k_scale, 16 at a time).
inline __m128i q3k_scales_s8(const uint8_t* scales) {
  uint64_t lo8;
  uint32_t hi4;
  std::memcpy(&lo8, scales, 8);
  std::memcpy(&hi4, scales + 8, 4);
  const __m128i v = _mm_cvtsi64_si128(int64_t(lo8)), m4 = _mm_set1_epi8(0x0f);
  const __m128i low =
      _mm_unpacklo_epi64(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
  const __m128i high = _mm_and_si128(
      _mm_srlv_epi32(_mm_set1_epi32(int32_t(hi4)), _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
  return _mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi16(high, 4)), _mm_set1_epi8(32));
}

// IQ4_XS: the 8 signed 6-bit scales (one per 32 elements) as int16: nibble j of scales_l (low 4
// bits), bit pair j of scales_h (high 2), minus 32.
inline __m128i iq4xs_scales_s16(const block_iq4_xs& b) {
  uint32_t sl;
  std::memcpy(&sl, b.scales_l, 4);
  const uint64_t ls = spread_nibbles(sl) | (spread_pairs(b.scales_h) << 4);
  return _mm_sub_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(ls))), _mm_set1_epi16(32));
}

}  // namespace
}  // namespace hearth::kernels::x86
