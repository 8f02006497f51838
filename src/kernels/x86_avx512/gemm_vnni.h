// Column-vectorised int8 GEMM for prefill (M >= 8 activation rows).
//
// Activations are repacked once per call so one zmm holds 4 consecutive K bytes of 16 activation
// rows ("columns"); each weight row is unpacked per 256-element super-block to unsigned bytes
// with a float scale and offset per group of 16 or 32, and 4 consecutive weight bytes are
// broadcast against the activation vector by vpdpbusd — 64 MACs per instruction with no
// horizontal sums. A register tile of 4 weight rows x 16 columns reuses every load.
//   true weight = scale[g] * u - off[g]   =>   dot = sum_g dy_g * (scale[g] * sum(u*y) - off[g] *
//   sum(y))
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/unpack_rows.h"

namespace hearth::kernels::avx512 {

enum class ActFormat { kQ8K, kQ8_0, kQ8_1 };

// Y[m * ldy + r] for r < n_rows, m < M; group = 16 or 32 (elements per scale).
void gemm_vnni(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W, size_t w_stride,
               int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy);

// Q8_0 weights (unpacked by `unpack` as x + 128 with scale d) x Q8_0 activations, summed in
// llama.cpp's order so results equal its bit for bit (tile_q8_0_lanes in gemm_vnni.cpp).
void gemm_vnni_q8_0_lanes(UnpackFn unpack, int64_t K, const void* W, size_t w_stride,
                          int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y,
                          size_t ldy);

}  // namespace hearth::kernels::avx512
