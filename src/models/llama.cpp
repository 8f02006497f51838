// llama: Llama 2/3.x and Mistral-style models. Pre-norm decoder, SwiGLU FFN, GQA, RoPE in NORM
// layout (the converter permutes q/k rows so adjacent pairs rotate), optional `rope_freqs` for
// Llama 3 frequency scaling, optional attention biases, tied or untied output.
#include "models/blocks/decoder.h"
#include "models/config.h"
#include "models/loaders.h"

namespace hearth::models {

Result<ArchSpec> describe_llama(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(ModelConfig cfg, read_common_config(f, "llama", ops::RopeMode::kNorm));
  return ArchSpec{std::move(cfg), DecoderFlags{}};
}

}  // namespace hearth::models
