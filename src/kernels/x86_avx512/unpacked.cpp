// AVX-512 kernels for the 32-wide weight types (Q4_0, Q5_0, IQ4_NL against Q8_0; Q4_1, Q5_1
// against Q8_1): unsigned bytes u with a scale and an offset, so that
//   weight = scale * u - offset,
// dotted by vpdpbusd. Prefill (M >= 8) goes through the column GEMM (gemm_vnni); decode and small
// batches through the shared row-stream drivers (kernels/x86/row_stream.h) with one Kind per type.
#include <cstring>
#include <type_traits>

#include "kernels/generic/generic.h"
#include "kernels/unpack_rows.h"
#include "kernels/x86/row_stream.h"
#include "kernels/x86_avx512/common.h"
#include "kernels/x86_avx512/gemm_vnni.h"
#include "kernels/x86_avx512/x86_avx512.h"
#include "quant/blocks.h"
#include "quant/kquants.h"
#include "quant/legacy.h"

namespace hearth::kernels {
namespace {

using namespace avx512;

// ---- The 32-wide types, one block per step: the nibbles (Q5_x: | high bit << 4; IQ4_NL: its
// table value + 128 by vpshufb) as unsigned bytes in registers, dotted with the activation block
// by vpdpbusd. The offset of Q4_0/Q5_0/IQ4_NL (8, 16, 128) comes off each lane through the lane's
// activation sum (prepared once per block for all rows of a pass); Q4_1/Q5_1 add m * s (s = the
// Q8_1 block's stored d * sum). Each lane then holds llama.cpp's integer (4 products of the
// signed values) and one FMA per block sums it in llama.cpp's order, as at AVX2.
template <DType T>
struct LegacyKind {
  using WB = std::conditional_t<
      T == DType::Q4_0, block_q4_0,
      std::conditional_t<
          T == DType::Q5_0, block_q5_0,
          std::conditional_t<T == DType::Q4_1, block_q4_1,
                             std::conditional_t<T == DType::Q5_1, block_q5_1, block_iq4_nl>>>>;
  static constexpr bool kHigh = T == DType::Q5_0 || T == DType::Q5_1;
  static constexpr bool kMin = T == DType::Q4_1 || T == DType::Q5_1;  // Q8_1 activations
  static constexpr int kShift = T == DType::Q4_0 ? 3 : T == DType::Q5_0 ? 4 : 7;
  using AB = std::conditional_t<kMin, block_q8_1, block_q8_0>;
  static constexpr int kStep = 32;
  static constexpr size_t kStepBytes = sizeof(WB);
  static constexpr int kMaxCols = 8;
  struct Unp {
    __m256i u;
    float d, m;
  };
  struct Act {
    __m256i y, corr;
    float d, s;
  };
  struct Acc {
    __m256 v;
    float m;
  };
  HEARTH_KERNEL_INLINE static void unpack(const uint8_t* row, int64_t b, Unp& o) {
    const WB& x = reinterpret_cast<const WB*>(row)[b];
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs));
    // bytes 0-15: low nibbles, 16-31: high nibbles
    __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
    if constexpr (T == DType::IQ4_NL)
      u = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(iq4nl_table_u8()), u);
    if constexpr (kHigh) {
      uint32_t qh;
      std::memcpy(&qh, x.qh, 4);
      // Byte i of the broadcast qh picks qh's byte i / 8 (per 128-bit lane).
      const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
      const __m256i bit_of_byte = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
      const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(int32_t(qh)), pick);
      const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit_of_byte), bit_of_byte);
      u = _mm256_or_si256(u, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
    }
    o.u = u;
    o.d = h2f(x.d);
    if constexpr (kMin) o.m = h2f(x.m);
  }
  HEARTH_KERNEL_INLINE static void prep(const uint8_t* act, int64_t b, Act& a) {
    const AB& y = reinterpret_cast<const AB*>(act)[b];
    a.y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs));
    a.d = h2f(y.d);
    if constexpr (kMin) {
      a.s = h2f(y.s);
    } else {
      const __m256i sum = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), a.y);
      a.corr = _mm256_slli_epi32(sum, kShift);
    }
  }
  static void zero(Acc& a) {
    a.v = _mm256_setzero_ps();
    a.m = 0;
  }
  HEARTH_KERNEL_INLINE static void dot(const Unp& u, const Act& a, Acc& acc) {
    __m256i t = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u.u, a.y);
    if constexpr (kMin)
      acc.m += u.m * a.s;
    else
      t = _mm256_sub_epi32(t, a.corr);
    acc.v = _mm256_fmadd_ps(_mm256_set1_ps(u.d * a.d), _mm256_cvtepi32_ps(t), acc.v);
  }
  static float finish(const Acc& a) { return kMin ? hsum(a.v) + a.m : hsum(a.v); }
};

// Prefill (8 or more activation rows, whole super-blocks) through the column GEMM; decode, small
// batches and rows with a tail of blocks stream through the shared drivers.
template <class Kind, UnpackFn U, int GROUP, ActFormat F>
void gemm_unpacked(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                   size_t a_stride, int64_t M, float* Y, size_t ldy) {
  if (M >= 8 && K % 256 == 0)
    gemm_vnni(U, GROUP, F, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
  else
    x86::gemm<Kind>(K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

template <class Kind, UnpackFn U, int GROUP, ActFormat F, DType T>
void put(KernelTable& t) {
  t.vec_dot[uint32_t(T)] = x86::vec_dot<Kind>;
  t.gemm[uint32_t(T)] = gemm_unpacked<Kind, U, GROUP, F>;
}

}  // namespace

void register_avx512_unpacked(KernelTable& t) {
  put<LegacyKind<DType::Q4_0>, unpack_q4_0, 32, ActFormat::kQ8_0, DType::Q4_0>(t);
  put<LegacyKind<DType::Q5_0>, unpack_q5_0, 32, ActFormat::kQ8_0, DType::Q5_0>(t);
  put<LegacyKind<DType::IQ4_NL>, unpack_iq4_nl, 32, ActFormat::kQ8_0, DType::IQ4_NL>(t);
  put<LegacyKind<DType::Q4_1>, unpack_q4_1, 32, ActFormat::kQ8_1, DType::Q4_1>(t);
  put<LegacyKind<DType::Q5_1>, unpack_q5_1, 32, ActFormat::kQ8_1, DType::Q5_1>(t);
}

}  // namespace hearth::kernels
