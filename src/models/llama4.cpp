// llama4: Llama 4 (Scout 17B-16E, Maverick 17B-128E). The llama decoder with: every 4th layer
// without RoPE (NoPE: full causal attention, queries scaled by the attention temperature
// log(floor((pos + 1) / 8192) + 1) * 0.1 + 1), the other layers with chunked attention (chunk
// 8192 unless `attention.sliding_window` is 0) and a weightless RMSNorm of q and k after RoPE
// (not for 128 experts); a MoE FFN every `interleave_moe_layer_step` layers: top-k experts by raw
// router logit, sigmoid(logit) scaling the expert's input, plus an always-on shared expert.
#include <algorithm>

#include "models/blocks/decoder.h"
#include "models/config.h"
#include "models/loaders.h"

namespace hearth::models {

Result<ArchSpec> describe_llama4(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(ModelConfig cfg, read_common_config(f, "llama4", ops::RopeMode::kNorm));
  DecoderFlags flags;
  HEARTH_RETURN_IF_ERROR(read_experts(f, "llama4", flags));
  HEARTH_ASSIGN_OR_RETURN(int64_t step, f.get_int_or("llama4.interleave_moe_layer_step", 1));
  if (step <= 0 || step > 4096)
    return corrupt("[model] llama4: implausible interleave_moe_layer_step " + std::to_string(step));
  flags.router_sigmoid = true;
  flags.weight_before_ffn = true;
  flags.shared_expert = true;
  flags.norm_topk = false;
  flags.moe_layers.resize(size_t(cfg.n_layer));
  flags.nope_layers.resize(size_t(cfg.n_layer));
  for (int64_t il = 0; il < cfg.n_layer; ++il) {
    flags.moe_layers[size_t(il)] = (il + 1) % step == 0;
    flags.nope_layers[size_t(il)] = (il + 1) % 4 == 0;
  }
  flags.qk_rms_after_rope = flags.n_expert != 128;
  HEARTH_ASSIGN_OR_RETURN(int64_t chunk, f.get_int_or("llama4.attention.sliding_window", 8192));
  flags.attn_chunk = int(std::clamp<int64_t>(chunk, 0, int64_t(1) << 30));
  HEARTH_ASSIGN_OR_RETURN(double temp, f.get_float_or("llama4.attention.temperature_scale", 0.1));
  flags.attn_temp_scale = float(temp);
  return ArchSpec{std::move(cfg), std::move(flags)};
}

}  // namespace hearth::models
