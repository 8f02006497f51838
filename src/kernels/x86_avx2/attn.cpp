// Attention helpers for AVX2 + F16C.
#include <immintrin.h>

#include "base/fp16.h"
#include "kernels/x86_avx2/x86_avx2.h"

namespace hearth::kernels {
namespace {

void mad_f16_avx2(int64_t n, float* y, const uint16_t* x, float a) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

}  // namespace

void register_avx2_attn(KernelTable& t) {
  t.mad_f16 = mad_f16_avx2;
}

}  // namespace hearth::kernels
