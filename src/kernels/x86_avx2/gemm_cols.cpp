// AVX2 instance of the shared column GEMM (kernels/x86/gemm_cols.h).
#include "kernels/x86_avx2/gemm_cols.h"

#include <immintrin.h>

#include "kernels/x86/gemm_cols.h"
#include "kernels/x86/v256.h"

namespace hearth::kernels::avx2 {
namespace {

struct V256 : x86::V256Base {
  // w <= 127: each 16-bit pair sum is at most 2 * 127 * 127.
  static I dot4(I acc, I w, I a) {
    return _mm256_add_epi32(acc,
                            _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1)));
  }
  // 16-bit partial sums (tile(): the caller bounds the steps so they cannot overflow).
  static constexpr bool kSum16 = true;
  static I mul16(I w, I a) { return _mm256_maddubs_epi16(w, a); }
  static I dot16(I acc16, I w, I a) { return _mm256_add_epi16(acc16, _mm256_maddubs_epi16(w, a)); }
  static I widen(I acc, I p16) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
  }
};

// Signed weight bytes through the sign trick: |w| * sign(a, w), each pair sum at most
// 2 * 128 * 127 in magnitude.
struct V256S : V256 {
  // 6 rows: 6 int + 6 float accumulators, the activation and the ones fill the 16 registers
  // (measured 2% faster than 4 on a Zen 4 EPYC, hearth-kernel-bench).
  static constexpr int kRows = 6;
  static constexpr bool kSignedW = true;
  static constexpr bool kSum16 = false;  // |w| up to 127: no headroom for 16-bit sums
  // |w| * sign(a, w): each pair sum at most 2 * 127 * 127 in magnitude.
  static I dot4s(I acc, I aw, I w, I a) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(a, w)),
                                                   _mm256_set1_epi16(1)));
  }
};

}  // namespace

void gemm_cols_signed(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W,
                      size_t w_stride, int64_t n_rows, const void* A, size_t a_stride, int64_t M,
                      float* Y, size_t ldy) {
  x86::gemm_cols<V256S>(unpack, group, act, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

void gemm_cols_q8_0_lanes(UnpackFn unpack, int64_t K, const void* W, size_t w_stride,
                          int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y,
                          size_t ldy) {
  x86::gemm_cols_q8_0_lanes<V256S>(unpack, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

void gemm_cols(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W, size_t w_stride,
               int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy,
               int max_u) {
  // 16-bit sums of s steps stay below 2^15 while s * 2 * max_u * 127 does (|activation| <= 127).
  int sum16 = 1;
  while (sum16 < 8 && 2 * sum16 * 2 * max_u * 127 < 32768) sum16 *= 2;
  x86::gemm_cols<V256>(unpack, group, act, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy, sum16);
}

}  // namespace hearth::kernels::avx2
