// gemma4: Gemma 4 text models (E2B, E4B, 31B, 26B-A4B), as llama.cpp implements them.
// Differences from gemma3: the sliding pattern is a per-layer bool array; sliding layers have
// their own head size (`attention.key_length_swa`), rotated dims (`rope.dimension_count_swa`)
// and RoPE base; global layers use `rope_freqs` (proportional RoPE); attention scale 1 (q and k
// are RMS-normed); V is RMS-normed without a weight; final logit softcap (default 30); an
// optional per-layer output scale. The MoE variant adds a GeGLU expert mixture beside each dense
// FFN (see DecoderFlags::moe_beside_dense). E2B/E4B add per-layer embeddings, let their last
// layers reuse earlier layers' KV caches, and may size the FFN per layer; a layer without attn_v
// uses its K projection as V.
#include "models/blocks/decoder.h"
#include "models/config.h"
#include "models/loaders.h"

namespace hearth::models {

Result<ArchSpec> describe_gemma4(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(ModelConfig cfg, read_common_config(f, "gemma4", ops::RopeMode::kNeox));
  HEARTH_ASSIGN_OR_RETURN(int64_t per_layer,
                          f.get_int_or("gemma4.embedding_length_per_layer_input", 0));
  HEARTH_ASSIGN_OR_RETURN(int64_t shared_kv, f.get_int_or("gemma4.attention.shared_kv_layers", 0));
  if (per_layer < 0 || per_layer > 65536 || shared_kv < 0 || shared_kv > cfg.n_layer - 2)
    return corrupt("[model] gemma4: embedding_length_per_layer_input " + std::to_string(per_layer) +
                   " or attention.shared_kv_layers " + std::to_string(shared_kv) +
                   " out of range for " + std::to_string(cfg.n_layer) + " layers");
  if (f.find("gemma4.attention.head_count_kv") &&
      f.find("gemma4.attention.head_count_kv")->type == gguf::ValueType::ARRAY)
    return unsupported("[model] gemma4: per-layer head_count_kv is not supported yet");
  DecoderFlags flags;
  flags.n_embd_per_layer = per_layer;
  flags.n_kv_shared = int(shared_kv);
  flags.v_from_k = true;
  flags.qk_norm = true;
  flags.v_norm = true;
  flags.gelu = true;
  flags.post_norms = true;
  flags.scale_embeddings = true;
  flags.attn_scale = 1.0f;
  HEARTH_ASSIGN_OR_RETURN(int64_t window, f.get_int_or("gemma4.attention.sliding_window", 0));
  if (window < 0 || window > (int64_t(1) << 30))
    return corrupt("[model] gemma4.attention.sliding_window = " + std::to_string(window));
  flags.sliding_window = int(window);
  if (f.find("gemma4.attention.sliding_window_pattern")) {
    HEARTH_ASSIGN_OR_RETURN(auto pattern,
                            f.get_int_array("gemma4.attention.sliding_window_pattern"));
    if (int64_t(pattern.size()) != cfg.n_layer)
      return corrupt("[model] gemma4.attention.sliding_window_pattern has " +
                     std::to_string(pattern.size()) + " entries for " +
                     std::to_string(cfg.n_layer) + " layers");
    for (int64_t x : pattern) flags.swa_layers.push_back(x != 0 && window > 0);
  }
  HEARTH_ASSIGN_OR_RETURN(flags.head_dim_swa,
                          f.get_int_or("gemma4.attention.key_length_swa", cfg.head_dim));
  HEARTH_ASSIGN_OR_RETURN(int64_t vswa,
                          f.get_int_or("gemma4.attention.value_length_swa", flags.head_dim_swa));
  if (vswa != flags.head_dim_swa || flags.head_dim_swa <= 0 || flags.head_dim_swa > 1024)
    return unsupported("[model] gemma4: sliding layers with different K and V head sizes");
  HEARTH_ASSIGN_OR_RETURN(int64_t rot_swa,
                          f.get_int_or("gemma4.rope.dimension_count_swa", flags.head_dim_swa));
  if (rot_swa <= 0 || rot_swa > flags.head_dim_swa || rot_swa % 2)
    return corrupt("[model] gemma4.rope.dimension_count_swa = " + std::to_string(rot_swa));
  flags.n_rot_swa = int(rot_swa);
  HEARTH_ASSIGN_OR_RETURN(double base_swa, f.get_float_or("gemma4.rope.freq_base_swa", 10000.0));
  flags.rope_base_swa = float(base_swa);
  HEARTH_ASSIGN_OR_RETURN(double cap, f.get_float_or("gemma4.final_logit_softcapping", 30.0));
  flags.final_softcap = float(cap);
  if (f.find("gemma4.expert_count")) {  // 26B-A4B: experts beside every dense FFN
    HEARTH_RETURN_IF_ERROR(read_experts(f, "gemma4", flags));
    flags.norm_topk = true;
    flags.moe_beside_dense = true;
  }
  return ArchSpec{std::move(cfg), std::move(flags)};
}

}  // namespace hearth::models
