// Peak probes for AVX2: int8 as the AVX2 GEMMs multiply (vpmaddubsw, vpmaddwd, vpaddd: 32 u8 x s8
// pairs per step) and F32 FMA, each in enough independent chains to cover the instructions'
// latency on two ports.
#include <immintrin.h>

#include "kernels/x86_avx2/x86_avx2.h"

namespace hearth::kernels {
namespace {

constexpr int kChains = 10;

uint64_t peak_int8_avx2(uint64_t iters) {
  // The activations change every round (one byte add for all chains), so the compiler cannot
  // hoist the multiplies out of the loop; only the final add is in each chain's dependency.
  constexpr int kInt8Chains = 6;  // 6 weights + 6 accumulators + 3 constants: 15 ymm
  const __m256i ones = _mm256_set1_epi16(1), step = _mm256_set1_epi8(1);
  __m256i a = _mm256_set1_epi8(int8_t(iters & 63)), b[kInt8Chains], acc[kInt8Chains];
  for (int j = 0; j < kInt8Chains; ++j) {
    b[j] = _mm256_set1_epi8(int8_t(j + 1));
    acc[j] = _mm256_setzero_si256();
  }
  for (uint64_t i = 0; i < iters; ++i) {
    a = _mm256_and_si256(_mm256_add_epi8(a, step), _mm256_set1_epi8(127));
    for (int j = 0; j < kInt8Chains; ++j)
      acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b[j]), ones));
  }
  __m256i s = acc[0];
  for (int j = 1; j < kInt8Chains; ++j) s = _mm256_add_epi32(s, acc[j]);
  volatile int sink = _mm256_extract_epi32(s, 0);  // keeps the loop
  (void)sink;
  return iters * kInt8Chains * 32;
}

uint64_t peak_f32_avx2(uint64_t iters) {
  const __m256 a = _mm256_set1_ps(1.0f + float(iters & 1) * 1e-7f), b = _mm256_set1_ps(0.999f);
  __m256 acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm256_set1_ps(float(j));
  for (uint64_t i = 0; i < iters; ++i)
    for (int j = 0; j < kChains; ++j) acc[j] = _mm256_fmadd_ps(acc[j], b, a);
  __m256 s = acc[0];
  for (int j = 1; j < kChains; ++j) s = _mm256_add_ps(s, acc[j]);
  volatile float sink = _mm256_cvtss_f32(s);
  (void)sink;
  return iters * kChains * 8;
}

}  // namespace

void register_avx2_peak(KernelTable& t) {
  t.peak_int8 = peak_int8_avx2;
  t.peak_f32 = peak_f32_avx2;
}

}  // namespace hearth::kernels
