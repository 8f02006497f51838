#include "train/linear.h"

#include <algorithm>

#include "base/fp16.h"
#include "quant/types.h"
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
  if (n < 32768 || pool.size() == 1) {
    for (size_t i = 0; i < n; ++i) dst[i] += src[i];
    return;
  }
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

namespace hearth::train {

FrozenLinear::FrozenLinear(ThreadPool& pool, const ops::WeightMatrix& w, bool exact) : w_(w) {
  n_in_ = w.n_in();
  n_out_ = w.n_out();
  const DType t = exact ? DType::F32 : DType::BF16;
  const size_t esize = exact ? 4 : 2, bytes = size_t(n_in_) * size_t(n_out_) * esize;
  wt_data_.reset(new uint8_t[bytes]);  // every byte is written below: no zero-fill
  const TypeTraits& tt = type_traits(w.type());
  // Each thread dequantizes bands of kB rows and writes them as kB-wide column strips of Wᵀ,
  // so both the reads and the writes stay in cache lines.
  constexpr int64_t kB = 32;
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    ThreadPool::split(n_out_, ith, nth, b, e, kB);
    std::vector<float> band(static_cast<size_t>(kB * n_in_));
    for (int64_t r0 = b; r0 < e; r0 += kB) {
      const int64_t nr = std::min(kB, e - r0);
      for (int64_t r = 0; r < nr; ++r)
        tt.dequantize_row(w.row(r0 + r), band.data() + r * n_in_, n_in_);
      for (int64_t i = 0; i < n_in_; ++i) {
        if (exact) {
          float* dst = reinterpret_cast<float*>(wt_data_.get()) + size_t(i) * n_out_ + r0;
          for (int64_t r = 0; r < nr; ++r) dst[r] = band[size_t(r * n_in_ + i)];
        } else {
          uint16_t* dst = reinterpret_cast<uint16_t*>(wt_data_.get()) + size_t(i) * n_out_ + r0;
          for (int64_t r = 0; r < nr; ++r) dst[r] = fp32_to_bf16(band[size_t(r * n_in_ + i)]);
        }
      }
    }
  });
  auto m = ops::WeightMatrix::make("transposed", t, n_in_, n_out_, wt_data_.get(), bytes);
  if (m) wt_ = *m;  // F32 and BF16 rows of any length are always valid
}

void FrozenLinear::scratch(int64_t N, size_t& xt, size_t& dyt, size_t& tmp) const {
  xt = size_t(N) * n_in_;
  dyt = size_t(N) * n_out_;
  tmp = size_t(std::max(N, lora_.rank)) * size_t(std::max(n_in_, n_out_));
}

void FrozenLinear::refresh(ThreadPool& pool) {
  if (!lora_.store) return;
  const int64_t r = lora_.rank;
  at_.resize(size_t(n_in_ * r));
  bt_.resize(size_t(n_out_ * r));
  transpose(pool, r, n_in_, lora_.store->value(lora_.a), size_t(n_in_), at_.data(), size_t(r));
  transpose(pool, n_out_, r, lora_.store->value(lora_.b), size_t(r), bt_.data(), size_t(n_out_));
}

void FrozenLinear::forward(ThreadPool& pool, const float* X, int64_t N, float* Y, Workspace& ws) {
  ops::matmul(pool, w_, X, N, Y, ms_);
  if (!lora_.store) return;
  const int64_t r = lora_.rank;
  u_.resize(size_t(N * r));
  gemm_nt(pool, N, r, n_in_, X, size_t(n_in_), lora_.store->value(lora_.a), size_t(n_in_),
          u_.data(), size_t(r));
  float* t = ws.tmp.data();
  gemm_nt(pool, N, n_out_, r, u_.data(), size_t(r), lora_.store->value(lora_.b), size_t(r), t,
          size_t(n_out_));
  const float s = lora_.scale;
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    ThreadPool::split(N * n_out_, ith, nth, b, e, 16);
    for (int64_t i = b; i < e; ++i) Y[i] += s * t[i];
  });
}

void FrozenLinear::backward(ThreadPool& pool, const float* X, const float* dY, int64_t N, float* dX,
                            bool accumulate, Workspace& ws) {
  float* t = ws.tmp.data();
  if (lora_.store) {
    const int64_t r = lora_.rank;
    const float s = lora_.scale;
    if (at_.empty()) refresh(pool);
    // u = X·Aᵀ again (the forward value was overwritten by later layers' forward passes).
    u_.resize(size_t(N * r));
    du_.resize(size_t(N * r));
    gemm_nt(pool, N, r, n_in_, X, size_t(n_in_), lora_.store->value(lora_.a), size_t(n_in_),
            u_.data(), size_t(r));
    // dB += s · dYᵀ · u ; du = s · dY · B ; dA += duᵀ · X.
    transpose(pool, N, n_out_, dY, size_t(n_out_), ws.dyt.data(), size_t(N));
    ut_.resize(size_t(N * r));
    transpose(pool, N, r, u_.data(), size_t(r), ut_.data(), size_t(N));
    gemm_nt(pool, n_out_, r, N, ws.dyt.data(), size_t(N), ut_.data(), size_t(N), t, size_t(r));
    float* gb = lora_.store->grad(lora_.b);
    for (int64_t i = 0; i < n_out_ * r; ++i) gb[i] += s * t[i];
    gemm_nt(pool, N, r, n_out_, dY, size_t(n_out_), bt_.data(), size_t(n_out_), du_.data(),
            size_t(r));
    for (auto& v : du_) v *= s;
    transpose(pool, N, r, du_.data(), size_t(r), ut_.data(), size_t(N));
    transpose(pool, N, n_in_, X, size_t(n_in_), ws.xt.data(), size_t(N));
    gemm_nt(pool, r, n_in_, N, ut_.data(), size_t(N), ws.xt.data(), size_t(N), t, size_t(n_in_));
    add_into(pool, lora_.store->grad(lora_.a), t, size_t(r * n_in_));
  }
  if (!dX) return;
  // dX = dY · W through the transposed copy, plus du · A for the adapter.
  float* out = accumulate ? t : dX;
  ops::matmul(pool, wt_, dY, N, out, ms_);
  if (lora_.store) {
    const int64_t r = lora_.rank;
    la_.resize(size_t(N * n_in_));
    gemm_nt(pool, N, n_in_, r, du_.data(), size_t(r), at_.data(), size_t(r), la_.data(),
            size_t(n_in_));
    add_into(pool, out, la_.data(), size_t(N * n_in_));
  }
  if (accumulate) add_into(pool, dX, out, size_t(N) * n_in_);
}

}  // namespace hearth::train
