// kernels/x86_avxvnni/level.h — the AVX-VNNI level: the AVX2 table with prefill (8 or more
// activation rows) through the shared column GEMM (kernels/x86/gemm_cols.h) on 256-bit vpdpbusd:
// one instruction per 32 MACs where AVX2 needs vpmaddubsw + vpmaddwd + vpaddd, and every
// unpacked byte (up to 255) allowed, so no sign trick. Decode and small batches keep the AVX2
// kernels (memory-bound; vpdpbusd saves no bandwidth).
//
// Included by two files: vex.cpp (-mavxvnni: VEX vpdpbusd, Alder Lake and later, Zen 5) and
// evex.cpp (AVX-512 VL + VNNI: the EVEX form of the same instruction), so the level also runs,
// and is tested, on AVX-512 machines without AVX-VNNI (Zen 4). Each defines
// avxvnni::{anon}::dpbusd before including this header.
#pragma once

#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/unpack_rows.h"
#include "kernels/x86/gemm_cols.h"
#include "quant/blocks.h"

namespace hearth::kernels::avxvnni {
namespace {

struct V256Vnni {
  using I = __m256i;
  using F = __m256;
  static constexpr int kCols = 8, kRows = 4;  // 16 ymm registers
  static constexpr bool kSignedW = false;
  static constexpr bool kSum16 = false;  // vpdpbusd widens by itself
  static I mul16(I, I) { return zero(); }
  static I dot16(I acc, I, I) { return acc; }
  static I widen(I acc, I) { return acc; }
  static I load(const void* p) { return _mm256_load_si256(static_cast<const __m256i*>(p)); }
  static I zero() { return _mm256_setzero_si256(); }
  static I set1(int32_t x) { return _mm256_set1_epi32(x); }
  static I dot4(I acc, I w, I a) { return dpbusd(acc, w, a); }
  static F loadf(const float* p) { return _mm256_load_ps(p); }
  static void storef(float* p, F v) { _mm256_store_ps(p, v); }
  static F set1f(float x) { return _mm256_set1_ps(x); }
  static F zerof() { return _mm256_setzero_ps(); }
  static F cvt(I v) { return _mm256_cvtepi32_ps(v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F fmsub(F a, F b, F c) { return _mm256_fmsub_ps(a, b, c); }
};

// The level below's gemm of each type, for the batches this level leaves to it.
template <DType T>
GemmFn below = nullptr;

// K % 256 == 0 is required by the column GEMM; 32-wide types may have a tail (below handles it).
template <DType T, UnpackFn U, int GROUP, x86::ActFormat F, bool kLanes>
void gemm(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A, size_t a_stride,
          int64_t M, float* Y, size_t ldy) {
  if (M < 8 || K % 256 != 0) return below<T>(K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
  if constexpr (kLanes)  // Q8_0 in llama.cpp's order, as on every level
    x86::gemm_cols_q8_0_lanes<V256Vnni>(U, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
  else
    x86::gemm_cols<V256Vnni>(U, GROUP, F, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

template <DType T, UnpackFn U, int GROUP, x86::ActFormat F, bool kLanes = false>
void put(KernelTable& t) {
  below<T> = t.gemm[uint32_t(T)];
  t.gemm[uint32_t(T)] = gemm<T, U, GROUP, F, kLanes>;
}

void fill(KernelTable& t) {
  using x86::ActFormat;
  put<DType::Q4_K, unpack_q4_K, 32, ActFormat::kQ8K>(t);
  put<DType::Q5_K, unpack_q5_K, 32, ActFormat::kQ8K>(t);
  put<DType::Q6_K, unpack_q6_K, 16, ActFormat::kQ8K>(t);
  put<DType::Q3_K, unpack_q3_K, 16, ActFormat::kQ8K>(t);
  put<DType::Q2_K, unpack_q2_K, 16, ActFormat::kQ8K>(t);
  put<DType::IQ4_XS, unpack_iq4_xs, 32, ActFormat::kQ8K>(t);
  put<DType::Q8_0, unpack_q8_0, 32, ActFormat::kQ8_0, true>(t);
  put<DType::Q4_0, unpack_q4_0, 32, ActFormat::kQ8_0>(t);
  put<DType::Q5_0, unpack_q5_0, 32, ActFormat::kQ8_0>(t);
  put<DType::IQ4_NL, unpack_iq4_nl, 32, ActFormat::kQ8_0>(t);
  put<DType::Q4_1, unpack_q4_1, 32, ActFormat::kQ8_1>(t);
  put<DType::Q5_1, unpack_q5_1, 32, ActFormat::kQ8_1>(t);
}

}  // namespace
}  // namespace hearth::kernels::avxvnni
