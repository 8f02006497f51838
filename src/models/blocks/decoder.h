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
  // Gemma: GeGLU (tanh GELU) instead of SwiGLU, RMSNorms after attention and after the FFN
  // (post_attention_norm, post_ffw_norm), embeddings scaled by sqrt(n_embd), sliding-window
  // layers with their own RoPE base, an attention scale and a final logit softcap.
  bool gelu = false;
  bool post_norms = false;
  bool scale_embeddings = false;
  int sliding_window = 0;          // tokens a sliding layer attends to (0: none)
  std::vector<bool> swa_layers;    // per layer: sliding (empty: none)
  int64_t head_dim_swa = 0;        // Gemma 4: sliding layers' head size (0: as the others)
  int n_rot_swa = 0;               // and their rotated dims (0: as the others)
  bool v_norm = false;             // Gemma 4: weightless RMSNorm of each V head
  float rope_base_swa = 10000.0f;  // sliding layers' RoPE base (no scaling)
  float attn_scale = 0;            // 0: 1/sqrt(head_dim)
  float final_softcap = 0;         // 0: off; else logits = c * tanh(logits / c)
  // Llama 4: NoPE layers (no RoPE, full attention, query temperature tuning), chunked attention
  // and a weightless RMSNorm of q and k after RoPE on the other layers, MoE only on some layers
  // with a sigmoid router whose weight scales the expert's input, plus a shared expert.
  std::vector<bool> nope_layers;
  std::vector<bool> moe_layers;  // empty: every layer when n_expert > 0
  bool qk_rms_after_rope = false;
  int attn_chunk = 0;
  float attn_temp_scale = 0, attn_temp_floor = 8192;
  bool router_sigmoid = false;
  bool weight_before_ffn = false;
  bool shared_expert = false;
};

Result<std::unique_ptr<Model>> load_dense_decoder(std::shared_ptr<gguf::GgufFile> file,
                                                  ThreadPool& pool, const LoadOptions& opt,
                                                  ModelConfig cfg, DecoderFlags flags);

}  // namespace hearth::models
