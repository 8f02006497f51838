// train/decoder.h — a trainable pre-norm decoder of the llama family (what `hearth train` makes
// and `hearth finetune` adapts):
//
//   x = token_embd[tokens]
//   every layer:  x += Wo · Attention(RoPE(Wq·n), RoPE(Wk·n), Wv·n),  n = rms(x) · attn_norm
//                 x += Wdown · (silu(Wgate·n) ⊙ Wup·n),               n = rms(x) · ffn_norm
//   logits = output · (rms(x) · output_norm)          (output = token_embd when tied)
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

struct LossSum {
  double loss = 0;    // Σ w · cross-entropy
  double weight = 0;  // Σ w
};

class Decoder {
 public:
  // A model whose matrices are DenseLinear (trained from scratch), initialised from `seed`.
  static Result<std::unique_ptr<Decoder>> create(const DecoderConfig& cfg, uint64_t seed);

  const DecoderConfig& config() const { return cfg_; }
  ParamStore& params() { return store_; }
  // Call after any change to the parameters (optimiser step, test perturbation).
  void params_changed(ThreadPool& pool);

  // Forward pass; with `backward`, adds ∂(Σ w·ce)/∂θ · grad_scale into the gradients.
  // logits_out (n_seq·n_tok × n_vocab), when given, receives the logits (forward only).
  Result<LossSum> run(ThreadPool& pool, const Batch& b, bool backward, float grad_scale = 1.0f,
                      float* logits_out = nullptr);

  // Writes a GGUF the inference engine (and llama.cpp) loads: architecture "llama", F32
  // tensors, tokenizer.* keys copied from `tokenizer_gguf` (a vocab-only or full model file).
  Status export_gguf(const std::string& path, const std::string& tokenizer_gguf,
                     const std::string& name) const;

 private:
  struct Layer {
    size_t attn_norm = 0, ffn_norm = 0;
    std::unique_ptr<Linear> wq, wk, wv, wo, wg, wu, wd;
  };
  // One layer's intermediates, recomputed in the backward pass.
  struct Saved {
    std::vector<float> a, rinv1, q, k, v, p, o, x1, b, rinv2, gt, up, h;
  };
  Decoder() = default;
  void reserve(int64_t n_seq, int64_t n_tok);
  void layer_forward(ThreadPool& pool, size_t il, const float* x_in, float* x_out,
                     const AttentionShape& as);
  void layer_backward(ThreadPool& pool, size_t il, const float* x_in, float* dx,
                      const AttentionShape& as);

  DecoderConfig cfg_;
  ParamStore store_;
  size_t tok_embd_ = 0, out_norm_ = 0, output_ = 0;
  std::vector<Layer> layers_;
  std::unique_ptr<Linear> head_;
  RopeTables rope_;
  Workspace ws_;
  Saved s_;
  std::vector<std::vector<float>> attn_tmp_;
  // Per batch: the layers' inputs (n_layer + 1 of N × n_embd), final norm, logits, gradients.
  std::vector<float> xs_, fn_, rinv_out_, logits_, dx_, dtmp_, dh_, dgt_, dup_, db_, do_, dq_, dk_,
      dv_;
  int64_t cap_rows_ = 0, cap_tok_ = 0;
};

}  // namespace hearth::train
