// AVX2 kernels for Q8_0 weights: signed x signed bytes via the sign trick
// (|x| * sign(y, x) with vpmaddubsw), then vpmaddwd with ones.
#include "kernels/unpack_rows.h"
#include "kernels/x86_avx2/common.h"
#include "kernels/x86_avx2/gemm_cols.h"
#include "kernels/x86_avx2/x86_avx2.h"
#include "quant/blocks.h"

namespace hearth::kernels {
namespace {

using namespace avx2;

template <int NC>
struct MicroQ8_0 {
  static void run(int64_t K, const uint8_t* w, const uint8_t* a, size_t a_stride, float* out,
                  size_t ldy) {
    const auto* x = reinterpret_cast<const block_q8_0*>(w);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / QK8_0; ++b) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
      const __m256i ax = _mm256_sign_epi8(xv, xv);
      const float dx = h2f(x[b].d);
      for (int c = 0; c < NC; ++c) {
        const auto& y = reinterpret_cast<const block_q8_0*>(a + c * a_stride)[b];
        const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs));
        const __m256i s =
            _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(yv, xv)), ones);
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dx * h2f(y.d)), acc[c]);
      }
    }
    for (int c = 0; c < NC; ++c) out[c * ldy] = hsum(acc[c]);
  }
};

// Prefill (8 or more activation rows, whole super-blocks) goes through the column GEMM.
void gemm_q8_0(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
               size_t a_stride, int64_t M, float* Y, size_t ldy) {
  if (M >= 8 && K % 256 == 0)
    gemm_cols(unpack_q8_0, 32, ActFormat::kQ8_0, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
  else
    gemm_tiled<MicroQ8_0>(K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

}  // namespace

void register_avx2_legacy(KernelTable& t) {
  t.vec_dot[uint32_t(DType::Q8_0)] = vec_dot_via<MicroQ8_0>;
  t.gemm[uint32_t(DType::Q8_0)] = gemm_q8_0;
}

}  // namespace hearth::kernels
