// AVX2 kernels for Q4_K and Q6_K against Q8_K activations: bytes multiplied by vpmaddubsw
// (u8 x s8 -> s16 pairs), sub-block scales applied by vpmaddwd, per-super-block float scaling.
#include "quant/kquants.h"

#include "kernels/unpack_rows.h"
#include "kernels/x86_avx2/common.h"
#include "kernels/x86_avx2/gemm_cols.h"
#include "kernels/x86_avx2/x86_avx2.h"
#include "quant/blocks.h"

namespace hearth::kernels {
namespace {

using namespace avx2;

template <int NC>
struct MicroQ4K {
  static void run(int64_t K, const uint8_t* w, const uint8_t* a, size_t a_stride, float* out,
                  size_t ldy) {
    const auto* x = reinterpret_cast<const block_q4_K*>(w);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc[NC];
    float mins_acc[NC];
    for (int c = 0; c < NC; ++c) {
      acc[c] = _mm256_setzero_ps();
      mins_acc[c] = 0;
    }
    for (int64_t b = 0; b < K / QK_K; ++b) {
      uint8_t sc[8], mn[8];
      for (int j = 0; j < 8; ++j) get_scale_min_k4(j, x[b].scales, sc[j], mn[j]);
      __m256i lo[4], hi[4];
      for (int j = 0; j < 4; ++j) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs + 32 * j));
        lo[j] = _mm256_and_si256(q, m4);
        hi[j] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      }
      const float d = h2f(x[b].d), dmin = h2f(x[b].dmin);
      for (int c = 0; c < NC; ++c) {
        const auto& y = reinterpret_cast<const block_q8_K*>(a + c * a_stride)[b];
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {
          const __m256i ylo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs + 64 * j));
          const __m256i yhi =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs + 64 * j + 32));
          sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(lo[j], ylo),
                                                          _mm256_set1_epi16(sc[2 * j])));
          sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(hi[j], yhi),
                                                          _mm256_set1_epi16(sc[2 * j + 1])));
        }
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(d * y.d), acc[c]);
        int32_t ms = 0;
        for (int j = 0; j < 8; ++j) ms += mn[j] * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
        mins_acc[c] += dmin * y.d * float(ms);
      }
    }
    for (int c = 0; c < NC; ++c) out[c * ldy] = hsum(acc[c]) - mins_acc[c];
  }
};

template <int NC>
struct MicroQ6K {
  static void run(int64_t K, const uint8_t* w, const uint8_t* a, size_t a_stride, float* out,
                  size_t ldy) {
    const auto* x = reinterpret_cast<const block_q6_K*>(w);
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
    __m256 acc[NC];
    float off_acc[NC];
    for (int c = 0; c < NC; ++c) {
      acc[c] = _mm256_setzero_ps();
      off_acc[c] = 0;
    }
    for (int64_t b = 0; b < K / QK_K; ++b) {
      // q[k] holds elements 32k .. 32k+31 as unsigned 6-bit values (stored +32).
      __m256i q[8];
      for (int h = 0; h < 2; ++h) {
        const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].ql + 64 * h));
        const __m256i l1 =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].ql + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qh + 32 * h));
        auto hb = [&](int s) {
          return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, s), m3), 4);
        };
        q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), hb(0));
        q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), hb(2));
        q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), hb(4));
        q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), hb(6));
      }
      const float d = h2f(x[b].d);
      for (int c = 0; c < NC; ++c) {
        const auto& y = reinterpret_cast<const block_q8_K*>(a + c * a_stride)[b];
        __m256i sumi = _mm256_setzero_si256();
        for (int k = 0; k < 8; ++k) {
          const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs + 32 * k));
          // Two sub-blocks of 16 per vector: scales for the low and high 128-bit lanes.
          const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(x[b].scales[2 * k + 1]),
                                               _mm_set1_epi16(x[b].scales[2 * k]));
          sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], yv), scv));
        }
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(d * y.d), acc[c]);
        int32_t off = 0;
        for (int j = 0; j < 16; ++j) off += x[b].scales[j] * y.bsums[j];
        off_acc[c] += 32.0f * d * y.d * float(off);
      }
    }
    for (int c = 0; c < NC; ++c) out[c * ldy] = hsum(acc[c]) - off_acc[c];
  }
};

// Prefill (8 or more activation rows) goes through the column-vectorised GEMM.
template <template <int> class Micro, UnpackFn U, int GROUP>
void gemm_kq(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
             size_t a_stride, int64_t M, float* Y, size_t ldy) {
  if (M >= 8)
    gemm_cols(U, GROUP, ActFormat::kQ8K, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
  else
    gemm_tiled<Micro>(K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

}  // namespace

void register_avx2_kquants(KernelTable& t) {
  t.vec_dot[uint32_t(DType::Q4_K)] = vec_dot_via<MicroQ4K>;
  t.gemm[uint32_t(DType::Q4_K)] = gemm_kq<MicroQ4K, unpack_q4_K, 32>;
  t.vec_dot[uint32_t(DType::Q6_K)] = vec_dot_via<MicroQ6K>;
  t.gemm[uint32_t(DType::Q6_K)] = gemm_kq<MicroQ6K, unpack_q6_K, 16>;
}

}  // namespace hearth::kernels
