// models/blocks/decoder.h — the pre-norm decoder every architecture file configures:
//   x += Wo · attn(rope(norm_q(Wq·rms(x) + bq)), rope(norm_k(Wk·rms(x) + bk)), Wv·rms(x) + bv)
//   x += Wdown · (silu(Wgate·rms(x)) ⊙ Wup·rms(x))     (or a mixture of such experts)
// Architecture files differ only in their flags (biases, q/k norm, RoPE layout, MoE, sliding
// windows, and for hybrids which layers are Gated DeltaNet layers instead of attention).
#pragma once

#include <memory>
#include <optional>
#include <string>
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
  int64_t n_ff_shexp = 0;  // shared expert FFN size (0: n_ff_exp)
  // Gemma 4 MoE (26B-A4B): every layer keeps its dense GeGLU FFN (ffn_norm, post_ffw_norm_1) and
  // adds a GeGLU expert mixture beside it (pre_ffw_norm_2, post_ffw_norm_2), routed from
  // rms(x) / sqrt(n_embd) ⊙ ffn_gate_inp.scale; the sum goes through post_ffw_norm.
  bool moe_beside_dense = false;
  // Gemma 4 E2B/E4B: per-layer embeddings of this width (0: none): a per-token input for every
  // layer from per_layer_token_embd and a projection of the embeddings, gated into each layer's
  // output (inp_gate → GELU ⊙ input → proj → post_norm, added to x).
  int64_t n_embd_per_layer = 0;
  // Gemma 4: the last n layers compute only queries and attend over the KV cache of the last
  // earlier layer of their kind (sliding: n_layer - n - 2, global: n_layer - n - 1).
  int n_kv_shared = 0;
  bool v_from_k = false;            // Gemma 4: a layer without attn_v uses its K projection as V
  bool shared_expert_gate = false;  // Qwen 3.5 MoE: × sigmoid(ffn_gate_inp_shexp · x)
  // Qwen 3.5 hybrids: layers marked recurrent are Gated DeltaNet linear-attention layers
  // (attn_qkv → causal conv + SiLU → q, k, v; attn_gate → z; ssm_beta, ssm_alpha, ssm_dt, ssm_a →
  // β and decay; the delta rule per value head; RMSNorm(ssm_norm) ⊙ silu(z); ssm_out); the others
  // are attention whose q projection also yields a per-head output gate (attn_output_gate).
  std::vector<bool> recurrent_layers;
  int ssm_conv = 0;               // causal conv taps
  int ssm_k_heads = 0;            // key (and query) heads
  int ssm_v_heads = 0;            // value heads (a multiple of the key heads)
  int ssm_head_dim = 0;           // key and value head size
  bool attn_output_gate = false;  // attention output × sigmoid(gate), gate from Wq's rows
  std::string ffn_norm_name = "ffn_norm.weight";  // Qwen 3.5: post_attention_norm.weight
};

// KV cache and recurrent state bytes for one sequence of p.n_ctx positions.
size_t decoder_state_bytes(const ModelConfig& cfg, const DecoderFlags& flags,
                           const ContextParams& p);

Result<std::unique_ptr<Model>> load_dense_decoder(std::shared_ptr<gguf::GgufFile> file,
                                                  ThreadPool& pool, const LoadOptions& opt,
                                                  ModelConfig cfg, DecoderFlags flags);

}  // namespace hearth::models
