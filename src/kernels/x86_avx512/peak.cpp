// Peak probes for AVX-512: int8 through vpdpbusd (64 u8 x s8 pairs per instruction, as the VNNI
// GEMMs), F32 FMA on 16 lanes, and vdpbf16ps (32 BF16 pairs) where the CPU has AVX512-BF16.
#include <immintrin.h>

#include "base/cpu_features.h"
#include "kernels/x86_avx512/x86_avx512.h"

namespace hearth::kernels {
namespace {

constexpr int kChains = 12;

uint64_t peak_int8_avx512(uint64_t iters) {
  const __m512i a = _mm512_set1_epi8(int8_t(iters | 1));
  __m512i b[kChains], acc[kChains];
  for (int j = 0; j < kChains; ++j) {
    b[j] = _mm512_set1_epi8(int8_t(j + 1));
    acc[j] = _mm512_setzero_si512();
  }
  for (uint64_t i = 0; i < iters; ++i)
    for (int j = 0; j < kChains; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], a, b[j]);
  __m512i s = acc[0];
  for (int j = 1; j < kChains; ++j) s = _mm512_add_epi32(s, acc[j]);
  // Summed as unsigned, not by _mm512_reduce_add_epi32 (signed adds that may overflow), and kept
  // alive through a volatile.
  alignas(64) uint32_t lanes[16];
  _mm512_store_si512(lanes, s);
  uint32_t x = 0;
  for (uint32_t v : lanes) x += v;
  volatile uint32_t sink = x;
  (void)sink;
  return iters * kChains * 64;
}

uint64_t peak_f32_avx512(uint64_t iters) {
  const __m512 a = _mm512_set1_ps(1.0f + float(iters & 1) * 1e-7f), b = _mm512_set1_ps(0.999f);
  __m512 acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm512_set1_ps(float(j));
  for (uint64_t i = 0; i < iters; ++i)
    for (int j = 0; j < kChains; ++j) acc[j] = _mm512_fmadd_ps(acc[j], b, a);
  __m512 s = acc[0];
  for (int j = 1; j < kChains; ++j) s = _mm512_add_ps(s, acc[j]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return iters * kChains * 16;
}

uint64_t peak_bf16_avx512(uint64_t iters) {
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3F80);  // 1.0
  __m512bh b[kChains];
  __m512 acc[kChains];
  for (int j = 0; j < kChains; ++j) {
    b[j] = (__m512bh)_mm512_set1_epi16(short(0x3F00 + j));
    acc[j] = _mm512_setzero_ps();
  }
  for (uint64_t i = 0; i < iters; ++i)
    for (int j = 0; j < kChains; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], a, b[j]);
  __m512 s = acc[0];
  for (int j = 1; j < kChains; ++j) s = _mm512_add_ps(s, acc[j]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return iters * kChains * 32;
}

}  // namespace

void register_avx512_peak(KernelTable& t) {
  t.peak_int8 = peak_int8_avx512;
  t.peak_f32 = peak_f32_avx512;
  if (cpu_features().avx512bf16) t.peak_bf16 = peak_bf16_avx512;
}

}  // namespace hearth::kernels
