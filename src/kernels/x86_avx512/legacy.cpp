// AVX-512 + VNNI kernels for Q8_0 weights and the Q8_0 activation quantizer.
//
// vpdpbusd multiplies unsigned by signed bytes, so the signed weights are offset by 128
// (x ^ 0x80 = x + 128) and 128 * sum(y) is subtracted again; two 32-element blocks fill a zmm.
#include <type_traits>

#include "kernels/x86_avx512/common.h"
#include "kernels/x86_avx512/gemm_vnni.h"
#include "kernels/x86_avx512/x86_avx512.h"
#include "quant/blocks.h"

namespace hearth::kernels {
namespace {

using namespace avx512;

// Bit-identical to quantize_row_q8_0_ref: d = amax / 127, q = roundf(x / d) (ties away from 0).
void quantize_row_q8_0_avx512(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_0*>(vy);
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
  for (int64_t b = 0; b < n / QK8_0; ++b, x += QK8_0) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(
        _mm512_max_ps(_mm512_and_ps(v0, abs_mask), _mm512_and_ps(v1, abs_mask)));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    const __m512 vid = _mm512_set1_ps(id);
    __m128i q[2];
    const __m512 vs[2] = {_mm512_mul_ps(v0, vid), _mm512_mul_ps(v1, vid)};
    for (int k = 0; k < 2; ++k) {
      const __m512 t = _mm512_roundscale_ps(vs[k], _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m512 frac = _mm512_and_ps(_mm512_sub_ps(vs[k], t), abs_mask);
      const __mmask16 up = _mm512_cmp_ps_mask(frac, half, _CMP_GE_OQ);
      // t + sign(v) where |frac| >= 0.5: round half away from zero, like roundf.
      const __m512 sgn = _mm512_or_ps(one, _mm512_andnot_ps(abs_mask, vs[k]));
      const __m512 r = _mm512_mask_add_ps(t, up, t, sgn);
      q[k] = _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(r));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs), q[0]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16), q[1]);
  }
}

// Scale vector for two blocks: lanes 0-7 = a, lanes 8-15 = b.
inline __m512 pair_scale(float a, float b) {
  return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

template <int NC>
struct MicroQ8_0 {
  static void run(int64_t K, const uint8_t* w, const uint8_t* a, size_t a_stride, float* out,
                  size_t ldy) {
    const auto* x = reinterpret_cast<const block_q8_0*>(w);
    const int64_t nb = K / QK8_0;
    const __m512i off = _mm512_set1_epi8(char(0x80)), ones = _mm512_set1_epi8(1);
    const __m512i z = _mm512_setzero_si512();
    __m512 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      const __m512i xu = _mm512_xor_si512(load2x256(x[b].qs, x[b + 1].qs), off);
      const float dx0 = h2f(x[b].d), dx1 = h2f(x[b + 1].d);
      for (int c = 0; c < NC; ++c) {
        const auto* y = reinterpret_cast<const block_q8_0*>(a + c * a_stride);
        const __m512i yv = load2x256(y[b].qs, y[b + 1].qs);
        const __m512i s = _mm512_sub_epi32(_mm512_dpbusd_epi32(z, xu, yv),
                                           _mm512_slli_epi32(_mm512_dpbusd_epi32(z, ones, yv), 7));
        const __m512 sc = pair_scale(dx0 * h2f(y[b].d), dx1 * h2f(y[b + 1].d));
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, acc[c]);
      }
    }
    for (int c = 0; c < NC; ++c) {
      float s = hsum(acc[c]);
      const auto* y = reinterpret_cast<const block_q8_0*>(a + c * a_stride);
      for (int64_t t = b; t < nb; ++t) {
        int32_t is = 0;
        for (int j = 0; j < QK8_0; ++j) is += int32_t(x[t].qs[j]) * y[t].qs[j];
        s += float(is) * h2f(x[t].d) * h2f(y[t].d);
      }
      out[c * ldy] = s;
    }
  }
};

float vec_dot_q8_0_avx512(int64_t n, const void* x, const void* y) {
  float r;
  MicroQ8_0<1>::run(n, static_cast<const uint8_t*>(x), static_cast<const uint8_t*>(y), 0, &r, 0);
  return r;
}

