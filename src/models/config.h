// models/config.h — reading the hyperparameters most architectures share.
#pragma once

#include "models/blocks/moe.h"
#include "models/model.h"

namespace hearth::models {

// Fills the common ModelConfig fields from `<arch>.*` keys. `rope_mode` is the architecture's
// RoPE layout (a fact of the architecture, not stored in the file).
Result<ModelConfig> read_common_config(const gguf::GgufFile& f, const std::string& arch,
                                       ops::RopeMode rope_mode);

// Reads `<arch>.expert_count`, `expert_used_count` and `expert_feed_forward_length`, refusing
// implausible values with an error that names them.
Result<MoeOptions> read_experts(const gguf::GgufFile& f, const std::string& arch);

// A layer index list of `n` flags from a per-layer array key (bool or int entries), refusing a
// length other than n_layer.
Result<std::vector<bool>> read_layer_flags(const gguf::GgufFile& f, const std::string& key,
                                           int64_t n_layer);

}  // namespace hearth::models
