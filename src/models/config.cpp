#include "models/config.h"

#include <algorithm>
#include <string>

namespace hearth::models {

Result<ModelConfig> read_common_config(const gguf::GgufFile& f, const std::string& arch,
                                       ops::RopeMode rope_mode) {
  ModelConfig c;
  c.arch = arch;
  const std::string p = arch + ".";
  auto name = f.get_string("general.name");
  if (name) c.name = *name;
  HEARTH_ASSIGN_OR_RETURN(c.n_embd, f.get_int(p + "embedding_length"));
  HEARTH_ASSIGN_OR_RETURN(c.n_layer, f.get_int(p + "block_count"));
  if (const auto* ff = f.find(p + "feed_forward_length");
      ff && ff->type == gguf::ValueType::ARRAY) {  // per layer (Gemma 4 E2B/E4B)
    HEARTH_ASSIGN_OR_RETURN(c.n_ff_layers, f.get_int_array(p + "feed_forward_length"));
    c.n_ff = 0;
    for (int64_t v : c.n_ff_layers) {
      if (v <= 0 || v > (1 << 22))
        return corrupt("[model] " + p + "feed_forward_length has an entry " + std::to_string(v));
      c.n_ff = std::max(c.n_ff, v);
    }
  } else {
    HEARTH_ASSIGN_OR_RETURN(c.n_ff, f.get_int(p + "feed_forward_length"));
  }
  HEARTH_ASSIGN_OR_RETURN(c.n_head, f.get_int(p + "attention.head_count"));
  HEARTH_ASSIGN_OR_RETURN(c.n_head_kv, f.get_int_or(p + "attention.head_count_kv", c.n_head));
  HEARTH_ASSIGN_OR_RETURN(c.n_ctx_train, f.get_int_or(p + "context_length", 2048));
  if (!c.n_ff_layers.empty() && int64_t(c.n_ff_layers.size()) != c.n_layer)
    return corrupt("[model] " + p + "feed_forward_length has " +
                   std::to_string(c.n_ff_layers.size()) + " entries for " +
                   std::to_string(c.n_layer) + " layers");
  if (c.n_embd <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.n_head_kv <= 0 || c.n_ff <= 0 ||
      c.n_embd > (1 << 20) || c.n_layer > 4096 || c.n_head > 4096 || c.n_ff > (1 << 22))
    return corrupt("[model] implausible hyperparameters for " + arch + ": n_embd=" +
                   std::to_string(c.n_embd) + " n_layer=" + std::to_string(c.n_layer) +
                   " n_head=" + std::to_string(c.n_head) + " n_ff=" + std::to_string(c.n_ff));
  if (c.n_head % c.n_head_kv != 0)
    return corrupt("[model] " + p + "attention.head_count (" + std::to_string(c.n_head) +
                   ") is not a multiple of head_count_kv (" + std::to_string(c.n_head_kv) + ")");
  HEARTH_ASSIGN_OR_RETURN(c.head_dim,
                          f.get_int_or(p + "attention.key_length", c.n_embd / c.n_head));
  HEARTH_ASSIGN_OR_RETURN(c.head_dim_v, f.get_int_or(p + "attention.value_length", c.head_dim));
  if (c.head_dim <= 0 || c.head_dim_v <= 0 || c.head_dim > 1024 || c.head_dim_v > 1024)
    return corrupt("[model] implausible head size for " + arch);
  HEARTH_ASSIGN_OR_RETURN(double eps, f.get_float_or(p + "attention.layer_norm_rms_epsilon", 1e-5));
  c.norm_eps = float(eps);
  HEARTH_ASSIGN_OR_RETURN(c.causal, f.get_bool_or(p + "attention.causal", true));
  HEARTH_ASSIGN_OR_RETURN(int64_t pooling, f.get_int_or(p + "pooling_type", 0));
  if (pooling < 0 || pooling > 4)
    return unsupported("[model] " + p + "pooling_type " + std::to_string(pooling) +
                       " is not supported (0 none, 1 mean, 2 cls, 3 last, 4 rank)");
  c.pooling = Pooling(pooling);

  auto& r = c.rope;
  r.mode = rope_mode;
  HEARTH_ASSIGN_OR_RETURN(int64_t n_rot, f.get_int_or(p + "rope.dimension_count", c.head_dim));
  if (n_rot <= 0 || n_rot > c.head_dim || n_rot % 2)
    return corrupt("[model] " + p + "rope.dimension_count = " + std::to_string(n_rot) +
                   " must be even and at most the head size " + std::to_string(c.head_dim));
  r.n_rot = int(n_rot);
  HEARTH_ASSIGN_OR_RETURN(double base, f.get_float_or(p + "rope.freq_base", 10000.0));
  r.freq_base = float(base);
  std::string scaling = "none";
  if (f.find(p + "rope.scaling.type")) {
    HEARTH_ASSIGN_OR_RETURN(scaling, f.get_string(p + "rope.scaling.type"));
  }
  HEARTH_ASSIGN_OR_RETURN(double factor, f.get_float_or(p + "rope.scaling.factor", 0.0));
  if (factor == 0.0) {  // older files: rope.scale_linear
    HEARTH_ASSIGN_OR_RETURN(factor, f.get_float_or(p + "rope.scale_linear", 0.0));
    if (factor != 0.0 && scaling == "none") scaling = "linear";
  }
  HEARTH_ASSIGN_OR_RETURN(int64_t n_orig,
                          f.get_int_or(p + "rope.scaling.original_context_length", c.n_ctx_train));
  r.n_ctx_orig = int(n_orig);
  if (scaling == "none" || factor == 0.0 || factor == 1.0) {
    r.freq_scale = 1.0f;
  } else if (scaling == "linear" || scaling == "yarn") {
    r.freq_scale = float(1.0 / factor);
  } else {
    return unsupported("[model] " + p + "rope.scaling.type '" + scaling +
                       "' is not supported (none, linear, yarn)");
  }
  if (scaling == "yarn") {
    HEARTH_ASSIGN_OR_RETURN(double ext, f.get_float_or(p + "rope.scaling.yarn_ext_factor", 1.0));
    HEARTH_ASSIGN_OR_RETURN(double attn, f.get_float_or(p + "rope.scaling.yarn_attn_factor", 1.0));
    HEARTH_ASSIGN_OR_RETURN(double bf, f.get_float_or(p + "rope.scaling.yarn_beta_fast", 32.0));
    HEARTH_ASSIGN_OR_RETURN(double bs, f.get_float_or(p + "rope.scaling.yarn_beta_slow", 1.0));
    r.ext_factor = float(ext);
    r.attn_factor = float(attn);
    r.beta_fast = float(bf);
    r.beta_slow = float(bs);
  }
  return c;
}

Result<MoeOptions> read_experts(const gguf::GgufFile& f, const std::string& arch) {
  const std::string p = arch + ".";
  HEARTH_ASSIGN_OR_RETURN(int64_t ne, f.get_int(p + "expert_count"));
  HEARTH_ASSIGN_OR_RETURN(int64_t nu, f.get_int(p + "expert_used_count"));
  HEARTH_ASSIGN_OR_RETURN(int64_t nff, f.get_int(p + "expert_feed_forward_length"));
  if (ne <= 0 || nu <= 0 || nu > ne || ne > 1024 || nff <= 0 || nff > (1 << 22))
    return corrupt("[model] " + arch + ": expert_count " + std::to_string(ne) +
                   ", expert_used_count " + std::to_string(nu) +
                   " and expert_feed_forward_length " + std::to_string(nff) +
                   " must be positive with used <= count <= 1024");
  MoeOptions m;
  m.n_expert = int(ne);
  m.n_used = int(nu);
  m.n_ff_exp = nff;
  return m;
}

Result<std::vector<bool>> read_layer_flags(const gguf::GgufFile& f, const std::string& key,
                                           int64_t n_layer) {
  HEARTH_ASSIGN_OR_RETURN(auto v, f.get_int_array(key));
  if (int64_t(v.size()) != n_layer)
    return corrupt("[model] " + key + " has " + std::to_string(v.size()) + " entries for " +
                   std::to_string(n_layer) + " layers");
  std::vector<bool> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = v[i] != 0;
  return out;
}

}  // namespace hearth::models