// Prefill: 8 blocks (256 elements) of a Q8_0 row as unsigned bytes x + 128.
void unpack_row_q8_0(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const auto* x = reinterpret_cast<const block_q8_0*>(row) + sb * 8;
  const __m256i off = _mm256_set1_epi8(char(0x80));
  for (int k = 0; k < 8; ++k) {
    _mm256_store_si256(
        reinterpret_cast<__m256i*>(o.u + 32 * k),
        _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[k].qs)), off));
    o.scale[k] = h2f(x[k].d);
    o.off[k] = 128.0f * o.scale[k];
  }
}

constexpr int kPrefetchBytes = 512;
constexpr int kAheadGroups = 2;

// Decode: 4 rows per pass share the activation loads and overlap their dependency chains.
void gemv_q8_0(int64_t K, const uint8_t* w, size_t w_stride, int64_t n_rows, const void* A,
               float* Y) {
  const auto* y = static_cast<const block_q8_0*>(A);
  const int64_t nb = K / QK8_0;
  const __m512i off = _mm512_set1_epi8(char(0x80)), ones = _mm512_set1_epi8(1);
  const __m512i z = _mm512_setzero_si512();
  constexpr int R = 4;
  int64_t r = 0;
  for (; r + R <= n_rows && nb % 2 == 0; r += R) {
    const block_q8_0* x[R];
    __m512 acc[R];
    for (int i = 0; i < R; ++i) {
      x[i] = reinterpret_cast<const block_q8_0*>(w + (r + i) * w_stride);
      acc[i] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b += 2) {
      const __m512i yv = load2x256(y[b].qs, y[b + 1].qs);
      const __m512i ysum128 = _mm512_slli_epi32(_mm512_dpbusd_epi32(z, ones, yv), 7);
      const float dy0 = h2f(y[b].d), dy1 = h2f(y[b + 1].d);
      for (int i = 0; i < R; ++i) {
        // Rows of a group are short streams the hardware prefetcher barely ramps up on: fetch
        // ahead in the row and at the same place two groups on (measured: 10.2 -> 15.9 t/s).
        _mm_prefetch(reinterpret_cast<const char*>(x[i] + b) + kPrefetchBytes, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(x[i] + b) + kAheadGroups * R * w_stride,
                     _MM_HINT_T0);
        const __m512i xu = _mm512_xor_si512(load2x256(x[i][b].qs, x[i][b + 1].qs), off);
        const __m512i s = _mm512_sub_epi32(_mm512_dpbusd_epi32(z, xu, yv), ysum128);
        acc[i] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(s),
                            pair_scale(h2f(x[i][b].d) * dy0, h2f(x[i][b + 1].d) * dy1), acc[i]);
      }
    }
    for (int i = 0; i < R; ++i) Y[r + i] = hsum(acc[i]);
  }
  for (; r < n_rows; ++r)
    MicroQ8_0<1>::run(K, w + r * w_stride, static_cast<const uint8_t*>(A), 0, Y + r, 0);
}

