// AVX-512 + VNNI kernels for Q8_0 weights and the Q8_0 activation quantizer.
//
// vpdpbusd multiplies unsigned by signed bytes, so the signed weights are offset by 128
// (x ^ 0x80 = x + 128) and 128 * sum(y) is subtracted again; two 32-element blocks fill a zmm.
#include <type_traits>

#include "base/cpu_features.h"
#include "kernels/x86_avx512/common.h"
#include "kernels/x86_avx512/gemm_vnni.h"
#include "kernels/x86_avx512/x86_avx512.h"
#include "quant/blocks.h"

namespace hearth::kernels {
namespace {

using namespace avx512;

// Bit-identical to quantize_act_q8_0: multiplier 127 / amax, ties to even (llama.cpp's x86
// activation quantizer).
void quantize_row_q8_0_avx512(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_0*>(vy);
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n / QK8_0; ++b, x += QK8_0) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(
        _mm512_max_ps(_mm512_and_ps(v0, abs_mask), _mm512_and_ps(v1, abs_mask)));
    const float id = amax != 0 ? 127.0f / amax : 0.0f;
    y[b].d = fp32_to_fp16(amax / 127.0f);
    const __m512 vid = _mm512_set1_ps(id);
    constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v0, vid), kNearest));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v1, vid), kNearest));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16), _mm512_cvtsepi32_epi8(q1));
  }
}

// Every Q8_0 dot below sums in llama.cpp's order (its x86 CPU backend, any batch size): per
// 4-byte lane of a block, one float accumulator over the blocks, acc += (dx * dy) * lane_dot as
// one FMA; at the end the 8 lanes are summed as hsum(__m256) does. Logits then equal
// llama.cpp's bit for bit wherever the rest of the model does too, instead of drifting apart
// after one activation rounds the other way (measured on the Q8_0 fixtures; docs/testing.md).
// Two 8-lane accumulators share a zmm: two weight rows (decode); prefill keeps one lane of 16
// weight rows per zmm (gemm_q8_0_rows16.cpp). Here the weights are offset to unsigned bytes
// (x + 128) for vpdpbusd; the dot starts from -128 * sum(y) of its lane, so the integer is exact.

// The -128 * sum(y) start of each 4-byte lane of a 32-byte block.
inline __m256i lane_corr(__m256i yv) {
  const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), yv);
  return _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s, 7));
}

inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

inline __m256i unsigned_q(const block_q8_0& x) {
  return _mm256_xor_si256(load256(x.qs), _mm256_set1_epi8(char(0x80)));
}

// Scale vector for two accumulators: lanes 0-7 = a, lanes 8-15 = b.
inline __m512 pair_scale(float a, float b) {
  return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

inline float hsum_lo(__m512 v) {
  return hsum(_mm512_castps512_ps256(v));
}
inline float hsum_hi(__m512 v) {
  return hsum(_mm512_extractf32x8_ps(v, 1));
}

// One weight row against NC activation rows, a block at a time (vec_dot, odd row counts).
template <int NC>
struct MicroQ8_0 {
  static void run(int64_t K, const uint8_t* w, const uint8_t* a, size_t a_stride, float* out,
                  size_t ldy) {
    const auto* x = reinterpret_cast<const block_q8_0*>(w);
    const int64_t nb = K / QK8_0;
    __m256 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i xu = unsigned_q(x[b]);
      const float dx = h2f(x[b].d);
      for (int c = 0; c < NC; ++c) {
        const auto* y = reinterpret_cast<const block_q8_0*>(a + c * a_stride);
        const __m256i yv = load256(y[b].qs);
        const __m256i s = _mm256_dpbusd_epi32(lane_corr(yv), xu, yv);
        acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(y[b].d)), _mm256_cvtepi32_ps(s), acc[c]);
      }
    }
    for (int c = 0; c < NC; ++c) out[c * ldy] = hsum(acc[c]);
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

