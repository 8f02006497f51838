// qwen3moe: Qwen 3 mixture of experts (Qwen3-30B-A3B, -235B-A22B). The qwen3 decoder (q/k norms,
// NeoX RoPE) with every FFN replaced by softmax-routed SwiGLU experts: n_expert_used of
// n_expert per token, weights renormalised over the chosen ones.
#include "models/blocks/decoder.h"
#include "models/config.h"
#include "models/loaders.h"

namespace hearth::models {

Result<ArchSpec> describe_qwen3moe(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(ModelConfig cfg, read_common_config(f, "qwen3moe", ops::RopeMode::kNeox));
  DecoderFlags flags;
  flags.qk_norm = true;
  HEARTH_RETURN_IF_ERROR(read_experts(f, "qwen3moe", flags));
  flags.norm_topk = true;
  return ArchSpec{std::move(cfg), std::move(flags)};
}

}  // namespace hearth::models