// Decode of a few sequences at once (continuous batching): as gemv_q8_0, with R weight rows per
// pass dotted with NC activation rows, so each weight byte streams from memory once per NC
// columns at gemv's pace (the per-row micro-kernels of gemm_tiled are compute-bound there).
template <int NC>
void gemv_q8_0_cols(int64_t K, const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* a,
                    size_t a_stride, float* Y, size_t ldy) {
  constexpr int R = NC > 4 ? 1 : 2;
  const int64_t nb = K / QK8_0;  // even (checked by the caller)
  const __m512i off = _mm512_set1_epi8(char(0x80)), ones = _mm512_set1_epi8(1);
  const __m512i z = _mm512_setzero_si512();
  auto rows = [&](int64_t r, auto rr) {
    constexpr int RR = decltype(rr)::value;
    const block_q8_0* x[RR];
    __m512 acc[RR][NC];
    for (int i = 0; i < RR; ++i) {
      x[i] = reinterpret_cast<const block_q8_0*>(w + (r + i) * w_stride);
      for (int c = 0; c < NC; ++c) acc[i][c] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b += 2) {
      __m512i yv[NC], ys[NC];
      float dy0[NC], dy1[NC];
      for (int c = 0; c < NC; ++c) {
        const auto* y = reinterpret_cast<const block_q8_0*>(a + c * a_stride);
        yv[c] = load2x256(y[b].qs, y[b + 1].qs);
        ys[c] = _mm512_slli_epi32(_mm512_dpbusd_epi32(z, ones, yv[c]), 7);
        dy0[c] = h2f(y[b].d);
        dy1[c] = h2f(y[b + 1].d);
      }
      for (int i = 0; i < RR; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(x[i] + b) + kPrefetchBytes, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(x[i] + b) + kAheadGroups * RR * w_stride,
                     _MM_HINT_T0);
        const __m512i xu = _mm512_xor_si512(load2x256(x[i][b].qs, x[i][b + 1].qs), off);
        const float dx0 = h2f(x[i][b].d), dx1 = h2f(x[i][b + 1].d);
        for (int c = 0; c < NC; ++c) {
          const __m512i s = _mm512_sub_epi32(_mm512_dpbusd_epi32(z, xu, yv[c]), ys[c]);
          acc[i][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), pair_scale(dx0 * dy0[c], dx1 * dy1[c]),
                                      acc[i][c]);
        }
      }
    }
    for (int i = 0; i < RR; ++i)
      for (int c = 0; c < NC; ++c) Y[c * ldy + r + i] = hsum(acc[i][c]);
  };
  int64_t r = 0;
  for (; r + R <= n_rows; r += R) rows(r, std::integral_constant<int, R>());
  for (; r < n_rows; ++r) rows(r, std::integral_constant<int, 1>());
}

void gemv_q8_0_small_m(int64_t K, const uint8_t* w, size_t w_stride, int64_t n_rows, const void* A,
                       size_t a_stride, int64_t M, float* Y, size_t ldy) {
  const auto* a = static_cast<const uint8_t*>(A);
  for (int64_t m0 = 0; m0 < M;) {
    const int64_t left = M - m0;
    const uint8_t* am = a + m0 * a_stride;
    float* ym = Y + m0 * ldy;
    const int n = left >= 8 ? 8 : left >= 4 ? 4 : int(left);
    switch (n) {
      case 8:
        gemv_q8_0_cols<8>(K, w, w_stride, n_rows, am, a_stride, ym, ldy);
        break;
      case 4:
        gemv_q8_0_cols<4>(K, w, w_stride, n_rows, am, a_stride, ym, ldy);
        break;
      case 3:
        gemv_q8_0_cols<3>(K, w, w_stride, n_rows, am, a_stride, ym, ldy);
        break;
      case 2:
        gemv_q8_0_cols<2>(K, w, w_stride, n_rows, am, a_stride, ym, ldy);
        break;
      default:
        gemv_q8_0_cols<1>(K, w, w_stride, n_rows, am, a_stride, ym, ldy);
        break;
    }
    m0 += n;
  }
}

void gemm_q8_0(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
               size_t a_stride, int64_t M, float* Y, size_t ldy) {
  if (M >= 16 && K % 256 == 0)
    gemm_vnni(unpack_row_q8_0, 32, ActFormat::kQ8_0, K, W, w_stride, n_rows, A, a_stride, M, Y,
              ldy);
  else if (M == 1)
    gemv_q8_0(K, static_cast<const uint8_t*>(W), w_stride, n_rows, A, Y);
  else if ((K / QK8_0) % 2 == 0)
    gemv_q8_0_small_m(K, static_cast<const uint8_t*>(W), w_stride, n_rows, A, a_stride, M, Y, ldy);
  else
    gemm_tiled<MicroQ8_0>(K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

}  // namespace

void register_avx512_legacy(KernelTable& t) {
  t.quantize_row[uint32_t(DType::Q8_0)] = quantize_row_q8_0_avx512;
  t.vec_dot[uint32_t(DType::Q8_0)] = vec_dot_q8_0_avx512;
  t.gemm[uint32_t(DType::Q8_0)] = gemm_q8_0;
  // Decode of Q8_0 is pure bandwidth (1.06 bytes per weight, one VNNI op per 4): 1B model,
  // 2 threads, tg from the page cache 16.3 t/s vs 19.5 t/s from huge pages (PERFORMANCE.md).
  t.prefer_resident[uint32_t(DType::Q8_0)] = true;
}

}  // namespace hearth::kernels
