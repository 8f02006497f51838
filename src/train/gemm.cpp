#include "train/gemm.h"

#include <algorithm>

#include "kernels/kernels.h"
#include "quant/types.h"

namespace hearth::train {

void gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, size_t lda, const float* B,
             size_t ldb, float* C, size_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t m = 0; m < M; ++m) std::fill(C + m * ldc, C + m * ldc + N, 0.0f);
    return;
  }
  // The kernel's "weights" are B's rows and its "activations" A's rows (F32 x F32).
  kernels::active().gemm[uint32_t(DType::F32)](K, B, ldb * sizeof(float), N, A, lda * sizeof(float),
                                               M, C, ldc);
}

void gemm_nt(ThreadPool& pool, int64_t M, int64_t N, int64_t K, const float* A, size_t lda,
             const float* B, size_t ldb, float* C, size_t ldc) {
  // Waking the pool costs more than a small product takes.
  if (double(M) * double(N) * double(K) < 65536.0 || pool.size() == 1)
    return gemm_nt(M, N, K, A, lda, B, ldb, C, ldc);
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    // Split the wider side, so small products still use every thread.
    if (N >= M) {
      ThreadPool::split(N, ith, nth, b, e, 16);
      if (b < e) gemm_nt(M, e - b, K, A, lda, B + b * ldb, ldb, C + b, ldc);
    } else {
      ThreadPool::split(M, ith, nth, b, e, 4);
      if (b < e) gemm_nt(e - b, N, K, A + b * lda, lda, B, ldb, C + b * ldc, ldc);
    }
  });
}

void transpose(int64_t rows, int64_t cols, const float* src, size_t src_ld, float* dst,
               size_t dst_ld) {
  constexpr int64_t kT = 32;  // cache blocks
  for (int64_t r0 = 0; r0 < rows; r0 += kT)
    for (int64_t c0 = 0; c0 < cols; c0 += kT) {
      const int64_t r1 = std::min(rows, r0 + kT), c1 = std::min(cols, c0 + kT);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) dst[c * dst_ld + r] = src[r * src_ld + c];
    }
}

void transpose(ThreadPool& pool, int64_t rows, int64_t cols, const float* src, size_t src_ld,
               float* dst, size_t dst_ld) {
  if (rows * cols < 32768 || pool.size() == 1)
    return transpose(rows, cols, src, src_ld, dst, dst_ld);
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    ThreadPool::split(cols, ith, nth, b, e, 32);
    if (b < e) transpose(rows, e - b, src + b, src_ld, dst + b * dst_ld, dst_ld);
  });
}

}  // namespace hearth::train
