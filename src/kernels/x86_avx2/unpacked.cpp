// AVX2 kernels for the types without a dedicated AVX2 kernel (Q5_K, Q2_K, Q3_K, IQ4_XS against
// Q8_K; Q4_0, Q5_0, IQ4_NL against Q8_0; Q4_1, Q5_1 against Q8_1), on the shared unpacked form
// (kernels/unpack_rows.h). vpmaddubsw takes unsigned x signed bytes and saturates at 16 bits, so
// the unpacked bytes are re-centred to v = u - 128 and multiplied with the sign trick
// (|v| * sign(y, v)): |v| <= 128 and |y| <= 127 keep every pair sum below 2^15.
//   scale * sum(u y) - off * sum(y) = scale * sum(v y) + (128 * scale - off) * sum(y)
#include <cstring>
#include <type_traits>

#include "kernels/generic/generic.h"
#include "kernels/unpack_rows.h"
#include "kernels/x86_avx2/common.h"
#include "kernels/x86_avx2/gemm_cols.h"
#include "kernels/x86_avx2/x86_avx2.h"
#include "quant/kquants.h"
#include "quant/legacy.h"

namespace hearth::kernels {
namespace {

using namespace avx2;

enum class Act { kQ8K, kQ8_0, kQ8_1 };

// Sums of v * y over each 16-element half of a 32-element chunk.
inline void dot32(const uint8_t* u, const int8_t* y, int32_t& lo, int32_t& hi) {
  const __m256i v = _mm256_xor_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(u)),
                                     _mm256_set1_epi8(char(0x80)));
  const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y));
  const __m256i p = _mm256_madd_epi16(
      _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(yv, v)), _mm256_set1_epi16(1));
  __m128i l = _mm256_castsi256_si128(p), h = _mm256_extracti128_si256(p, 1);
  l = _mm_add_epi32(l, _mm_unpackhi_epi64(l, l));
  h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
  lo = _mm_cvtsi128_si32(l) + _mm_extract_epi32(l, 1);
  hi = _mm_cvtsi128_si32(h) + _mm_extract_epi32(h, 1);
}

inline int32_t sum32(const int8_t* y) {
  int32_t s = 0;
  for (int i = 0; i < 32; ++i) s += y[i];
  return s;
}

template <Act F, int GROUP>
float dot_sb(const RowUnpack& u, const uint8_t* act, int64_t sb) {
  if constexpr (F == Act::kQ8K) {
    const block_q8_K& y = reinterpret_cast<const block_q8_K*>(act)[sb];
    float s = 0;
    for (int k = 0; k < 8; ++k) {
      int32_t lo, hi;
      dot32(u.u + 32 * k, y.qs + 32 * k, lo, hi);
      if constexpr (GROUP == 32) {
        const int ys = y.bsums[2 * k] + y.bsums[2 * k + 1];
        s += u.scale[k] * float(lo + hi) + (128.0f * u.scale[k] - u.off[k]) * float(ys);
      } else {
        s += u.scale[2 * k] * float(lo) + (128.0f * u.scale[2 * k] - u.off[2 * k]) * y.bsums[2 * k];
        s += u.scale[2 * k + 1] * float(hi) +
             (128.0f * u.scale[2 * k + 1] - u.off[2 * k + 1]) * y.bsums[2 * k + 1];
      }
    }
    return y.d * s;
  } else {
    using Block = std::conditional_t<F == Act::kQ8_1, block_q8_1, block_q8_0>;
    const auto* y = reinterpret_cast<const Block*>(act) + 8 * sb;
    float s = 0;
    for (int k = 0; k < 8; ++k) {
      int32_t lo, hi;
      dot32(u.u + 32 * k, y[k].qs, lo, hi);
      const float dy = h2f(y[k].d);
      const float ysum = float(sum32(y[k].qs));
      if constexpr (F == Act::kQ8_1)  // min term from the stored f16 sum, as the reference
        s += dy * u.scale[k] * (float(lo + hi) + 128.0f * ysum) - u.off[k] * h2f(y[k].s);
      else
        s += dy * (u.scale[k] * float(lo + hi) + (128.0f * u.scale[k] - u.off[k]) * ysum);
    }
    return s;
  }
}

