// models/qwen35.h — internal: the Qwen 3.5 hybrid stack's settings, shared by qwen35 and
// qwen35moe.
#pragma once

#include <string>

#include "models/blocks/decoder.h"

namespace hearth::models {

// Reads `<arch>.ssm.*`, `full_attention_interval` (or `attention.recurrent_layers`) and the
// M-RoPE sections into cfg and flags.
Status read_qwen35_hybrid(const gguf::GgufFile& f, const std::string& arch, ModelConfig& cfg,
                          DecoderFlags& flags);

}  // namespace hearth::models
