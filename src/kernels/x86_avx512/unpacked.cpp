// AVX-512 kernels for the remaining weight types (Q2_K against Q8_K;
// Q4_0, Q5_0, IQ4_NL against Q8_0; Q4_1, Q5_1 against Q8_1), all built on one idea: unpack a
// 256-element super-block of a weight row to unsigned bytes u with a float scale and offset per
// group, so that
//   weight = scale[g] * u - off[g],
// then use vpdpbusd. Prefill (M >= 8) goes through the column-vectorised gemm_vnni; smaller M
// dots each unpacked Q2_K super-block with every activation row (terms_q8k), and the 32-wide
// types build each block's bytes in registers (gemm_legacy_small).
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

// ---- Unpackers in registers. unpack_rows.h's are plain loops (a GCC workaround keeps them
// unvectorised); decode unpacks every super-block it reads, one row at a time, and the loops were
// most of its time (1B Q3_K_M: 2.2 t/s against llama.cpp's 27; Q3_K and IQ4_XS now decode in
// kquants.cpp). Same output bytes and scales.

void unpack_q2_K_regs(const uint8_t* row, int64_t sb, RowUnpack& o) {
  const block_q2_K& b = reinterpret_cast<const block_q2_K*>(row)[sb];
  for (int h = 0; h < 2; ++h) {
    const __m512i q = bcast256(b.qs + 32 * h);
    for (int k = 0; k < 2; ++k) _mm512_store_si512(o.u + 128 * h + 64 * k, q2_bits(q, k));
  }
  const __m512i s =
      _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
  const __m512i m4 = _mm512_set1_epi32(15);
  _mm512_storeu_ps(o.scale, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(s, m4)),
                                          _mm512_set1_ps(h2f(b.d))));
  _mm512_storeu_ps(o.off, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(s, 4)),
                                        _mm512_set1_ps(h2f(b.dmin))));
}

// ---- Small M: dot one unpacked super-block with one activation super-block.

// Lane -> group index vectors: group 32 has 8 int32 lanes per group, group 16 has 4.
template <int GROUP>
inline __m512i group_index(int k) {
  alignas(64) int32_t idx[16];
  for (int l = 0; l < 16; ++l) idx[l] = (64 * k + 4 * l) / GROUP;
  return _mm512_load_si512(idx);
}