template <UnpackFn U, int GROUP, Act F, VecDotFn REF, DType T>
void gemm_unpacked(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                   size_t a_stride, int64_t M, float* Y, size_t ldy) {
  const int64_t Km = K / 256 * 256;
  if (Km != K && F == Act::kQ8K) {
    gemm_from_vec_dot(REF, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
    return;
  }
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* a = static_cast<const uint8_t*>(A);
  if (Km > 0 && M >= 8) {
    constexpr ActFormat fmt = F == Act::kQ8K    ? ActFormat::kQ8K
                              : F == Act::kQ8_0 ? ActFormat::kQ8_0
                                                : ActFormat::kQ8_1;
    gemm_cols(U, GROUP, fmt, Km, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
  } else if (Km > 0) {
    RowUnpack u;
    float acc[8];
    for (int64_t r = 0; r < n_rows; ++r)
      for (int64_t m0 = 0; m0 < M; m0 += 8) {
        const int64_t mc = std::min<int64_t>(8, M - m0);
        for (int i = 0; i < 8; ++i) acc[i] = 0;
        for (int64_t sb = 0; sb < Km / 256; ++sb) {
          U(w + r * w_stride, sb, u);
          for (int64_t i = 0; i < mc; ++i)
            acc[i] += dot_sb<F, GROUP>(u, a + (m0 + i) * a_stride, sb);
        }
        for (int64_t i = 0; i < mc; ++i) Y[(m0 + i) * ldy + r] = acc[i];
      }
  }
  if (Km != K) {
    using Block = std::conditional_t<F == Act::kQ8_1, block_q8_1, block_q8_0>;
    add_padded_tail<Block>(
        U, T, K, w, w_stride, n_rows, a, a_stride, M, Y, ldy, Km == 0,
        [](const RowUnpack& u, const uint8_t* act) { return dot_sb<F, GROUP>(u, act, 0); });
  }
}

template <UnpackFn U, int GROUP, Act F, VecDotFn REF, DType T>
float vec_dot_unpacked(int64_t n, const void* x, const void* y) {
  float r = 0;
  gemm_unpacked<U, GROUP, F, REF, T>(n, x, 0, 1, y, 0, 1, &r, 1);
  return r;
}

template <UnpackFn U, int GROUP, Act F, VecDotFn REF, DType T>
void put(KernelTable& t) {
  t.vec_dot[uint32_t(T)] = vec_dot_unpacked<U, GROUP, F, REF, T>;
  t.gemm[uint32_t(T)] = gemm_unpacked<U, GROUP, F, REF, T>;
}

}  // namespace

void register_avx2_unpacked(KernelTable& t) {
  put<unpack_q5_K, 32, Act::kQ8K, vec_dot_q5_K_q8_K, DType::Q5_K>(t);
  put<unpack_q2_K, 16, Act::kQ8K, vec_dot_q2_K_q8_K, DType::Q2_K>(t);
  put<unpack_q3_K, 16, Act::kQ8K, vec_dot_q3_K_q8_K, DType::Q3_K>(t);
  put<unpack_iq4_xs, 32, Act::kQ8K, vec_dot_iq4_xs_q8_K, DType::IQ4_XS>(t);
  put<unpack_q4_0, 32, Act::kQ8_0, vec_dot_q4_0_q8_0, DType::Q4_0>(t);
  put<unpack_q5_0, 32, Act::kQ8_0, vec_dot_q5_0_q8_0, DType::Q5_0>(t);
  put<unpack_iq4_nl, 32, Act::kQ8_0, vec_dot_iq4_nl_q8_0, DType::IQ4_NL>(t);
  put<unpack_q4_1, 32, Act::kQ8_1, vec_dot_q4_1_q8_1, DType::Q4_1>(t);
  put<unpack_q5_1, 32, Act::kQ8_1, vec_dot_q5_1_q8_1, DType::Q5_1>(t);
}

}  // namespace hearth::kernels
