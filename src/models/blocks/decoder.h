// models/blocks/decoder.h — the dense pre-norm decoder shared by llama, qwen2 and qwen3:
//   x += Wo · attn(rope(norm_q(Wq·rms(x) + bq)), rope(norm_k(Wk·rms(x) + bk)), Wv·rms(x) + bv)
//   x += Wdown · (silu(Wgate·rms(x)) ⊙ Wup·rms(x))     (or a mixture of such experts)
// Architecture files differ only in their flags (biases, q/k norm, RoPE layout, MoE).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "models/model.h"
#include "ops/matmul.h"

namespace hearth::models {

struct DecoderFlags {
  bool qkv_bias_required = false;  // qwen2: q/k/v projections carry biases
  bool qk_norm = false;            // qwen3: per-head RMSNorm on q and k before RoPE
  // Mixture of experts in place of the dense FFN (qwen3moe): a softmax router picks
  // n_expert_used of n_expert SwiGLU experts per token; their outputs are summed with the router
  // probabilities (renormalised over the chosen ones when norm_topk).
  int n_expert = 0;
  int n_expert_used = 0;
  int64_t n_ff_exp = 0;
  bool norm_topk = true;
};

Result<std::unique_ptr<Model>> load_dense_decoder(std::shared_ptr<gguf::GgufFile> file,
                                                  ThreadPool& pool, const LoadOptions& opt,
                                                  ModelConfig cfg, DecoderFlags flags);

}  // namespace hearth::models