// Decode of NC activation rows (1 for plain decode, up to 8 for continuous batching): P pairs of
// weight rows per pass, each pair in one zmm (lanes 0-7 row r, 8-15 row r + 1), so every
// activation load serves 2P rows and each weight byte streams from memory once per NC columns.
template <int NC, int P>
void gemv_q8_0_pairs(int64_t K, const uint8_t* w, size_t w_stride, int64_t r, const uint8_t* a,
                     size_t a_stride, float* Y, size_t ldy) {
  constexpr int R = 2 * P;
  const int64_t nb = K / QK8_0;
  const block_q8_0* x[R];
  for (int i = 0; i < R; ++i) x[i] = reinterpret_cast<const block_q8_0*>(w + (r + i) * w_stride);
  __m512 acc[P][NC];
  for (int p = 0; p < P; ++p)
    for (int c = 0; c < NC; ++c) acc[p][c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m512i yv[NC], yc[NC];
    float dy[NC];
    for (int c = 0; c < NC; ++c) {
      const auto* y = reinterpret_cast<const block_q8_0*>(a + c * a_stride) + b;
      const __m256i v = load256(y->qs);
      yv[c] = _mm512_broadcast_i64x4(v);
      yc[c] = _mm512_broadcast_i64x4(lane_corr(v));
      dy[c] = h2f(y->d);
    }
    for (int p = 0; p < P; ++p) {
      const block_q8_0* x0 = x[2 * p] + b;
      const block_q8_0* x1 = x[2 * p + 1] + b;
      // Rows of a group are short streams the hardware prefetcher barely ramps up on: fetch
      // ahead in the row and at the same place two groups on (measured: 10.2 -> 15.9 t/s), into
      // L2 (as kquants.cpp: on a Zen 4, 1B Q8_0 at 2 threads 22 -> 39 t/s against L1).
      for (const block_q8_0* xi : {x0, x1}) {
        _mm_prefetch(reinterpret_cast<const char*>(xi) + kPrefetchBytes, _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(xi) + kAheadGroups * R * w_stride, _MM_HINT_T1);
      }
      const __m512i xu =
          _mm512_inserti64x4(_mm512_castsi256_si512(unsigned_q(*x0)), unsigned_q(*x1), 1);
      const float dx0 = h2f(x0->d), dx1 = h2f(x1->d);
      for (int c = 0; c < NC; ++c) {
        const __m512i s = _mm512_dpbusd_epi32(yc[c], xu, yv[c]);
        acc[p][c] =
            _mm512_fmadd_ps(pair_scale(dx0 * dy[c], dx1 * dy[c]), _mm512_cvtepi32_ps(s), acc[p][c]);
      }
    }
  }
  for (int p = 0; p < P; ++p)
    for (int c = 0; c < NC; ++c) {
      Y[c * ldy + r + 2 * p] = hsum_lo(acc[p][c]);
      Y[c * ldy + r + 2 * p + 1] = hsum_hi(acc[p][c]);
    }
}

template <int NC>
void gemv_q8_0_cols(int64_t K, const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* a,
                    size_t a_stride, float* Y, size_t ldy) {
  constexpr int P = NC == 1 ? 4 : NC > 4 ? 1 : 2;
  int64_t r = 0;
  for (; r + 2 * P <= n_rows; r += 2 * P)
    gemv_q8_0_pairs<NC, P>(K, w, w_stride, r, a, a_stride, Y, ldy);
  for (; r + 2 <= n_rows; r += 2) gemv_q8_0_pairs<NC, 1>(K, w, w_stride, r, a, a_stride, Y, ldy);
  for (; r < n_rows; ++r) MicroQ8_0<NC>::run(K, w + r * w_stride, a, a_stride, Y + r, ldy);
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

void gemm_q8_0_llama(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                     size_t a_stride, int64_t M, float* Y, size_t ldy) {
  gemm_q8_0_avx512(true, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

void gemm_q8_0_fast(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                    size_t a_stride, int64_t M, float* Y, size_t ldy) {
  gemm_q8_0_avx512(false, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

}  // namespace

void gemm_q8_0_avx512(bool llama_order, int64_t K, const void* W, size_t w_stride, int64_t n_rows,
                      const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy) {
  // Prefill in llama.cpp's order: the rows-16 tile, any K (HEARTH_GEMM_COLS=1: the column
  // GEMM's lanes, K % 256 == 0, as before it).
  if (llama_order && M >= 16 && !gemm_cols_requested()) {
    gemm_q8_0_rows16(K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
  } else if (M >= 16 && K % 256 == 0) {
    if (llama_order)
      gemm_vnni_q8_0_lanes(unpack_row_q8_0, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
    else
      gemm_vnni(unpack_row_q8_0, 32, ActFormat::kQ8_0, K, W, w_stride, n_rows, A, a_stride, M, Y,
                ldy);
  } else {
    gemv_q8_0_small_m(K, static_cast<const uint8_t*>(W), w_stride, n_rows, A, a_stride, M, Y, ldy);
  }
}

void register_avx512_legacy(KernelTable& t) {
  t.quantize_row[uint32_t(DType::Q8_0)] = quantize_row_q8_0_avx512;
  t.vec_dot[uint32_t(DType::Q8_0)] = vec_dot_q8_0_avx512;
  // Prefill in llama.cpp's order cost ~40% of Q8_0 prompt speed on the column GEMM (115.6 vs
  // 201.2 t/s on a Zen 4, still ahead of llama.cpp's 98.0) and buys bit-identical logits; on the
  // rows-16 tile its kernel is ~22% below the fast order's (Zen 5, 1 thread: 183 vs 226-239
  // multiply-adds/ns, the column GEMM's lanes 98: one FMA per vpdpbusd, on the same two pipes,
  // is the bound). On CPUs with AMX, llama.cpp's backend runs Q8_0 through AMX tiles in an order
  // of their own, so matching is not possible there and the faster order stays.
  t.gemm[uint32_t(DType::Q8_0)] = cpu_features().amx_int8 ? gemm_q8_0_fast : gemm_q8_0_llama;
  // Decode of Q8_0 is pure bandwidth (1.06 bytes per weight, one VNNI op per 4): 1B model,
  // 2 threads, tg from the page cache 16.3 t/s vs 19.5 t/s from huge pages (PERFORMANCE.md).
  t.prefer_resident[uint32_t(DType::Q8_0)] = true;
}

}  // namespace hearth::kernels
