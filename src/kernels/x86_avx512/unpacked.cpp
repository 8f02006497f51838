// AVX-512 kernels for the remaining weight types (Q5_K, Q2_K, Q3_K, IQ4_XS against Q8_K;
// Q4_0, Q5_0, IQ4_NL against Q8_0; Q4_1, Q5_1 against Q8_1), all built on one idea: unpack a
// 256-element super-block of a weight row to unsigned bytes u with a float scale and offset per
// group, so that
//   weight = scale[g] * u - off[g],
// then use vpdpbusd. Prefill (M >= 8) goes through the column-vectorised gemm_vnni; smaller M
// dots each unpacked super-block with every activation row.
#include <cstring>
#include <type_traits>

#include "kernels/generic/generic.h"
#include "kernels/unpack_rows.h"
#include "kernels/x86_avx512/common.h"
#include "kernels/x86_avx512/gemm_vnni.h"
#include "kernels/x86_avx512/x86_avx512.h"
#include "quant/blocks.h"
#include "quant/kquants.h"
#include "quant/legacy.h"

namespace hearth::kernels {
namespace {

using namespace avx512;

// ---- Small M: dot one unpacked super-block with one activation super-block.

// Lane -> group index vectors: group 32 has 8 int32 lanes per group, group 16 has 4.
template <int GROUP>
inline __m512i group_index(int k) {
  alignas(64) int32_t idx[16];
  for (int l = 0; l < 16; ++l) idx[l] = (64 * k + 4 * l) / GROUP;
  return _mm512_load_si512(idx);
}

// Activation super-block `sb` as int8 values plus per-32 scale and per-group sums.
template <ActFormat F, int GROUP>
inline float dot_sb(const RowUnpack& u, const uint8_t* act, int64_t sb) {
  const __m512 sc = _mm512_loadu_ps(u.scale);
  const __m512i z = _mm512_setzero_si512();
  if constexpr (F == ActFormat::kQ8K) {
    const block_q8_K& y = reinterpret_cast<const block_q8_K*>(act)[sb];
    __m512 t = _mm512_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      const __m512i dp = _mm512_dpbusd_epi32(z, _mm512_load_si512(u.u + 64 * k),
                                             _mm512_loadu_si512(y.qs + 64 * k));
      t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp), _mm512_permutexvar_ps(group_index<GROUP>(k), sc),
                          t);
    }
    float off = 0;
    for (int g = 0; g < 256 / GROUP; ++g) {
      const int ys = GROUP == 16 ? y.bsums[g] : y.bsums[2 * g] + y.bsums[2 * g + 1];
      off += u.off[g] * float(ys);
    }
    return y.d * (_mm512_reduce_add_ps(t) - off);
  } else {
    // Q8_0 and Q8_1 differ only in Q8_1's extra 16-bit sum field before the quants.
    using Block = std::conditional_t<F == ActFormat::kQ8_1, block_q8_1, block_q8_0>;
    const auto* y = reinterpret_cast<const Block*>(act) + 8 * sb;
    float s = 0;
    for (int k = 0; k < 8; ++k) {
      const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[k].qs));
      const __m256i uv = _mm256_load_si256(reinterpret_cast<const __m256i*>(u.u + 32 * k));
      const __m256i dp = _mm256_dpbusd_epi32(_mm256_setzero_si256(), uv, yv);
      const __m256i ys = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), yv);
      if constexpr (F == ActFormat::kQ8_1) {
        // The min term uses the block's stored f16 sum s = d * sum(q), as the reference does.
        s += h2f(y[k].d) * u.scale[k] * hsum(_mm256_cvtepi32_ps(dp)) - u.off[k] * h2f(y[k].s);
      } else {
        const __m256 v =
            _mm256_fmsub_ps(_mm256_cvtepi32_ps(dp), _mm256_set1_ps(u.scale[k]),
                            _mm256_mul_ps(_mm256_cvtepi32_ps(ys), _mm256_set1_ps(u.off[k])));
        s += h2f(y[k].d) * hsum(v);
      }
    }
    return s;
  }
}

template <UnpackFn U, int GROUP, ActFormat F, VecDotFn REF>
void gemm_unpacked(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                   size_t a_stride, int64_t M, float* Y, size_t ldy) {
  if (K % 256 != 0) {  // 32-wide types in rows that are not whole super-blocks
    gemm_from_vec_dot(REF, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
    return;
  }
  if (M >= 8) {
    gemm_vnni(U, GROUP, F, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
    return;
  }
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* a = static_cast<const uint8_t*>(A);
  const int64_t nsb = K / 256;
  RowUnpack u;
  for (int64_t r = 0; r < n_rows; ++r) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t m0 = 0; m0 < M; m0 += 8) {
      const int64_t mc = std::min<int64_t>(8, M - m0);
      for (int i = 0; i < 8; ++i) acc[i] = 0;
      for (int64_t sb = 0; sb < nsb; ++sb) {
        U(w + r * w_stride, sb, u);
        for (int64_t i = 0; i < mc; ++i) acc[i] += dot_sb<F, GROUP>(u, a + (m0 + i) * a_stride, sb);
      }
      for (int64_t i = 0; i < mc; ++i) Y[(m0 + i) * ldy + r] = acc[i];
    }
  }
}

template <UnpackFn U, int GROUP, ActFormat F, VecDotFn REF>
float vec_dot_unpacked(int64_t n, const void* x, const void* y) {
  float r = 0;
  gemm_unpacked<U, GROUP, F, REF>(n, x, 0, 1, y, 0, 1, &r, 1);
  return r;
}

template <UnpackFn U, int GROUP, ActFormat F, VecDotFn REF>
void put(KernelTable& t, DType type) {
  t.vec_dot[uint32_t(type)] = vec_dot_unpacked<U, GROUP, F, REF>;
  t.gemm[uint32_t(type)] = gemm_unpacked<U, GROUP, F, REF>;
}

}  // namespace

void register_avx512_unpacked(KernelTable& t) {
  put<unpack_q5_K, 32, ActFormat::kQ8K, vec_dot_q5_K_q8_K>(t, DType::Q5_K);
  put<unpack_q2_K, 16, ActFormat::kQ8K, vec_dot_q2_K_q8_K>(t, DType::Q2_K);
  put<unpack_q3_K, 16, ActFormat::kQ8K, vec_dot_q3_K_q8_K>(t, DType::Q3_K);
  put<unpack_iq4_xs, 32, ActFormat::kQ8K, vec_dot_iq4_xs_q8_K>(t, DType::IQ4_XS);
  put<unpack_q4_0, 32, ActFormat::kQ8_0, vec_dot_q4_0_q8_0>(t, DType::Q4_0);
  put<unpack_q5_0, 32, ActFormat::kQ8_0, vec_dot_q5_0_q8_0>(t, DType::Q5_0);
  put<unpack_iq4_nl, 32, ActFormat::kQ8_0, vec_dot_iq4_nl_q8_0>(t, DType::IQ4_NL);
  put<unpack_q4_1, 32, ActFormat::kQ8_1, vec_dot_q4_1_q8_1>(t, DType::Q4_1);
  put<unpack_q5_1, 32, ActFormat::kQ8_1, vec_dot_q5_1_q8_1>(t, DType::Q5_1);
}

}  // namespace hearth::kernels
