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
#include "kernels/x86/v256.h"
#include "kernels/x86_avx2/gemm_cols.h"
#include "quant/blocks.h"

namespace hearth::kernels::avxvnni {
namespace {

struct V256Vnni : x86::V256Base {
  static I dot4(I acc, I w, I a) { return dpbusd(acc, w, a); }  // vpdpbusd widens by itself
};

// The level below's gemm of each type, for the batches this level leaves to it.
template <DType T>
GemmFn below = nullptr;

// The row unpacker of each type: AVX2's register unpack where it has one for the unsigned form
// (the K-quants; the scalar ones of unpack_rows.h cost Q2_K/Q3_K prefill half its speed).
template <DType T>
UnpackFn unpacker = nullptr;

// K % 256 == 0 is required by the column GEMM; 32-wide types may have a tail (below handles it).
template <DType T, int GROUP, x86::ActFormat F, bool kLanes>
void gemm(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A, size_t a_stride,
          int64_t M, float* Y, size_t ldy) {
  if (M < 8 || K % 256 != 0) return below<T>(K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
  const UnpackFn U = unpacker<T>;
  if constexpr (kLanes)  // Q8_0 in llama.cpp's order, as on every level
    x86::gemm_cols_q8_0_lanes<V256Vnni>(U, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
  else
    x86::gemm_cols<V256Vnni>(U, GROUP, F, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

template <DType T, UnpackFn U, int GROUP, x86::ActFormat F, bool kLanes = false>
void put(KernelTable& t) {
  below<T> = t.gemm[uint32_t(T)];
  unpacker<T> = avx2::row_unpacker(T) ? avx2::row_unpacker(T) : U;
  t.gemm[uint32_t(T)] = gemm<T, GROUP, F, kLanes>;
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
