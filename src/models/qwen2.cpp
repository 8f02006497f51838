// qwen2: Qwen 2 / 2.5. The llama decoder with q/k/v biases and RoPE in NEOX layout
// (rotating dims i and i + n_rot/2); usually tied embeddings.
#include "models/blocks/decoder.h"
#include "models/config.h"
#include "models/loaders.h"

namespace hearth::models {

Result<std::unique_ptr<Model>> load_qwen2(std::shared_ptr<gguf::GgufFile> f, ThreadPool& pool,
                                          const LoadOptions& opt) {
  HEARTH_ASSIGN_OR_RETURN(ModelConfig cfg, read_common_config(*f, "qwen2", ops::RopeMode::kNeox));
  DecoderFlags flags;
  flags.qkv_bias_required = true;
  return load_dense_decoder(std::move(f), pool, opt, std::move(cfg), flags);
}

}  // namespace hearth::models
