// AVX2 kernels for the 32-wide types: Q8_0, Q4_0, Q5_0, IQ4_NL against Q8_0 activations and
// Q4_1, Q5_1 against Q8_1.
//
// Each block is turned into 32 bytes in registers — signed values for Q8_0 and IQ4_NL (dotted
// with the sign trick, |x| * sign(y, x)), unsigned for the others (Q4_0 and Q5_0 then subtract
// their offset times each lane's activation sum) — and dotted by vpmaddubsw + vpmaddwd into 8
// int32 lanes of 4 products each; one FMA per block into 8 float lanes, summed as hsum does. For
// Q8_0, Q4_0 and Q5_0 that is llama.cpp's own AVX2 order, so their dots equal its bit for bit
// (tests/unit/kernels). All batch sizes run through kernels/x86/row_stream.h's drivers (any K
// that is a whole number of blocks) or, for 8 or more rows, the column GEMM.
#include <cstring>

#include "kernels/unpack_rows.h"
#include "kernels/x86/row_stream.h"
#include "kernels/x86_avx2/common.h"
#include "kernels/x86_avx2/gemm_cols.h"
#include "kernels/x86_avx2/x86_avx2.h"
#include "quant/blocks.h"

namespace hearth::kernels {
namespace {

using namespace avx2;

inline __m256i load(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// 16 bytes of nibbles -> 32 bytes: the low nibbles (elements 0-15), then the high ones.
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
}

// The 32 bits of qh -> 32 bytes, 0xFF where the bit is set.
inline __m256i bits_to_bytes(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                        2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(int32_t(bits)), pick);
  return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
}

// 8 lanes of sums of 4 products, x unsigned (<= 128 after the sign trick).
inline __m256 lane_dots(__m256i ux, __m256i sy) {
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(ux, sy), _mm256_set1_epi16(1)));
}

struct BlockRegs {
  __m256i q;
  float d, m;
};

// An activation block: its bytes, its scale and, for the unsigned forms of Q4_0/Q5_0, the offset
// correction per lane (8 or 16 x the lane's sum of 4 bytes).
struct ActRegs {
  __m256i y, corr;
  float d, s;
};

template <DType T>
struct LegacyKind {
  static constexpr bool kMin = T == DType::Q4_1 || T == DType::Q5_1;  // unsigned, Q8_1 partner
  // Q4_0 / Q5_0 unpack unsigned (nibble, nibble | bit << 4) and subtract offset * sum(y) per lane:
  // the same integer per lane as llama.cpp's (q - offset) * y with the sign trick, two fewer
  // instructions per weight row, the lane sums shared by the rows of a pass.
  static constexpr int kOffShift = T == DType::Q4_0 ? 3 : T == DType::Q5_0 ? 4 : 0;
  static constexpr bool kSigned = T == DType::Q8_0 || T == DType::IQ4_NL;  // sign trick
  using WB = std::conditional_t<
      T == DType::Q8_0, block_q8_0,
      std::conditional_t<
          T == DType::Q4_0, block_q4_0,
          std::conditional_t<
              T == DType::Q5_0, block_q5_0,
              std::conditional_t<T == DType::Q4_1, block_q4_1,
                                 std::conditional_t<T == DType::Q5_1, block_q5_1, block_iq4_nl>>>>>;
  using AB = std::conditional_t<kMin, block_q8_1, block_q8_0>;
  static constexpr int kStep = 32;
  static constexpr size_t kStepBytes = sizeof(WB);
  static constexpr int kMaxCols = 4;
  using Unp = BlockRegs;
  using Act = ActRegs;
  struct Acc {
    __m256 v;
    float m;  // Q4_1/Q5_1: sum of m * s
  };

