// models/loaders.h — internal: the entry point each architecture file provides.
#pragma once

#include <memory>

#include "models/blocks/decoder.h"
#include "models/model.h"

namespace hearth::models {

// What an architecture file reads from GGUF metadata: the config and the decoder flags. Weights
// are loaded afterwards by the shared decoder; memory estimates need only this.
struct ArchSpec {
  ModelConfig cfg;
  DecoderFlags flags;
};
using DescribeFn = Result<ArchSpec> (*)(const gguf::GgufFile&);

Result<ArchSpec> describe_llama(const gguf::GgufFile&);
Result<ArchSpec> describe_qwen2(const gguf::GgufFile&);
Result<ArchSpec> describe_qwen3(const gguf::GgufFile&);
Result<ArchSpec> describe_qwen3moe(const gguf::GgufFile&);
Result<ArchSpec> describe_gemma3(const gguf::GgufFile&);
Result<ArchSpec> describe_llama4(const gguf::GgufFile&);
Result<ArchSpec> describe_gemma4(const gguf::GgufFile&);
Result<ArchSpec> describe_qwen35(const gguf::GgufFile&);
Result<ArchSpec> describe_qwen35moe(const gguf::GgufFile&);

}  // namespace hearth::models
