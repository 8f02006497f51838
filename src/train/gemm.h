// train/gemm.h — the float matrix products training needs, on the active kernel table.
//
// Every product of a forward or backward pass is written as C = A · Bᵀ ("NT": both operands
// row-major with K contiguous), which is exactly the inference engine's F32 gemm kernel; the other
// shapes (A · B, Aᵀ · B) go through an explicit transpose first. So training uses the same
// ISA-dispatched, reference-tested kernels as inference.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/thread_pool.h"

namespace hearth::train {

// C[m * ldc + n] = Σ_k A[m * lda + k] · B[n * ldb + k] for m < M, n < N (single thread).
void gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, size_t lda, const float* B,
             size_t ldb, float* C, size_t ldc);

// The same, with the N rows of B split over the pool's threads (call outside pool.run).
void gemm_nt(ThreadPool& pool, int64_t M, int64_t N, int64_t K, const float* A, size_t lda,
             const float* B, size_t ldb, float* C, size_t ldc);

// dst (cols × rows, ld rows) = srcᵀ for src (rows × cols, ld src_ld). Single thread.
void transpose(int64_t rows, int64_t cols, const float* src, size_t src_ld, float* dst,
               size_t dst_ld);
// The same over the pool (rows of dst split over threads).
void transpose(ThreadPool& pool, int64_t rows, int64_t cols, const float* src, size_t src_ld,
               float* dst, size_t dst_ld);

}  // namespace hearth::train