  // Signed bytes for Q8_0 and IQ4_NL, unsigned for the others.
  HEARTH_KERNEL_INLINE static void unpack(const uint8_t* row, int64_t b, Unp& u) {
    const WB& x = reinterpret_cast<const WB*>(row)[b];
    u.d = h2f(x.d);
    if constexpr (T == DType::Q8_0) {
      u.q = load(x.qs);
    } else if constexpr (T == DType::Q4_0) {
      u.q = nibbles(x.qs);
    } else if constexpr (T == DType::IQ4_NL) {
      const __m256i table = _mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(kvalues_iq4nl)));
      u.q = _mm256_shuffle_epi8(table, nibbles(x.qs));
    } else {  // Q5_0, Q4_1, Q5_1: nibble | bit << 4
      u.q = nibbles(x.qs);
      if constexpr (T != DType::Q4_1)
        u.q = _mm256_or_si256(u.q, _mm256_and_si256(bits_to_bytes(x.qh), _mm256_set1_epi8(0x10)));
      if constexpr (kMin) u.m = h2f(x.m);
    }
  }
  HEARTH_KERNEL_INLINE static void prep(const uint8_t* act, int64_t b, Act& a) {
    const AB& y = reinterpret_cast<const AB*>(act)[b];
    a.y = load(y.qs);
    a.d = h2f(y.d);
    if constexpr (kMin) a.s = h2f(y.s);
    if constexpr (kOffShift > 0) {
      const __m256i sums =
          _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), a.y), _mm256_set1_epi16(1));
      a.corr = _mm256_slli_epi32(sums, kOffShift);
    }
  }
  static void zero(Acc& a) {
    a.v = _mm256_setzero_ps();
    a.m = 0;
  }
  HEARTH_KERNEL_INLINE static void dot(const Unp& u, const Act& a, Acc& acc) {
    const __m256 d = _mm256_set1_ps(u.d * a.d);
    if constexpr (kSigned) {
      acc.v = _mm256_fmadd_ps(d, lane_dots(_mm256_sign_epi8(u.q, u.q), _mm256_sign_epi8(a.y, u.q)),
                              acc.v);
    } else {
      __m256i lanes = _mm256_madd_epi16(_mm256_maddubs_epi16(u.q, a.y), _mm256_set1_epi16(1));
      if constexpr (kOffShift > 0) lanes = _mm256_sub_epi32(lanes, a.corr);
      acc.v = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc.v);
      if constexpr (kMin) acc.m += u.m * a.s;
    }
  }
  static float finish(const Acc& a) { return kMin ? hsum(a.v) + a.m : hsum(a.v); }
};

// Eight blocks of a signed type as signed bytes with scale d (no offset), for the sign-trick
// column GEMM.
template <DType T>
void unpack_row_signed(const uint8_t* row, int64_t sb, RowUnpack& o) {
  for (int k = 0; k < 8; ++k) {
    BlockRegs u;
    LegacyKind<T>::unpack(row, 8 * sb + k, u);
    _mm256_store_si256(reinterpret_cast<__m256i*>(o.u + 32 * k), u.q);
    _mm256_store_si256(reinterpret_cast<__m256i*>(o.su + 32 * k), _mm256_abs_epi8(u.q));
    o.scale[k] = u.d;
    o.off[k] = 0;
  }
}

// Batches of 8 or more rows through the column GEMM (K a whole number of super-blocks): the
// unsigned forms of unpack_rows.h where they fit vpmaddubsw, signed bytes otherwise; Q8_0 in
// llama.cpp's order on every path.
template <DType T, UnpackFn RowU>
void gemm_legacy(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                 size_t a_stride, int64_t M, float* Y, size_t ldy) {
  if (M >= 8 && K % 256 == 0) {
    if constexpr (T == DType::Q8_0)
      gemm_cols_q8_0_lanes(unpack_row_signed<T>, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
    else if constexpr (RowU == nullptr)
      gemm_cols_signed(unpack_row_signed<T>, 32, ActFormat::kQ8_0, K, W, w_stride, n_rows, A,
                       a_stride, M, Y, ldy);
    else
      gemm_cols(RowU, 32, LegacyKind<T>::kMin ? ActFormat::kQ8_1 : ActFormat::kQ8_0, K, W, w_stride,
                n_rows, A, a_stride, M, Y, ldy, T == DType::Q4_0 || T == DType::Q4_1 ? 15 : 31);
  } else {
    x86::gemm<LegacyKind<T>>(K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
  }
}

template <DType T, UnpackFn RowU = nullptr>
void put(KernelTable& t) {
  t.vec_dot[uint32_t(T)] = x86::vec_dot<LegacyKind<T>>;
  t.gemm[uint32_t(T)] = gemm_legacy<T, RowU>;
}

}  // namespace

void register_avx2_legacy(KernelTable& t) {
  put<DType::Q8_0>(t);
  // Q8_0 decode is pure bandwidth, as at AVX-512: it streams faster from huge pages.
  t.prefer_resident[uint32_t(DType::Q8_0)] = true;
  put<DType::Q4_0, unpack_q4_0>(t);
  put<DType::Q5_0, unpack_q5_0>(t);
  put<DType::IQ4_NL>(t);
  put<DType::Q4_1, unpack_q4_1>(t);
  put<DType::Q5_1, unpack_q5_1>(t);
}

}  // namespace hearth::kernels
