// kernels/generic — portable kernels built on the scalar references of quant/.
#pragma once

#include "kernels/kernels.h"

namespace hearth::kernels {

void fill_generic(KernelTable& t);
// KernelTable::swiglu's scalar reference (std::exp); the vector levels' tails use it too.
void swiglu_generic(const float* gate, const float* up, float* out, int64_t n);
// gemm built from any vec_dot (used by generic and as a fallback shape in ISA tables).
void gemm_from_vec_dot(VecDotFn dot, int64_t K, const void* W, size_t w_stride, int64_t n_rows,
                       const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy);

}  // namespace hearth::kernels
