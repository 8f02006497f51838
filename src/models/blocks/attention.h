// models/blocks/attention.h — multi-head attention with its variants:
//   out = Wo · attn(rope(norm_q(Wq·x + bq)), rope(norm_k(Wk·x + bk)), Wv·x + bv) [⊙ σ(gate)]
// GQA/MQA (n_head a multiple of n_head_kv), q/k RMSNorm, NoPE layers with query temperature,
// sliding-window (ring cache) and chunked attention, a sigmoid output gate from Wq's rows, V taken
// from the K projection, a weightless V norm, layers that read an earlier layer's KV cache,
// bidirectional attention for encoders, and one fused Q|K|V projection (attn_qkv) where a file
// has it instead of attn_q/k/v.
#pragma once

#include <optional>
#include <vector>

#include "models/blocks/step.h"
#include "models/cache.h"
#include "models/weights.h"
#include "ops/attention.h"
#include "ops/matmul.h"
#include "ops/rope.h"

namespace hearth::models {

struct AttentionShape {
  int64_t n_embd = 0, n_head = 0, n_head_kv = 0;
  int64_t head_k = 0, head_v = 0;  // per-head sizes of K (and Q) and of V
  float norm_eps = 1e-6f;
};

struct AttentionOptions {
  bool biases_required = false;    // q/k/v biases must be present (Qwen 2)
  bool qk_norm = false;            // per-head RMSNorm of q and k before RoPE (weights)
  bool qk_rms_after_rope = false;  // weightless RMSNorm of q and k after RoPE (Llama 4)
  bool v_norm = false;             // weightless RMSNorm of each V head (Gemma 4)
  bool gated = false;              // Wq rows are [query | gate] per head (Qwen 3.5)
  bool v_from_k = false;           // without attn_v, V is the K projection (Gemma 4)
  // RoPE: the table the forward pass passes in; null for NoPE layers.
  const ops::RopeParams* rope = nullptr;
  float temp_scale = 0, temp_floor = 8192;  // NoPE query temperature (Llama 4)
  float scale = 0;                          // 0: 1/sqrt(head_k)
  int window = 0;                           // sliding window; bidirectional: ±window / 2
  int chunk = 0;                            // chunked attention: only within pos / chunk
  int kv_source = -1;                       // read layer kv_source's cache (queries only)
  bool causal = true;                       // false: every token sees the whole run
};

// Buffers shared by every attention layer of a context, sized to the largest.
struct AttentionScratch {
  FloatScratch q, k, v, out, qg, gate, qkv;
  Scratch<uint8_t> enc_k, enc_v;  // encoders: the batch's K/V rows in the cache type
  ops::AttnScratch ops;
  int64_t max_head_k = 0, max_head_v = 0;
};

class Attention {
 public:
  // Loads blk.<il>.attn_* with their expected shapes and checks that the options fit the shapes
  // (so forward never writes past what reserve sized).
  Status load(WeightLoader& w, int il, const AttentionShape& shape, const AttentionOptions& opt);
  // What this layer keeps between calls (from the shapes alone: also used before loading).
  static LayerCache cache_for(const AttentionShape& shape, const AttentionOptions& opt);
  LayerCache cache() const { return cache_for(shape_, opt_); }
  void reserve(AttentionScratch& s, int64_t n_batch) const;
  void weights(std::vector<const ops::WeightMatrix*>& out) const;

  // xn: T rows of n_embd (the normed input); replaced by the attention output (T rows of n_embd)
  // after K/V of the batch were stored in `cache`. `cs`: the RoPE cos/sin rows of the batch
  // (n_rot floats per token) for opt.rope. Inside pool.run; ends with a barrier.
  void forward(const Step& s, int layer, CacheStore& cache, DType kv_type, const float* cs,
               float* xn, AttentionScratch& sc, ops::MatmulScratch& ms) const;

  const AttentionShape& shape() const { return shape_; }

 private:
  AttentionShape shape_;
  AttentionOptions opt_;
  ops::WeightMatrix wq_, wk_, wv_, wo_;
  std::optional<ops::WeightMatrix> wqkv_;  // fused Q|K|V rows (some encoders)
  std::optional<std::vector<float>> bqkv_;
  std::optional<std::vector<float>> bq_, bk_, bv_, bo_, q_norm_, k_norm_;
  bool v_is_k_ = false;
};

}  // namespace hearth::models
