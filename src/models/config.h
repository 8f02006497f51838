// models/config.h — reading the hyperparameters shared by decoder-only transformers.
#pragma once

#include "models/blocks/decoder.h"
#include "models/model.h"

namespace hearth::models {

// Fills the common ModelConfig fields from `<arch>.*` keys. `rope_mode` is the architecture's
// RoPE layout (a fact of the architecture, not stored in the file).
Result<ModelConfig> read_common_config(const gguf::GgufFile& f, const std::string& arch,
                                       ops::RopeMode rope_mode);

// Reads `<arch>.expert_count`, `expert_used_count` and `expert_feed_forward_length` into flags,
// refusing implausible values with an error that names them.
Status read_experts(const gguf::GgufFile& f, const std::string& arch, DecoderFlags& flags);

}  // namespace hearth::models
