#include "train/linear.h"

#include <algorithm>

#include "train/gemm.h"

namespace hearth::train {

void Workspace::reserve(size_t n_xt, size_t n_dyt, size_t n_tmp) {
  if (xt.size() < n_xt) xt.resize(n_xt);
  if (dyt.size() < n_dyt) dyt.resize(n_dyt);
  if (tmp.size() < n_tmp) tmp.resize(n_tmp);
}

void Linear::scratch(int64_t N, size_t& xt, size_t& dyt, size_t& tmp) const {
  xt = size_t(N) * n_in_;
  dyt = size_t(N) * n_out_;
  tmp = std::max(size_t(n_out_) * n_in_, size_t(N) * n_in_);
}

void add_into(ThreadPool& pool, float* dst, const float* src, size_t n) {
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    ThreadPool::split(int64_t(n), ith, nth, b, e, 16);
    for (int64_t i = b; i < e; ++i) dst[i] += src[i];
  });
}

DenseLinear::DenseLinear(ParamStore& store, size_t param, int64_t n_out, int64_t n_in)
    : store_(store), param_(param) {
  n_in_ = n_in;
  n_out_ = n_out;
}

void DenseLinear::forward(ThreadPool& pool, const float* X, int64_t N, float* Y, Workspace& ws) {
  (void)ws;
  gemm_nt(pool, N, n_out_, n_in_, X, size_t(n_in_), store_.value(param_), size_t(n_in_), Y,
          size_t(n_out_));
}

void DenseLinear::refresh(ThreadPool& pool) {
  wt_.resize(size_t(n_out_) * n_in_);
  transpose(pool, n_out_, n_in_, store_.value(param_), size_t(n_in_), wt_.data(), size_t(n_out_));
}

void DenseLinear::backward(ThreadPool& pool, const float* X, const float* dY, int64_t N, float* dX,
                           bool accumulate, Workspace& ws) {
  if (wt_.empty()) refresh(pool);
  // dW += dYᵀ · X, as (dYᵀ) · (Xᵀ)ᵀ.
  transpose(pool, N, n_out_, dY, size_t(n_out_), ws.dyt.data(), size_t(N));
  transpose(pool, N, n_in_, X, size_t(n_in_), ws.xt.data(), size_t(N));
  gemm_nt(pool, n_out_, n_in_, N, ws.dyt.data(), size_t(N), ws.xt.data(), size_t(N), ws.tmp.data(),
          size_t(n_in_));
  add_into(pool, store_.grad(param_), ws.tmp.data(), size_t(n_out_) * n_in_);
  if (!dX) return;
  // dX = dY · W = dY · (Wᵀ)ᵀ.
  float* out = accumulate ? ws.tmp.data() : dX;
  gemm_nt(pool, N, n_in_, n_out_, dY, size_t(n_out_), wt_.data(), size_t(n_out_), out,
          size_t(n_in_));
  if (accumulate) add_into(pool, dX, out, size_t(N) * n_in_);
}

}  // namespace hearth::train
