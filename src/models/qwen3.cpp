// qwen3: Qwen 3 dense. The qwen2 decoder without biases and with a per-head RMSNorm on q and k
// (before RoPE); head size may differ from n_embd / n_head (`attention.key_length`).
#include "models/blocks/decoder.h"
#include "models/config.h"
#include "models/loaders.h"

namespace hearth::models {

Result<std::unique_ptr<Model>> load_qwen3(std::shared_ptr<gguf::GgufFile> f, ThreadPool& pool,
                                          const LoadOptions& opt) {
  HEARTH_ASSIGN_OR_RETURN(ModelConfig cfg, read_common_config(*f, "qwen3", ops::RopeMode::kNeox));
  DecoderFlags flags;
  flags.qk_norm = true;
  return load_dense_decoder(std::move(f), pool, opt, std::move(cfg), flags);
}

}  // namespace hearth::models
