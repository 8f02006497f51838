// models/config.h — reading the hyperparameters shared by decoder-only transformers.
#pragma once

#include "models/model.h"

namespace hearth::models {

// Fills the common ModelConfig fields from `<arch>.*` keys. `rope_mode` is the architecture's
// RoPE layout (a fact of the architecture, not stored in the file).
Result<ModelConfig> read_common_config(const gguf::GgufFile& f, const std::string& arch,
                                       ops::RopeMode rope_mode);

}  // namespace hearth::models
