// train/decoder.h — a trainable pre-norm decoder of the llama family (what `hearth train` makes
// and `hearth finetune` adapts):
//
//   x = token_embd[tokens]
//   every layer:  x += Wo · Attention(RoPE(Wq·n), RoPE(Wk·n), Wv·n),  n = rms(x) · attn_norm
//                 x += Wdown · (silu(Wgate·n) ⊙ Wup·n),               n = rms(x) · ffn_norm
//   logits = output · (rms(x) · output_norm)          (output = token_embd when tied)
//
// Fine-tuning bases may be llama, qwen2 (q/k/v biases, NEOX RoPE) or qwen3 (per-head RMS norms
// of q and k before a NEOX RoPE); their biases and norms stay frozen like the matrices.
//
// The forward pass keeps only each layer's input; the backward pass recomputes one layer at a
// time from it (activation checkpointing), so memory grows with the layer count by one residual
// row per token, not by every intermediate.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "gguf/gguf.h"
#include "ops/rope.h"
#include "train/layers.h"
#include "train/linear.h"
#include "train/params.h"

namespace hearth::train {

struct DecoderConfig {
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0;
  int64_t n_ctx = 0;  // the context the model is made for (GGUF context_length)
  float norm_eps = 1e-5f;
  float rope_base = 10000;
  bool tied_output = true;
  ops::RopeMode rope_mode = ops::RopeMode::kNorm;
  Status validate() const;
};

// One batch: n_seq sequences of n_tok tokens. targets[r] is the token to predict at row r (−1:
// none); weights[r] its loss weight (null: 1 where a target exists).
struct Batch {
  int64_t n_seq = 0, n_tok = 0;
  const int32_t* tokens = nullptr;
  const int32_t* targets = nullptr;
  const float* weights = nullptr;
};

// Which matrices of a base model get LoRA matrices, and their shape.
struct LoraOptions {
  int64_t rank = 16;
  float alpha = 32;
  // Any of q, k, v, o, gate, up, down, output.
  std::vector<std::string> targets = {"q", "k", "v", "o", "gate", "up", "down"};
  bool exact_backward = false;  // F32 transposed base copies instead of BF16 (tests)
  uint64_t seed = 1;
};

struct LossSum {
  double loss = 0;    // Σ w · cross-entropy
  double weight = 0;  // Σ w
};

class Decoder {
 public:
  // A model whose matrices are DenseLinear (trained from scratch), initialised from `seed`.
  static Result<std::unique_ptr<Decoder>> create(const DecoderConfig& cfg, uint64_t seed);

  // A base model from a GGUF file (architecture llama, qwen2 or qwen3), frozen in its own
  // quantization, with trainable LoRA matrices on the chosen matrices (B starts at zero: the
  // adapter starts as a no-op). The file must outlive the decoder.
  static Result<std::unique_ptr<Decoder>> with_lora(std::shared_ptr<gguf::GgufFile> base,
                                                    ThreadPool& pool, const LoraOptions& lo);
  // Writes the LoRA matrices as a llama.cpp GGUF adapter (general.type = adapter).
  Status export_adapter(const std::string& path) const;

  const DecoderConfig& config() const { return cfg_; }
  ParamStore& params() { return store_; }
  // Layers' intermediates are kept from the forward pass for the backward pass while they fit
  // in `bytes` (default 2 GiB); beyond it, only each layer's input is kept and the layer is
  // recomputed in the backward pass (activation checkpointing: one more forward pass of work).
  void set_activation_budget(size_t bytes) { budget_ = bytes; }
  bool checkpointing() const { return saved_.size() <= 1 && cfg_.n_layer > 1; }
  // Call after any change to the parameters (optimiser step, test perturbation).
  void params_changed(ThreadPool& pool);

  // Forward pass; with `backward`, adds ∂(Σ w·ce)/∂θ · grad_scale into the gradients.
  // logits_out (n_seq·n_tok × n_vocab), when given, receives the logits (forward only).
  Result<LossSum> run(ThreadPool& pool, const Batch& b, bool backward, float grad_scale = 1.0f,
                      float* logits_out = nullptr);

  // Writes a GGUF the inference engine (and llama.cpp) loads: architecture "llama", F32
  // tensors, tokenizer.* keys copied from `tokenizer_gguf` (a vocab-only or full model file),
  // its chat template replaced by `chat_template` when that is not empty.
  Status export_gguf(const std::string& path, const std::string& tokenizer_gguf,
                     const std::string& name, const std::string& chat_template = "") const;

 private:
  struct Layer {
    size_t attn_norm = 0, ffn_norm = 0;
    std::unique_ptr<Linear> wq, wk, wv, wo, wg, wu, wd;
    std::vector<float> bq, bk, bv, bo;  // a base's attention biases (empty: none)
    size_t q_norm = 0, k_norm = 0;      // qwen3's per-head q and k norms (frozen_, qk_norm_)
  };
  // One layer's intermediates, recomputed in the backward pass.
  struct Saved {
    std::vector<float> a, rinv1, q, k, v, p, o, x1, b, rinv2, gt, up, h;
    std::vector<float> q_pre, k_pre, rinv_q, rinv_k;  // q and k before their norms (qk_norm)
  };
  Decoder() = default;
  void reserve(int64_t n_seq, int64_t n_tok);
  Saved& saved(size_t il) { return saved_[saved_.size() == 1 ? 0 : il]; }
  void layer_forward(ThreadPool& pool, size_t il, const float* x_in, float* x_out,
                     const AttentionShape& as);
  void layer_backward(ThreadPool& pool, size_t il, const float* x_in, float* dx,
                      const AttentionShape& as);

  DecoderConfig cfg_;
  ParamStore store_;   // what trains
  ParamStore frozen_;  // a base model's norms (their gradients are computed and ignored)
  ParamStore* norms_ = &store_;
  std::shared_ptr<gguf::GgufFile> base_;
  const gguf::TensorInfo* frozen_embd_ = nullptr;  // a base model's token_embd, read by rows
  std::vector<float> rope_freqs_;
  std::string arch_ = "llama";
  LoraOptions lora_;
  struct LoraPair {
    std::string base;  // the adapted tensor's name
    size_t a, b;       // its LoRA matrices in store_
  };
  std::vector<LoraPair> lora_pairs_;
  size_t tok_embd_ = 0, out_norm_ = 0, output_ = 0;
  std::vector<Layer> layers_;
  std::unique_ptr<Linear> head_;
  RopeTables rope_;
  Workspace ws_;
  std::vector<Saved> saved_;  // one (checkpointing) or one per layer
  size_t budget_ = size_t(2) << 30;
  std::vector<std::vector<float>> attn_tmp_;
  // Per batch: the layers' inputs (n_layer + 1 of N × n_embd), final norm, logits, gradients.
  std::vector<float> xs_, fn_, rinv_out_, logits_, dx_, dtmp_, dh_, dgt_, dup_, db_, do_, dq_, dk_,
      dv_, dq_pre_, dk_pre_;
  bool qk_norm_ = false;  // qwen3: q and k RMS-normed per head before RoPE
  int64_t cap_rows_ = 0, cap_tok_ = 0;
};

}  // namespace hearth::train
