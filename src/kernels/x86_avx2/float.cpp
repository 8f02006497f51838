// AVX2 + F16C kernels for F16 weights (x F16 or F32 activations, see quant/float_types.cpp),
// BF16 (x BF16), F32, and the F16 x F16 attention dot.
#include <vector>

#include "base/fp16.h"
#include "kernels/generic/generic.h"
#include "kernels/x86_avx2/common.h"
#include "kernels/x86_avx2/x86_avx2.h"

namespace hearth::kernels {
namespace {

using namespace avx2;

inline __m256 load_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// BF16 is the top half of an F32: widen to 32 bits and shift into place.
inline __m256 load_bf16(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(
      _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}

// How one element type is loaded 8 at a time and converted one at a time (tails).
struct F16Elem {
  using T = uint16_t;
  static __m256 load8(const T* p) { return load_f16(p); }
  static float one(T x) { return fp16_to_fp32(x); }
};
struct BF16Elem {
  using T = uint16_t;
  static __m256 load8(const T* p) { return load_bf16(p); }
  static float one(T x) { return bf16_to_fp32(x); }
};
struct F32Elem {
  using T = float;
  static __m256 load8(const T* p) { return _mm256_loadu_ps(p); }
  static float one(T x) { return x; }
};

// One weight row (element type WE) against NC activation rows (element type AE), 8 lanes of FMA.
template <typename WE, typename AE>
struct MicroFloat {
  template <int NC>
  struct M {
    static void run(int64_t K, const uint8_t* w8, const uint8_t* a8, size_t a_stride, float* out,
                    size_t ldy) {
      const auto* w = reinterpret_cast<const typename WE::T*>(w8);
      __m256 acc[NC];
      for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
      int64_t i = 0;
      for (; i + 8 <= K; i += 8) {
        const __m256 wv = WE::load8(w + i);
        for (int c = 0; c < NC; ++c)
          acc[c] = _mm256_fmadd_ps(
              wv, AE::load8(reinterpret_cast<const typename AE::T*>(a8 + c * a_stride) + i),
              acc[c]);
      }
      for (int c = 0; c < NC; ++c) {
        float s = hsum(acc[c]);
        const auto* a = reinterpret_cast<const typename AE::T*>(a8 + c * a_stride);
        for (int64_t j = i; j < K; ++j) s += WE::one(w[j]) * AE::one(a[j]);
        out[c * ldy] = s;
      }
    }
  };
};

// Prefill: R weight rows x C activation rows per register block (R*C accumulators), so each
// converted weight vector feeds C FMAs and each activation vector R. The activations are widened
// to F32 once per call (the 1xC kernel above converts them again for every weight row, which makes
// it bound by conversions, not FMAs). Every output still sums K in the same 8-lane order with the
// same tail, so the result is bit-identical to the 1xC kernel and to vec_dot.
template <typename WE, int R, int C>
inline void block_rc(int64_t K, const uint8_t* w8, size_t w_stride, const float* a, size_t lda,
                     float* y, size_t ldy) {
  const typename WE::T* w[R];
  for (int r = 0; r < R; ++r) w[r] = reinterpret_cast<const typename WE::T*>(w8 + r * w_stride);
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= K; i += 8) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = WE::load8(w[r] + i);
    for (int c = 0; c < C; ++c) {
      const __m256 av = _mm256_loadu_ps(a + c * lda + i);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(wv[r], av, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float s = hsum(acc[r][c]);
      for (int64_t j = i; j < K; ++j) s += WE::one(w[r][j]) * a[c * lda + j];
      y[c * ldy + r] = s;
    }
}

// Rows [r0, r1) of one block of C activation rows, R at a time, then the leftover rows one by one.
template <typename WE, int C>
inline void rows_block(int64_t K, const uint8_t* w, size_t w_stride, int64_t r0, int64_t r1,
                       const float* a, size_t lda, float* y, size_t ldy) {
  constexpr int R = 3;  // 3x4: 12 accumulators + 3 weights + 1 activation = 16 ymm registers
  int64_t r = r0;
  for (; r + R <= r1; r += R) block_rc<WE, R, C>(K, w + r * w_stride, w_stride, a, lda, y + r, ldy);
  for (; r < r1; ++r) block_rc<WE, 1, C>(K, w + r * w_stride, w_stride, a, lda, y + r, ldy);
}

template <typename WE, typename AE>
void gemm_float(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                size_t a_stride, int64_t M, float* Y, size_t ldy) {
  if (M < 4) {  // decode: memory-bound, nothing to share
    gemm_tiled<MicroFloat<WE, AE>::template M>(K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
    return;
  }
  // The F32 activations, 64 rows at a time (per thread, grown once to at most 64 x K floats;
  // prefill only, decode never comes here). Each weight block is then read once per 64 rows.
  constexpr int64_t kChunk = 64;
  thread_local std::vector<float> act;
  const size_t lda = size_t(K);
  if (act.size() < lda * size_t(kChunk)) act.resize(lda * size_t(kChunk));
  const auto* w = static_cast<const uint8_t*>(W);
  // Weight rows in blocks that stay in L2 while the chunk's activation blocks pass over them.
  const int64_t rb = std::max<int64_t>(3, int64_t(192 * 1024 / w_stride) / 3 * 3);
  constexpr int C = 4;
  for (int64_t m0 = 0; m0 < M; m0 += kChunk) {
    const int64_t mc = std::min(kChunk, M - m0);
    for (int64_t m = 0; m < mc; ++m) {
      const auto* src = reinterpret_cast<const typename AE::T*>(static_cast<const uint8_t*>(A) +
                                                                size_t(m0 + m) * a_stride);
      float* dst = act.data() + size_t(m) * lda;
      int64_t i = 0;
      for (; i + 8 <= K; i += 8) _mm256_storeu_ps(dst + i, AE::load8(src + i));
      for (; i < K; ++i) dst[i] = AE::one(src[i]);
    }
    float* y = Y + m0 * ldy;
    for (int64_t r0 = 0; r0 < n_rows; r0 += rb) {
      const int64_t r1 = std::min(n_rows, r0 + rb);
      int64_t m = 0;
      for (; m + C <= mc; m += C)
        rows_block<WE, C>(K, w, w_stride, r0, r1, act.data() + size_t(m) * lda, lda, y + m * ldy,
                          ldy);
      for (; m < mc; ++m)
        rows_block<WE, 1>(K, w, w_stride, r0, r1, act.data() + size_t(m) * lda, lda, y + m * ldy,
                          ldy);
    }
  }
}

template <int NC>
using MicroF16 = MicroFloat<F16Elem, F32Elem>::M<NC>;
template <int NC>
using MicroF16F16 = MicroFloat<F16Elem, F16Elem>::M<NC>;
template <int NC>
using MicroBF16 = MicroFloat<BF16Elem, BF16Elem>::M<NC>;
template <int NC>
using MicroF32 = MicroFloat<F32Elem, F32Elem>::M<NC>;

float dot_f16_f16_avx2(int64_t n, const void* x, const void* y) {
  const auto* a = static_cast<const uint16_t*>(x);
  const auto* b = static_cast<const uint16_t*>(y);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(load_f16(a + i), load_f16(b + i), acc);
  float s = hsum(acc);
  for (; i < n; ++i) s += fp16_to_fp32(a[i]) * fp16_to_fp32(b[i]);
  return s;
}

void quantize_row_f16_avx2(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<uint16_t*>(vy);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

// silu(g) * u with e^-|g| from exp_neg: silu(x) = x / (1 + e^-x) for x >= 0 and x e^x / (1 + e^x)
// below, so e^ never overflows.
void swiglu_avx2(const float* gate, const float* up, float* out, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(gate + i);
    const __m256 t = exp_neg(_mm256_or_ps(x, sign));  // e^-|x|
    const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 num = _mm256_blendv_ps(x, _mm256_mul_ps(x, t), neg);
    _mm256_storeu_ps(
        out + i, _mm256_mul_ps(_mm256_div_ps(num, _mm256_add_ps(one, t)), _mm256_loadu_ps(up + i)));
  }
  swiglu_generic(gate + i, up + i, out + i, n - i);
}

}  // namespace

void register_avx2_float(KernelTable& t) {
  t.swiglu = swiglu_avx2;
  if (find_type(uint32_t(DType::F16))->vec_dot_type == DType::F16) {
    t.vec_dot[uint32_t(DType::F16)] = vec_dot_via<MicroF16F16>;
    t.gemm[uint32_t(DType::F16)] = gemm_float<F16Elem, F16Elem>;
  } else {
    t.vec_dot[uint32_t(DType::F16)] = vec_dot_via<MicroF16>;
    t.gemm[uint32_t(DType::F16)] = gemm_float<F16Elem, F32Elem>;
  }
  t.vec_dot[uint32_t(DType::BF16)] = vec_dot_via<MicroBF16>;
  t.gemm[uint32_t(DType::BF16)] = gemm_float<BF16Elem, BF16Elem>;
  t.vec_dot[uint32_t(DType::F32)] = vec_dot_via<MicroF32>;
  t.gemm[uint32_t(DType::F32)] = gemm_float<F32Elem, F32Elem>;
  t.dot_f16 = dot_f16_f16_avx2;
  t.quantize_row[uint32_t(DType::F16)] = quantize_row_f16_avx2;
}

}  // namespace hearth::kernels
