// models/blocks/delta_net.h — the Gated DeltaNet mixer of Qwen 3.5 / 3.6 hybrid layers:
//   q, k, v = split(silu(causal_conv(Wqkv · x)));  z = Wz · x;  β = σ(Wβ · x);
//   g = softplus(Wα · x + dt_bias) · A;  o = delta_rule(l2(q)/√d, l2(k), v, g, β) per value head;
//   out = Wout · (RMSNorm(o) ⊙ silu(z))
// with a fixed-size recurrent state per sequence (conv history and one d×d matrix per value head)
// instead of a KV cache.
#pragma once

#include <vector>

#include "models/blocks/step.h"
#include "models/cache.h"
#include "models/weights.h"
#include "ops/delta_net.h"
#include "ops/matmul.h"

namespace hearth::models {

struct DeltaNetShape {
  int64_t n_embd = 0;
  int conv = 0;                  // causal conv taps (ssm.conv_kernel)
  int k_heads = 0, v_heads = 0;  // key/query heads (ssm.group_count), value heads (time_step_rank)
  int head_dim = 0;              // key and value head size (ssm.state_size)
  float norm_eps = 1e-6f;
  int64_t conv_dim() const { return (2 * int64_t(k_heads) + v_heads) * head_dim; }
  size_t conv_floats() const { return size_t(conv - 1) * size_t(conv_dim()); }
  size_t ssm_floats() const { return size_t(v_heads) * size_t(head_dim) * size_t(head_dim); }
};

struct DeltaNetScratch {
  FloatScratch qkv, conv_out, z, beta, alpha, out;
  std::vector<ops::DeltaChunkScratch> chunk;  // per thread
};

class DeltaNet {
 public:
  // The shape is checked here: value heads a multiple of key heads, sizes in range.
  static Status check(const DeltaNetShape& sh);
  static LayerCache cache_for(const DeltaNetShape& sh) {
    return LayerCache::recurrent(sh.conv_floats() + sh.ssm_floats());
  }
  Status load(WeightLoader& w, int il, const DeltaNetShape& sh);
  void reserve(DeltaNetScratch& s, int64_t n_batch, int n_threads) const;
  void weights(std::vector<const ops::WeightMatrix*>& out) const;
  // xn: T rows of n_embd (normed input), replaced by the mixer's output. A run starting at
  // position 0 starts from an empty state. Inside pool.run; ends with a barrier.
  void forward(const Step& s, int layer, CacheStore& cache, float* xn, DeltaNetScratch& sc,
               ops::MatmulScratch& ms) const;

 private:
  DeltaNetShape sh_;
  ops::WeightMatrix qkv_, z_, beta_, alpha_, out_;
  std::vector<float> conv_w_, dt_bias_, a_, norm_;
};

}  // namespace hearth::models
