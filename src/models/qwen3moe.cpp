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
  HEARTH_ASSIGN_OR_RETURN(int64_t ne, f.get_int("qwen3moe.expert_count"));
  HEARTH_ASSIGN_OR_RETURN(int64_t nu, f.get_int("qwen3moe.expert_used_count"));
  HEARTH_ASSIGN_OR_RETURN(int64_t nff, f.get_int("qwen3moe.expert_feed_forward_length"));
  if (ne <= 0 || nu <= 0 || nu > ne || ne > 1024 || nff <= 0)
    return corrupt("[model] qwen3moe: expert_count " + std::to_string(ne) + ", expert_used_count " +
                   std::to_string(nu) + " and expert_feed_forward_length " + std::to_string(nff) +
                   " must be positive with used <= count <= 1024");
  flags.n_expert = int(ne);
  flags.n_expert_used = int(nu);
  flags.n_ff_exp = nff;
  flags.norm_topk = true;
  return ArchSpec{std::move(cfg), std::move(flags)};
}

}  // namespace hearth::models
