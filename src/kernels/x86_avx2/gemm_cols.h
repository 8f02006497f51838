// Column-vectorised int8 GEMM for prefill on AVX2 (M >= 8 activation rows): the AVX2 sibling of
// x86_avx512/gemm_vnni. Activations are repacked once per call to 16-bit pairs so one ymm holds
// 2 consecutive K values of 8 activation rows; weight rows are unpacked per super-block
// (kernels/unpack_rows.h) and widened to 16 bits once per call; vpmaddwd of a broadcast weight
// pair against the activation vector gives 8 columns x 2 MACs with no horizontal sums and no
// saturation (vpmaddubsw would overflow 16 bits on 8-bit weights).
//   true weight = scale[g] * u - off[g]   =>   dot = sum_g dy_g * (scale[g] * sum(u*y) - off[g] *
//   sum(y))
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/unpack_rows.h"

namespace hearth::kernels::avx2 {

enum class ActFormat { kQ8K, kQ8_0, kQ8_1 };

// Y[m * ldy + r] for r < n_rows, m < M; group = 16 or 32 (elements per scale); K % 256 == 0.
void gemm_cols(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W, size_t w_stride,
               int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy);

}  // namespace hearth::kernels::avx2
