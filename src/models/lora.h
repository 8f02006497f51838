// models/lora.h — LoRA adapters (llama.cpp's GGUF adapter format) bound to a model and applied per
// batch row.
//
// The format, its checks and its writer are in gguf/lora_format.h (no model needed there);
// this file binds an adapter to a loaded model and applies it:
//   y = W·x + Σ_adapters scale · B·(A·x);  token_embd: x_t += scale · B·A[token].
//
// In hearth the adapters of a model are loaded beside it (no reload of the base) and each batch
// row has its own scales (ForwardInput::lora): rows that use different adapters, or none, share
// one forward pass: the base matmul runs once for every row, then each adapter's low-rank update
// for the rows that use it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "gguf/gguf.h"
#include "gguf/lora_format.h"
#include "models/blocks/step.h"
#include "models/model.h"
#include "ops/matmul.h"

namespace hearth::models {

namespace lora_format = lora;
using lora::check_lora_file;
using lora::lora_scale;
using lora::lora_target_tensor;
using lora::LoraFileSpec;
using lora::LoraPairData;
using lora::LoraPairInfo;
using lora::write_lora_adapter;

// The names of the model's matrices (ops::WeightMatrix::name) that `targets` select, in the
// model's order (token_embd last, when selected).
Result<std::vector<std::string>> lora_target_names(const Model& model, ThreadPool& pool,
                                                   const std::vector<std::string>& targets);

class LoraAdapter {
 public:
  // One adapted matrix: A (rank, n_in) and B (n_out, rank) as weight views into the file.
  struct Pair {
    std::string base;
    ops::WeightMatrix a, b;
    int64_t rank = 0;
    float factor = 1;  // scale = user scale · factor (alpha / rank, or 1 without alpha)
  };
  // token_embd: A (n_vocab, rank), a row per token, and B (n_embd, rank).
  struct EmbdPair {
    const gguf::TensorInfo* a = nullptr;
    const gguf::TensorInfo* b = nullptr;
    int64_t rank = 0;
    float factor = 1;
  };

  // Opens `path` (mapped, not copied) and checks it against `model`: the keys, the architecture,
  // that every tensor is half of a pair, that each pair's base tensor exists and is a matrix hearth
  // adapts, and every shape. Errors name the file and the tensor.
  static Result<std::shared_ptr<const LoraAdapter>> load(const std::string& path,
                                                         const Model& model, ThreadPool& pool);
  // The same on a file already opened (tests).
  static Result<std::shared_ptr<const LoraAdapter>> bind(std::shared_ptr<gguf::GgufFile> f,
                                                         const Model& model, ThreadPool& pool);

  const std::string& path() const { return path_; }
  const std::string& name() const { return name_; }
  float alpha() const { return alpha_; }
  size_t file_bytes() const { return file_->file_size(); }
  const std::vector<Pair>& pairs() const { return pairs_; }
  const EmbdPair* embd() const { return embd_.a ? &embd_ : nullptr; }
  // The pair adapting W (a matrix of the model it was bound to), or null.
  const Pair* find(const ops::WeightMatrix* W) const {
    auto it = by_weight_.find(W);
    return it == by_weight_.end() ? nullptr : &pairs_[it->second];
  }
  // Largest dimensions over the pairs, to size scratch.
  int64_t max_n_in() const { return max_n_in_; }
  int64_t max_n_out() const { return max_n_out_; }
  int64_t max_rank() const { return max_rank_; }
  const gguf::GgufFile& file() const { return *file_; }
  // token_embd's A (n_vocab, rank) and B (n_embd, rank) as F32 (null without that pair).
  const float* embd_a() const { return embd_a_.empty() ? nullptr : embd_a_.data(); }
  const float* embd_b() const { return embd_b_.empty() ? nullptr : embd_b_.data(); }

 private:
  LoraAdapter() = default;
  std::shared_ptr<gguf::GgufFile> file_;
  std::string path_, name_;
  float alpha_ = 0;
  std::vector<Pair> pairs_;
  EmbdPair embd_;
  std::vector<float> embd_a_, embd_b_;
  std::unordered_map<const ops::WeightMatrix*, size_t> by_weight_;
  int64_t max_n_in_ = 0, max_n_out_ = 0, max_rank_ = 0;
};

// The scalar reference of one adapted product (tests): y[m] += scale · B·(A·x[m]) for M rows of
// x (n_in) and y (n_out), A and B dequantized to F32 and summed in double.
void lora_reference(const LoraAdapter::Pair& p, float scale, const float* x, int64_t M, float* y,
                    size_t ldy);

// A context's LoRA work for one batch: which rows use which adapter at which scale, and the
// scratch for the low-rank products. Set up before pool.run (begin), then called by every matmul
// of the batch through ops::MatmulHook.
class LoraRunner final : public ops::MatmulHook {
 public:
  // Binds a batch; false: no row uses any adapter (the hook is then left unset). Grows the
  // scratch only when an adapter larger than any seen before first appears.
  Result<bool> begin(const LoraBatch& lb, std::span<const BatchToken> batch,
                     const std::vector<int64_t>& out_rows, int n_seq, int n_batch);
  void after(ThreadPool& pool, int ith, int nth, const ops::WeightMatrix& W, const float* X,
             int64_t M, float* Y, size_t ldy) override;
  // token_embd adapters on this thread's rows tb..te of x (no barrier); `mul`: the embedding
  // scale the model applies to its rows (√n_embd for Gemma, else 1), applied to the update too.
  void embed(const Step& s, float* x, int64_t n_embd, float mul) const;

 private:
  struct Active {
    const LoraAdapter* ad = nullptr;
    // Rows of the batch (tokens) and of the output head (out_rows index) that use the adapter,
    // with their user scales; `all_*`: every row, in order (no gather needed).
    std::vector<int64_t> rows, head_rows;
    std::vector<float> scales, head_scales;
    bool all_rows = false, all_head = false;
    size_t index = 0;  // in the batch's LoraBatch::adapters
  };
  // rows: indices into X / Y (M rows); scales per listed row.
  void apply(ThreadPool& pool, int ith, int nth, const LoraAdapter::Pair& p, const float* X,
             float* Y, size_t ldy, std::span<const int64_t> rows, std::span<const float> scales,
             bool all);
  // The same for a few rows without the kernels' conversion barriers (decode).
  void apply_direct(ThreadPool& pool, int ith, int nth, const LoraAdapter::Pair& p, const float* X,
                    float* Y, size_t ldy, std::span<const int64_t> rows,
                    std::span<const float> scales);

  std::vector<Active> active_;
  size_t n_active_ = 0;
  int64_t T_ = 0, n_head_ = 0;
  std::span<const BatchToken> batch_;
  LoraBatch lb_;
  FloatScratch xg_, t_, d_;  // gathered input rows, A·x, B·(A·x)
  ops::MatmulScratch ms_;    // the adapters' own activations (no hook: never recursive)
};

}  // namespace hearth::models
