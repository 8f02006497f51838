// AVX-512 kernels for float weights: F16 x F16 (or x F32, see quant/float_types.cpp), BF16 x BF16
// (vdpbf16ps), F32 x F32, and the F16 x F16 dot used for attention scores. Each weight vector is
// converted once and reused by a tile of up to 4 activation rows (decode); prefill runs
// register-blocked 4x6 tiles (gemm_float below).
#include <vector>

#include "kernels/generic/generic.h"
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

// Prefill: R weight rows x C activation rows per register block (R*C accumulators), so each
// weight vector feeds C FMAs and each activation vector R. F16/F32 activations are widened to F32
// once per call; BF16 ones are used as they are (vdpbf16ps takes pairs). Every output sums K in
// the same 16-lane (BF16: 32-element) order with the same tail as the 1xC kernels above, so the
// result is bit-identical to them and to vec_dot.
template <typename WE, int R, int C>
inline void block_rc(int64_t K, const uint8_t* w8, size_t w_stride, const float* a, size_t lda,
                     float* y, size_t ldy) {
  const typename WE::T* w[R];
  for (int r = 0; r < R; ++r) w[r] = reinterpret_cast<const typename WE::T*>(w8 + r * w_stride);
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= K; i += 16) {
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = WE::load16(w[r] + i);
    for (int c = 0; c < C; ++c) {
      const __m512 av = _mm512_loadu_ps(a + c * lda + i);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(wv[r], av, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float s = hsum(acc[r][c]);
      for (int64_t j = i; j < K; ++j) s += WE::one(w[r][j]) * a[c * lda + j];
      y[c * ldy + r] = s;
    }
}

template <int R, int C>
inline void block_rc_bf16(int64_t K, const uint8_t* w8, size_t w_stride, const uint16_t* a,
                          size_t lda, float* y, size_t ldy) {
  const uint16_t* w[R];
  for (int r = 0; r < R; ++r) w[r] = reinterpret_cast<const uint16_t*>(w8 + r * w_stride);
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= K; i += 32) {
    __m512bh wv[R];
    for (int r = 0; r < R; ++r) wv[r] = (__m512bh)_mm512_loadu_si512(w[r] + i);
    for (int c = 0; c < C; ++c) {
      const __m512bh av = (__m512bh)_mm512_loadu_si512(a + c * lda + i);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], wv[r], av);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float s = hsum(acc[r][c]);
      for (int64_t j = i; j < K; ++j) s += bf16_to_fp32(w[r][j]) * bf16_to_fp32(a[c * lda + j]);
      y[c * ldy + r] = s;
    }
}

// 4x6: 24 accumulators + 4 weights + 1 activation = 29 of the 32 zmm registers.
constexpr int kR = 4, kC = 6;

// Rows [r0, r1) of one block of C activation rows, kR at a time, then the leftover rows.
template <typename WE, int C>
inline void rows_block(int64_t K, const uint8_t* w, size_t w_stride, int64_t r0, int64_t r1,
                       const float* a, size_t lda, float* y, size_t ldy) {
  int64_t r = r0;
  for (; r + kR <= r1; r += kR)
    block_rc<WE, kR, C>(K, w + r * w_stride, w_stride, a, lda, y + r, ldy);
  for (; r < r1; ++r) block_rc<WE, 1, C>(K, w + r * w_stride, w_stride, a, lda, y + r, ldy);
}

template <int C>
inline void rows_block_bf16(int64_t K, const uint8_t* w, size_t w_stride, int64_t r0, int64_t r1,
                            const uint16_t* a, size_t lda, float* y, size_t ldy) {
  int64_t r = r0;
  for (; r + kR <= r1; r += kR)
    block_rc_bf16<kR, C>(K, w + r * w_stride, w_stride, a, lda, y + r, ldy);
  for (; r < r1; ++r) block_rc_bf16<1, C>(K, w + r * w_stride, w_stride, a, lda, y + r, ldy);
}

// Weight rows per block: as many as stay in L2 while a chunk's activation rows pass over them.
inline int64_t row_block(size_t w_stride) {
  return std::max<int64_t>(kR, int64_t(256 * 1024 / w_stride) / kR * kR);
}

