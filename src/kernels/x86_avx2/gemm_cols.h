// The column-vectorised int8 GEMM (kernels/x86/gemm_cols.h) on AVX2: one ymm holds 4 K bytes of
// 8 activation rows; vpmaddubsw + vpmaddwd against a broadcast weight quad stand in for
// vpdpbusd, so the unpacked weight bytes must be <= 127 (the 16-bit pair sums then cannot
// saturate): every type's unpacked form except Q8_0, IQ4_NL and IQ4_XS, which unpack to signed
// bytes (weight = scale * u, no offset) for the sign-trick variants below.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/unpack_rows.h"
#include "kernels/x86/act_format.h"
#include "quant/types.h"

namespace hearth::kernels::avx2 {

using ActFormat = x86::ActFormat;

// Y[m * ldy + r] for r < n_rows, m < M; group = 16 or 32 (elements per scale); K % 256 == 0.
// max_u: the largest unpacked byte (<= 127) of the type, which bounds the 16-bit partial sums.
void gemm_cols(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W, size_t w_stride,
               int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy,
               int max_u);

// Signed weight bytes (vpsignb twice more per step).
void gemm_cols_signed(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W,
                      size_t w_stride, int64_t n_rows, const void* A, size_t a_stride, int64_t M,
                      float* Y, size_t ldy);

// Q8_0 (unpacked as signed bytes) in llama.cpp's summation order (x86/gemm_cols.h).
void gemm_cols_q8_0_lanes(UnpackFn unpack, int64_t K, const void* W, size_t w_stride,
                          int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y,
                          size_t ldy);

// AVX2's register unpackers of the unsigned K-quants (Q2_K..Q6_K) in unpack_rows.h's form, for
// the levels above that run the column GEMM on other instructions; nullptr for other types.
UnpackFn row_unpacker(DType type);

}  // namespace hearth::kernels::avx2
