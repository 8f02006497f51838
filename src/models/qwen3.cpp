// qwen3: Qwen 3 dense. The qwen2 decoder without biases and with a per-head RMSNorm on q and k
// (before RoPE); head size may differ from n_embd / n_head (`attention.key_length`).
#include "models/blocks/decoder.h"
#include "models/config.h"
#include "models/loaders.h"

namespace hearth::models {

Result<ArchSpec> describe_qwen3(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(ModelConfig cfg, read_common_config(f, "qwen3", ops::RopeMode::kNeox));
  DecoderFlags flags;
  flags.qk_norm = true;
  return ArchSpec{std::move(cfg), std::move(flags)};
}

}  // namespace hearth::models