// Activation super-block `sb` as int8 values plus per-32 scale and per-group sums.
// 32-wide types against Q8_0 / Q8_1 activations: one unpacked super-block (8 blocks), for the
// zero-padded tail of rows that are not whole super-blocks (decode has its own kernel).
template <ActFormat F, int GROUP>
inline float dot_sb(const RowUnpack& u, const uint8_t* act, int64_t sb) {
  static_assert(F != ActFormat::kQ8K, "Q8_K activations: terms_q8k");
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

// Small M for the 32-wide types (decode): each 32-weight block is turned into unsigned bytes in
// registers (the nibble; Q5_x: | high bit << 4; IQ4_NL: its table value + 128 by vpshufb) and
// dotted with each activation block by vpdpbusd. The offset of Q4_0/Q5_0/IQ4_NL (8, 16, 128) is
// removed through the activation block's sum; Q4_1/Q5_1 add m * s (s = the Q8_1 block's stored
// d * sum). Any K that is a whole number of blocks (no super-block structure, no tail case).
// NC activation rows at a time (a compile-time count keeps the accumulators in registers; with
// a runtime count they lived in memory and each block waited on a store-to-load round trip).
template <DType T, int NC>
void gemm_legacy_small_cols(int64_t K, const uint8_t* w, size_t w_stride, int64_t n_rows,
                            const uint8_t* a, size_t a_stride, float* Y, size_t ldy) {
  using WB = std::conditional_t<
      T == DType::Q4_0, block_q4_0,
      std::conditional_t<
          T == DType::Q5_0, block_q5_0,
          std::conditional_t<T == DType::Q4_1, block_q4_1,
                             std::conditional_t<T == DType::Q5_1, block_q5_1, block_iq4_nl>>>>;
  constexpr bool kHigh = T == DType::Q5_0 || T == DType::Q5_1;
  constexpr bool kMin = T == DType::Q4_1 || T == DType::Q5_1;  // Q8_1 activations
  [[maybe_unused]] constexpr int kShift = T == DType::Q4_0 ? 3
                                          : T == DType::Q5_0
                                              ? 4
                                              : 7;  // offset 8, 16, 128 (not Q4_1/Q5_1)
  using AB = std::conditional_t<kMin, block_q8_1, block_q8_0>;
  const int64_t nb = K / 32;
  const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi8(1);
  const __m256i bit_of_byte = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
  // Byte i of the broadcast 32-bit qh picks qh's byte i / 8 (per 128-bit lane).
  const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                        2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i table = _mm256_broadcastsi128_si256(iq4nl_table_u8());
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto* wb = reinterpret_cast<const WB*>(w + r * w_stride);
    // Two accumulator sets, even and odd blocks: one FMA chain per column would make a single
    // column wait on the FMA latency every block.
    __m256 acc[2][NC];
    float macc[NC];
    for (int i = 0; i < NC; ++i) {
      acc[0][i] = acc[1][i] = _mm256_setzero_ps();
      macc[i] = 0;
    }
    auto block = [&](int64_t b, __m256* accs) {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb[b].qs));
      __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q),
                                   low4);  // bytes 0-15: low, 16-31: high
      if constexpr (T == DType::IQ4_NL) u = _mm256_shuffle_epi8(table, u);
      if constexpr (kHigh) {
        uint32_t qh;
        std::memcpy(&qh, wb[b].qh, 4);
        const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(int32_t(qh)), pick);
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit_of_byte), bit_of_byte);
        u = _mm256_or_si256(u, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
      }
      const float dw = h2f(wb[b].d);
      for (int m = 0; m < NC; ++m) {
        const auto& ab = reinterpret_cast<const AB*>(a + m * a_stride)[b];
        const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab.qs));
        __m256i t = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, av);
        if constexpr (kMin) {
          macc[m] += h2f(wb[b].m) * h2f(ab.s);
        } else {
          const __m256i sum = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, av);
          t = _mm256_sub_epi32(t, _mm256_slli_epi32(sum, kShift));
        }
        accs[m] = _mm256_fmadd_ps(_mm256_set1_ps(dw * h2f(ab.d)), _mm256_cvtepi32_ps(t), accs[m]);
      }
    };
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      block(b, acc[0]);
      block(b + 1, acc[1]);
    }
    if (b < nb) block(b, acc[0]);
    for (int m = 0; m < NC; ++m)
      Y[m * ldy + r] = hsum(_mm256_add_ps(acc[0][m], acc[1][m])) + macc[m];
  }
}

template <DType T>
void gemm_legacy_small(int64_t K, const uint8_t* w, size_t w_stride, int64_t n_rows,
                       const uint8_t* a, size_t a_stride, int64_t M, float* Y, size_t ldy) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4)
    gemm_legacy_small_cols<T, 4>(K, w, w_stride, n_rows, a + m * a_stride, a_stride, Y + m * ldy,
                                 ldy);
  for (; m + 2 <= M; m += 2)
    gemm_legacy_small_cols<T, 2>(K, w, w_stride, n_rows, a + m * a_stride, a_stride, Y + m * ldy,
                                 ldy);
  for (; m < M; ++m)
    gemm_legacy_small_cols<T, 1>(K, w, w_stride, n_rows, a + m * a_stride, a_stride, Y + m * ldy,
                                 ldy);
}

// Decode against Q8_K: one super-block's terms before the activation scale y.d, as 16 float
// lanes the caller accumulates over the row (one horizontal sum per row, not per super-block).
template <int GROUP>
inline __m512 terms_q8k(const RowUnpack& u, const block_q8_K& y) {
  const __m512 sc = _mm512_loadu_ps(u.scale);
  const __m512i z = _mm512_setzero_si512();
  __m512 t = _mm512_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    const __m512i dp =
        _mm512_dpbusd_epi32(z, _mm512_load_si512(u.u + 64 * k), _mm512_loadu_si512(y.qs + 64 * k));
    t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp), _mm512_permutexvar_ps(group_index<GROUP>(k), sc),
                        t);
  }
  // bsums[i] sums elements 16i..16i+15: group i (GROUP 16) or i / 2 (GROUP 32).
  const __m512 bs = _mm512_cvtepi32_ps(
      _mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.bsums))));
  __m512 off = _mm512_loadu_ps(u.off);
  if constexpr (GROUP == 32)
    off = _mm512_permutexvar_ps(_mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0),
                                off);
  return _mm512_fnmadd_ps(off, bs, t);
}

