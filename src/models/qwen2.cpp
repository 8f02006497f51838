// qwen2: Qwen 2 / 2.5. The llama decoder with q/k/v biases and RoPE in NEOX layout
// (rotating dims i and i + n_rot/2); usually tied embeddings.
#include "models/blocks/decoder.h"
#include "models/config.h"
#include "models/loaders.h"

namespace hearth::models {

Result<ArchSpec> describe_qwen2(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(ModelConfig cfg, read_common_config(f, "qwen2", ops::RopeMode::kNeox));
  DecoderFlags flags;
  flags.qkv_bias_required = true;
  return ArchSpec{std::move(cfg), std::move(flags)};
}

}  // namespace hearth::models
