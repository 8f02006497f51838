// The column-vectorised int8 GEMM (kernels/x86/gemm_cols.h) on AVX-512 VNNI: one zmm holds 4 K
// bytes of 16 activation rows, vpdpbusd against a broadcast weight quad, register tiles of 8
// weight rows x 16 columns.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/unpack_rows.h"
#include "kernels/x86/act_format.h"

namespace hearth::kernels::avx512 {

using ActFormat = x86::ActFormat;

// Y[m * ldy + r] for r < n_rows, m < M; group = 16 or 32 (elements per scale); K % 256 == 0.
void gemm_vnni(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W, size_t w_stride,
               int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy);

// Q8_0 weights (unpacked by `unpack` as x + 128 with scale d) x Q8_0 activations, summed in
// llama.cpp's order so results equal its bit for bit (tile_q8_0_lanes in x86/gemm_cols.h).
void gemm_vnni_q8_0_lanes(UnpackFn unpack, int64_t K, const void* W, size_t w_stride,
                          int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y,
                          size_t ldy);

}  // namespace hearth::kernels::avx512
