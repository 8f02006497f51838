// Attention helpers for AVX-512.
#include <immintrin.h>

#include "base/fp16.h"
#include "kernels/x86_avx512/x86_avx512.h"

namespace hearth::kernels {
namespace {

void mad_f16_avx512(int64_t n, float* y, const uint16_t* x, float a) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 xv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, xv, _mm512_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

}  // namespace

void register_avx512_attn(KernelTable& t) { t.mad_f16 = mad_f16_avx512; }

}  // namespace hearth::kernels
