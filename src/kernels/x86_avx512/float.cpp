// AVX-512 kernels for float weights: F16 x F16 (or x F32, see quant/float_types.cpp), BF16 x BF16
// (vdpbf16ps), F32 x F32, and the F16 x F16 dot used for attention scores. Each weight vector is
// converted once and reused by a tile of up to 4 activation rows.
#include "kernels/x86_avx512/common.h"
#include "kernels/x86_avx512/x86_avx512.h"

namespace hearth::kernels {
namespace {

using namespace avx512;

inline __m512 load_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// How one element type is loaded 16 at a time and converted one at a time (tails).
struct F16Elem {
  using T = uint16_t;
  static __m512 load16(const T* p) { return load_f16(p); }
  static float one(T x) { return fp16_to_fp32(x); }
};
struct F32Elem {
  using T = float;
  static __m512 load16(const T* p) { return _mm512_loadu_ps(p); }
  static float one(T x) { return x; }
};

// One weight row (element type WE) against NC activation rows (element type AE); scalar tails
// keep K free of alignment requirements.
template <typename WE, typename AE>
struct MicroFloat {
  template <int NC>
  struct M {
    static void run(int64_t K, const uint8_t* w8, const uint8_t* a8, size_t a_stride, float* out,
                    size_t ldy) {
      const auto* w = reinterpret_cast<const typename WE::T*>(w8);
      __m512 acc[NC];
      for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_ps();
      int64_t i = 0;
      for (; i + 16 <= K; i += 16) {
        const __m512 wv = WE::load16(w + i);
        for (int c = 0; c < NC; ++c)
          acc[c] = _mm512_fmadd_ps(
              wv, AE::load16(reinterpret_cast<const typename AE::T*>(a8 + c * a_stride) + i),
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
using MicroF32 = MicroFloat<F32Elem, F32Elem>::M<NC>;

template <int NC>
struct MicroBF16 {
  static void run(int64_t K, const uint8_t* w8, const uint8_t* a8, size_t a_stride, float* out,
                  size_t ldy) {
    const auto* w = reinterpret_cast<const uint16_t*>(w8);
    __m512 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= K; i += 32) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(w + i);
      for (int c = 0; c < NC; ++c)
        acc[c] = _mm512_dpbf16_ps(
            acc[c], wv,
            (__m512bh)_mm512_loadu_si512(reinterpret_cast<const uint16_t*>(a8 + c * a_stride) + i));
    }
    for (int c = 0; c < NC; ++c) {
      float s = hsum(acc[c]);
      const auto* a = reinterpret_cast<const uint16_t*>(a8 + c * a_stride);
      for (int64_t j = i; j < K; ++j) s += bf16_to_fp32(w[j]) * bf16_to_fp32(a[j]);
      out[c * ldy] = s;
    }
  }
};

template <template <int> class Micro>
float vec_dot_via(int64_t n, const void* x, const void* y) {
  float r;
  Micro<1>::run(n, static_cast<const uint8_t*>(x), static_cast<const uint8_t*>(y), 0, &r, 0);
  return r;
}

float dot_f16_f16_avx512(int64_t n, const void* x, const void* y) {
  const auto* a = static_cast<const uint16_t*>(x);
  const auto* b = static_cast<const uint16_t*>(y);
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(load_f16(a + i), load_f16(b + i), acc);
  float s = hsum(acc);
  for (; i < n; ++i) s += fp16_to_fp32(a[i]) * fp16_to_fp32(b[i]);
  return s;
}

// F32 -> F16 with round-to-nearest-even (vcvtps2ph, mode 0), bit-identical to fp32_to_fp16.
void quantize_row_f16_avx512(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<uint16_t*>(vy);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

}  // namespace

void register_avx512_float(KernelTable& t) {
  if (find_type(uint32_t(DType::F16))->vec_dot_type == DType::F16) {
    t.vec_dot[uint32_t(DType::F16)] = vec_dot_via<MicroF16F16>;
    t.gemm[uint32_t(DType::F16)] = gemm_tiled<MicroF16F16>;
  } else {
    t.vec_dot[uint32_t(DType::F16)] = vec_dot_via<MicroF16>;
    t.gemm[uint32_t(DType::F16)] = gemm_tiled<MicroF16>;
  }
  if (find_type(uint32_t(DType::BF16))->vec_dot_type == DType::BF16) {
    t.vec_dot[uint32_t(DType::BF16)] = vec_dot_via<MicroBF16>;
    t.gemm[uint32_t(DType::BF16)] = gemm_tiled<MicroBF16>;
  }
  t.vec_dot[uint32_t(DType::F32)] = vec_dot_via<MicroF32>;
  t.gemm[uint32_t(DType::F32)] = gemm_tiled<MicroF32>;
  t.dot_f16 = dot_f16_f16_avx512;
  t.quantize_row[uint32_t(DType::F16)] = quantize_row_f16_avx512;
}

}  // namespace hearth::kernels
