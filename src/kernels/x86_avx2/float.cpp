// AVX2 + F16C kernels for F16 weights (x F16 or F32 activations, see quant/float_types.cpp),
// BF16 (x BF16), F32, and the F16 x F16 attention dot.
#include "base/fp16.h"
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

}  // namespace

void register_avx2_float(KernelTable& t) {
  if (find_type(uint32_t(DType::F16))->vec_dot_type == DType::F16) {
    t.vec_dot[uint32_t(DType::F16)] = vec_dot_via<MicroF16F16>;
    t.gemm[uint32_t(DType::F16)] = gemm_tiled<MicroF16F16>;
  } else {
    t.vec_dot[uint32_t(DType::F16)] = vec_dot_via<MicroF16>;
    t.gemm[uint32_t(DType::F16)] = gemm_tiled<MicroF16>;
  }
  t.vec_dot[uint32_t(DType::BF16)] = vec_dot_via<MicroBF16>;
  t.gemm[uint32_t(DType::BF16)] = gemm_tiled<MicroBF16>;
  t.vec_dot[uint32_t(DType::F32)] = vec_dot_via<MicroF32>;
  t.gemm[uint32_t(DType::F32)] = gemm_tiled<MicroF32>;
  t.dot_f16 = dot_f16_f16_avx2;
  t.quantize_row[uint32_t(DType::F16)] = quantize_row_f16_avx2;
}

}  // namespace hearth::kernels