template <UnpackFn U, int GROUP, ActFormat F, VecDotFn REF, DType T>
void gemm_unpacked(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                   size_t a_stride, int64_t M, float* Y, size_t ldy) {
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* a = static_cast<const uint8_t*>(A);
  if constexpr (F != ActFormat::kQ8K) {  // the 32-wide types decode block by block, any K
    if (M < 8) {
      gemm_legacy_small<T>(K, w, w_stride, n_rows, a, a_stride, M, Y, ldy);
      return;
    }
  }
  const int64_t Km = K / 256 * 256;
  if (Km != K && F == ActFormat::kQ8K) {  // K-quant rows are whole super-blocks; not expected
    gemm_from_vec_dot(REF, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
    return;
  }
  if (Km > 0) {
    if (M >= 8) {
      gemm_vnni(U, GROUP, F, Km, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
    } else if constexpr (F == ActFormat::kQ8K) {
      const int64_t nsb = Km / 256;
      const size_t sb_bytes = w_stride / size_t(nsb);
      constexpr int64_t kAheadRows = 4;
      RowUnpack u;
      for (int64_t r = 0; r < n_rows; ++r)
        for (int64_t m0 = 0; m0 < M; m0 += 8) {
          const int64_t mc = std::min<int64_t>(8, M - m0);
          __m512 acc[8];
          for (int i = 0; i < 8; ++i) acc[i] = _mm512_setzero_ps();
          for (int64_t sb = 0; sb < nsb; ++sb) {
            // The same place a few rows on, into L2 (as the Q4_K/Q6_K decode does).
            const char* ahead =
                reinterpret_cast<const char*>(w + (r + kAheadRows) * w_stride + sb * sb_bytes);
            for (size_t off = 0; off < sb_bytes; off += 64) _mm_prefetch(ahead + off, _MM_HINT_T1);
            U(w + r * w_stride, sb, u);
            for (int64_t i = 0; i < mc; ++i) {
              const auto& y = reinterpret_cast<const block_q8_K*>(a + (m0 + i) * a_stride)[sb];
              acc[i] = _mm512_fmadd_ps(terms_q8k<GROUP>(u, y), _mm512_set1_ps(y.d), acc[i]);
            }
          }
          for (int64_t i = 0; i < mc; ++i) Y[(m0 + i) * ldy + r] = _mm512_reduce_add_ps(acc[i]);
        }
    }
  }
  if constexpr (F != ActFormat::kQ8K) {
    if (Km != K) {
      using Block = std::conditional_t<F == ActFormat::kQ8_1, block_q8_1, block_q8_0>;
      add_padded_tail<Block>(
          U, T, K, w, w_stride, n_rows, a, a_stride, M, Y, ldy, Km == 0,
          [](const RowUnpack& u, const uint8_t* act) { return dot_sb<F, GROUP>(u, act, 0); });
    }
  }
}

template <UnpackFn U, int GROUP, ActFormat F, VecDotFn REF, DType T>
float vec_dot_unpacked(int64_t n, const void* x, const void* y) {
  float r = 0;
  gemm_unpacked<U, GROUP, F, REF, T>(n, x, 0, 1, y, 0, 1, &r, 1);
  return r;
}

template <UnpackFn U, int GROUP, ActFormat F, VecDotFn REF, DType T>
void put(KernelTable& t) {
  t.vec_dot[uint32_t(T)] = vec_dot_unpacked<U, GROUP, F, REF, T>;
  t.gemm[uint32_t(T)] = gemm_unpacked<U, GROUP, F, REF, T>;
}

}  // namespace

void register_avx512_unpacked(KernelTable& t) {
  put<unpack_q2_K_regs, 16, ActFormat::kQ8K, vec_dot_q2_K_q8_K, DType::Q2_K>(t);
  put<unpack_q4_0, 32, ActFormat::kQ8_0, vec_dot_q4_0_q8_0, DType::Q4_0>(t);
  put<unpack_q5_0, 32, ActFormat::kQ8_0, vec_dot_q5_0_q8_0, DType::Q5_0>(t);
  put<unpack_iq4_nl, 32, ActFormat::kQ8_0, vec_dot_iq4_nl_q8_0, DType::IQ4_NL>(t);
  put<unpack_q4_1, 32, ActFormat::kQ8_1, vec_dot_q4_1_q8_1, DType::Q4_1>(t);
  put<unpack_q5_1, 32, ActFormat::kQ8_1, vec_dot_q5_1_q8_1, DType::Q5_1>(t);
}

}  // namespace hearth::kernels
