// qwen35: Qwen 3.5 / 3.6 dense hybrids (Qwen3.5-9B, -27B). Three of every four layers are Gated
// DeltaNet linear attention (a fixed-size recurrent state per sequence instead of a KV cache);
// the fourth is full attention with q/k RMS norms, partial interleaved M-RoPE (text positions on
// the t/h/w axes) and a sigmoid output gate from the q projection. Every layer: RMSNorm
// (attn_norm) before the mixer, RMSNorm (post_attention_norm) before a SwiGLU FFN.
#include "models/qwen35.h"

#include "models/config.h"
#include "models/loaders.h"

namespace hearth::models {

Status read_qwen35_hybrid(const gguf::GgufFile& f, const std::string& arch, ModelConfig& cfg,
                          DecoderFlags& flags) {
  const std::string p = arch + ".";
  HEARTH_ASSIGN_OR_RETURN(int64_t conv, f.get_int(p + "ssm.conv_kernel"));
  HEARTH_ASSIGN_OR_RETURN(int64_t d_state, f.get_int(p + "ssm.state_size"));
  HEARTH_ASSIGN_OR_RETURN(int64_t n_group, f.get_int(p + "ssm.group_count"));
  HEARTH_ASSIGN_OR_RETURN(int64_t dt_rank, f.get_int(p + "ssm.time_step_rank"));
  HEARTH_ASSIGN_OR_RETURN(int64_t inner, f.get_int(p + "ssm.inner_size"));
  if (conv < 1 || conv > 64 || d_state <= 0 || d_state > 1024 || n_group <= 0 || dt_rank <= 0 ||
      dt_rank > 4096 || dt_rank % n_group != 0 || inner != d_state * dt_rank)
    return corrupt("[model] " + arch + ": implausible ssm.conv_kernel " + std::to_string(conv) +
                   ", state_size " + std::to_string(d_state) + ", group_count " +
                   std::to_string(n_group) + ", time_step_rank " + std::to_string(dt_rank) +
                   " or inner_size " + std::to_string(inner) +
                   " (value heads must be a multiple of key heads, head sizes equal)");
  flags.ssm_conv = int(conv);
  flags.ssm_head_dim = int(d_state);
  flags.ssm_k_heads = int(n_group);
  flags.ssm_v_heads = int(dt_rank);
  flags.recurrent_layers.assign(size_t(cfg.n_layer), false);
  if (f.find(p + "attention.recurrent_layers")) {
    HEARTH_ASSIGN_OR_RETURN(auto rec, f.get_int_array(p + "attention.recurrent_layers"));
    if (int64_t(rec.size()) != cfg.n_layer)
      return corrupt("[model] " + p + "attention.recurrent_layers has " +
                     std::to_string(rec.size()) + " entries for " + std::to_string(cfg.n_layer) +
                     " layers");
    for (size_t i = 0; i < rec.size(); ++i) flags.recurrent_layers[i] = rec[i] != 0;
  } else {
    HEARTH_ASSIGN_OR_RETURN(int64_t every, f.get_int_or(p + "full_attention_interval", 4));
    if (every <= 0 || every > 4096)
      return corrupt("[model] " + p + "full_attention_interval = " + std::to_string(every));
    for (int64_t i = 0; i < cfg.n_layer; ++i) flags.recurrent_layers[size_t(i)] = (i + 1) % every;
  }
  if (f.find(p + "rope.dimension_sections")) {
    HEARTH_ASSIGN_OR_RETURN(auto sec, f.get_int_array(p + "rope.dimension_sections"));
    int sum = 0;
    for (size_t i = 0; i < sec.size() && i < 4; ++i) {
      if (sec[i] < 0 || sec[i] > 4096)
        return corrupt("[model] " + p + "rope.dimension_sections has " + std::to_string(sec[i]));
      cfg.rope.sections[i] = int(sec[i]);
      sum += int(sec[i]);
    }
    if (sum == 0) cfg.rope.sections[0] = cfg.rope.n_rot / 2;  // one axis
  }
  flags.qk_norm = true;
  flags.attn_output_gate = true;
  flags.ffn_norm_name = "post_attention_norm.weight";
  return Status::ok();
}

Result<ArchSpec> describe_qwen35(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(ModelConfig cfg, read_common_config(f, "qwen35", ops::RopeMode::kNeox));
  DecoderFlags flags;
  HEARTH_RETURN_IF_ERROR(read_qwen35_hybrid(f, "qwen35", cfg, flags));
  return ArchSpec{std::move(cfg), std::move(flags)};
}

}  // namespace hearth::models