template <typename WE, typename AE, template <int> class Micro>
void gemm_float(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                size_t a_stride, int64_t M, float* Y, size_t ldy) {
  if (M < 4) {  // decode: memory-bound, nothing to share
    gemm_tiled<Micro>(K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
    return;
  }
  // The F32 activations, 60 rows (10 blocks of 6) at a time, per thread; grown once.
  constexpr int64_t kChunk = 60;
  thread_local std::vector<float> act;
  const size_t lda = size_t(K);
  if (act.size() < lda * size_t(kChunk)) act.resize(lda * size_t(kChunk));
  const auto* w = static_cast<const uint8_t*>(W);
  const int64_t rb = row_block(w_stride);
  for (int64_t m0 = 0; m0 < M; m0 += kChunk) {
    const int64_t mc = std::min(kChunk, M - m0);
    for (int64_t m = 0; m < mc; ++m) {
      const auto* src = reinterpret_cast<const typename AE::T*>(static_cast<const uint8_t*>(A) +
                                                                size_t(m0 + m) * a_stride);
      float* dst = act.data() + size_t(m) * lda;
      int64_t i = 0;
      for (; i + 16 <= K; i += 16) _mm512_storeu_ps(dst + i, AE::load16(src + i));
      for (; i < K; ++i) dst[i] = AE::one(src[i]);
    }
    float* y = Y + m0 * ldy;
    for (int64_t r0 = 0; r0 < n_rows; r0 += rb) {
      const int64_t r1 = std::min(n_rows, r0 + rb);
      int64_t m = 0;
      for (; m + kC <= mc; m += kC)
        rows_block<WE, kC>(K, w, w_stride, r0, r1, act.data() + size_t(m) * lda, lda, y + m * ldy,
                           ldy);
      for (; m < mc; ++m)
        rows_block<WE, 1>(K, w, w_stride, r0, r1, act.data() + size_t(m) * lda, lda, y + m * ldy,
                          ldy);
    }
  }
}

// BF16 x BF16: the activations are already in the form vdpbf16ps takes; no copy.
void gemm_bf16(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
               size_t a_stride, int64_t M, float* Y, size_t ldy) {
  if (M < 4 || a_stride % 2 != 0) {
    gemm_tiled<MicroBF16>(K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
    return;
  }
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* a = static_cast<const uint16_t*>(A);
  const size_t lda = a_stride / 2;
  const int64_t rb = row_block(w_stride);
  constexpr int64_t kChunk = 60;
  for (int64_t m0 = 0; m0 < M; m0 += kChunk) {
    const int64_t mc = std::min(kChunk, M - m0);
    float* y = Y + m0 * ldy;
    const uint16_t* am = a + size_t(m0) * lda;
    for (int64_t r0 = 0; r0 < n_rows; r0 += rb) {
      const int64_t r1 = std::min(n_rows, r0 + rb);
      int64_t m = 0;
      for (; m + kC <= mc; m += kC)
        rows_block_bf16<kC>(K, w, w_stride, r0, r1, am + size_t(m) * lda, lda, y + m * ldy, ldy);
      for (; m < mc; ++m)
        rows_block_bf16<1>(K, w, w_stride, r0, r1, am + size_t(m) * lda, lda, y + m * ldy, ldy);
    }
  }
}

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

// silu(g) * u with e^-|g| from exp_neg: silu(x) = x / (1 + e^-x) for x >= 0 and x e^x / (1 + e^x)
// below, so e^ never overflows.
void swiglu_avx512(const float* gate, const float* up, float* out, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(gate + i);
    const __m512 t = exp_neg(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));  // e^-|x|
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 num = _mm512_mask_mul_ps(x, neg, x, t);
    _mm512_storeu_ps(
        out + i, _mm512_mul_ps(_mm512_div_ps(num, _mm512_add_ps(one, t)), _mm512_loadu_ps(up + i)));
  }
  swiglu_generic(gate + i, up + i, out + i, n - i);
}

}  // namespace

void register_avx512_float(KernelTable& t) {
  t.swiglu = swiglu_avx512;
  if (find_type(uint32_t(DType::F16))->vec_dot_type == DType::F16) {
    t.vec_dot[uint32_t(DType::F16)] = vec_dot_via<MicroF16F16>;
    t.gemm[uint32_t(DType::F16)] = gemm_float<F16Elem, F16Elem, MicroF16F16>;
  } else {
    t.vec_dot[uint32_t(DType::F16)] = vec_dot_via<MicroF16>;
    t.gemm[uint32_t(DType::F16)] = gemm_float<F16Elem, F32Elem, MicroF16>;
  }
  if (find_type(uint32_t(DType::BF16))->vec_dot_type == DType::BF16) {
    t.vec_dot[uint32_t(DType::BF16)] = vec_dot_via<MicroBF16>;
    t.gemm[uint32_t(DType::BF16)] = gemm_bf16;
  }
  t.vec_dot[uint32_t(DType::F32)] = vec_dot_via<MicroF32>;
  t.gemm[uint32_t(DType::F32)] = gemm_float<F32Elem, F32Elem, MicroF32>;
  t.dot_f16 = dot_f16_f16_avx512;
  t.quantize_row[uint32_t(DType::F16)] = quantize_row_f16_avx512;
}

}  // namespace hearth::kernels
