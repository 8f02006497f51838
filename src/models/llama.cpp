// llama: Llama 2/3.x and Mistral-style models. Pre-norm decoder, SwiGLU FFN, GQA, RoPE in NORM
// layout (the converter permutes q/k rows so adjacent pairs rotate), optional `rope_freqs` for
// Llama 3 frequency scaling, optional attention biases, tied or untied output.
#include "models/blocks/decoder.h"
#include "models/config.h"
#include "models/loaders.h"

namespace hearth::models {

Result<std::unique_ptr<Model>> load_llama(std::shared_ptr<gguf::GgufFile> f, ThreadPool& pool,
                                          const LoadOptions& opt) {
  HEARTH_ASSIGN_OR_RETURN(ModelConfig cfg, read_common_config(*f, "llama", ops::RopeMode::kNorm));
  return load_dense_decoder(std::move(f), pool, opt, std::move(cfg), DecoderFlags{});
}

}  // namespace hearth::models
