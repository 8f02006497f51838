// qwen35moe: Qwen 3.5 / 3.6 mixture-of-experts hybrids (Qwen3.5-35B-A3B, -122B-A10B,
// -397B-A17B). The qwen35 hybrid stack with every FFN a softmax-routed top-k expert mixture
// (weights renormalised over the chosen ones) plus a shared SwiGLU expert scaled by
// sigmoid(ffn_gate_inp_shexp · x).
#include "models/config.h"
#include "models/loaders.h"
#include "models/qwen35.h"

namespace hearth::models {

Result<ArchSpec> describe_qwen35moe(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(ModelConfig cfg,
                          read_common_config(f, "qwen35moe", ops::RopeMode::kNeox));
  DecoderFlags flags;
  HEARTH_RETURN_IF_ERROR(read_qwen35_hybrid(f, "qwen35moe", cfg, flags));
  HEARTH_RETURN_IF_ERROR(read_experts(f, "qwen35moe", flags));
  HEARTH_ASSIGN_OR_RETURN(
      int64_t nsh, f.get_int_or("qwen35moe.expert_shared_feed_forward_length", flags.n_ff_exp));
  if (nsh <= 0)
    return corrupt("[model] qwen35moe: expert_shared_feed_forward_length " + std::to_string(nsh) +
                   " must be positive");
  flags.n_ff_shexp = nsh;
  flags.norm_topk = true;
  flags.shared_expert = true;
  flags.shared_expert_gate = true;
  return ArchSpec{std::move(cfg), std::move(flags)};
}

}  // namespace hearth::models
