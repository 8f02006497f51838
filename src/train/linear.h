// train/linear.h — the matrix layers of a trainable model: Y = X · Wᵀ with a backward pass.
//
// DenseLinear trains its own F32 weight (training from scratch). The fine-tuner's frozen,
// quantized base with LoRA matrices beside it is another Linear, so the model code is the same
// for both.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/thread_pool.h"
#include "ops/matmul.h"
#include "train/params.h"

namespace hearth::train {

// Scratch shared by every layer of one model (sized for the largest).
struct Workspace {
  std::vector<float> xt, dyt, tmp;  // transposed input, transposed output gradient, products
  void reserve(size_t n_xt, size_t n_dyt, size_t n_tmp);
};

class Linear {
 public:
  virtual ~Linear() = default;
  int64_t n_in() const { return n_in_; }
  int64_t n_out() const { return n_out_; }
  // Y (N × n_out) = X (N × n_in) · Wᵀ.
  virtual void forward(ThreadPool& pool, const float* X, int64_t N, float* Y, Workspace& ws) = 0;
  // From the forward input X and dY = ∂L/∂Y: adds the parameter gradients, and writes dX (or
  // adds it into dX when `accumulate`). dX may be null when nothing needs it.
  virtual void backward(ThreadPool& pool, const float* X, const float* dY, int64_t N, float* dX,
                        bool accumulate, Workspace& ws) = 0;
  // After the optimiser changed parameters (cached transposes are rebuilt).
  virtual void refresh(ThreadPool& pool) { (void)pool; }
  // Scratch floats this layer needs for N rows: {xt, dyt, tmp}.
  virtual void scratch(int64_t N, size_t& xt, size_t& dyt, size_t& tmp) const;

 protected:
  int64_t n_in_ = 0, n_out_ = 0;
};

// A trainable F32 weight W (n_out × n_in) held in a ParamStore.
class DenseLinear final : public Linear {
 public:
  DenseLinear(ParamStore& store, size_t param, int64_t n_out, int64_t n_in);
  void forward(ThreadPool& pool, const float* X, int64_t N, float* Y, Workspace& ws) override;
  void backward(ThreadPool& pool, const float* X, const float* dY, int64_t N, float* dX,
                bool accumulate, Workspace& ws) override;
  void refresh(ThreadPool& pool) override;

 private:
  ParamStore& store_;
  size_t param_;
  std::vector<float> wt_;  // Wᵀ (n_in × n_out), for dX = dY · W
};

// A frozen base weight (any GGUF type, read in place through the inference kernels) with an
// optional trainable low-rank update: Y = X · Wᵀ + scale · (X · Aᵀ) · Bᵀ, A (rank × n_in) and
// B (n_out × rank) in a ParamStore. The backward pass needs dY · W, which the quantized layout
// cannot give by rows; a transposed copy of W is made once at construction, in BF16 (half the
// memory of F32, and the BF16 kernels' speed) or, with `exact`, in F32 (tests).
class FrozenLinear final : public Linear {
 public:
  struct Lora {
    ParamStore* store = nullptr;
    size_t a = 0, b = 0;  // parameter indices
    int64_t rank = 0;
    float scale = 1;  // alpha / rank
  };
  FrozenLinear(ThreadPool& pool, const ops::WeightMatrix& w, bool exact);
  void set_lora(const Lora& l) { lora_ = l; }
  const Lora& lora() const { return lora_; }
  void forward(ThreadPool& pool, const float* X, int64_t N, float* Y, Workspace& ws) override;
  void backward(ThreadPool& pool, const float* X, const float* dY, int64_t N, float* dX,
                bool accumulate, Workspace& ws) override;
  void refresh(ThreadPool& pool) override;
  void scratch(int64_t N, size_t& xt, size_t& dyt, size_t& tmp) const override;

 private:
  ops::WeightMatrix w_, wt_;
  std::unique_ptr<uint8_t[]> wt_data_;
  ops::MatmulScratch ms_;
  Lora lora_;
  std::vector<float> u_, du_, at_, bt_;  // X·Aᵀ, its gradient, Aᵀ, Bᵀ
  std::vector<float> ut_, la_;           // backward scratch: uᵀ (and duᵀ), du·A
};

// dst[i] += src[i] over the pool.
void add_into(ThreadPool& pool, float* dst, const float* src, size_t n);

}  // namespace hearth::train
