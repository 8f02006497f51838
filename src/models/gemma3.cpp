// gemma3: Gemma 3 text models. The dense decoder with Gemma's differences: embeddings scaled by
// sqrt(n_embd), q/k RMSNorm, RMSNorm after attention and after the FFN, GeGLU (tanh GELU), and
// sliding-window layers (window `attention.sliding_window`) interleaved with global ones — layer
// il slides iff il % P < P - 1 for the pattern P (`attention.sliding_window_pattern`, default 6:
// five local, one global). Sliding layers use RoPE base `rope.freq_base_swa` (10000) without
// scaling; global layers the file's base and scaling. Attention scale 1/sqrt(head_dim), except
// 27B (62 layers): 1/sqrt(n_embd / n_head). A final logit softcap applies if the file sets one.
#include <cmath>

#include "models/blocks/decoder.h"
#include "models/config.h"
#include "models/loaders.h"

namespace hearth::models {

Result<ArchSpec> describe_gemma3(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(ModelConfig cfg, read_common_config(f, "gemma3", ops::RopeMode::kNeox));
  DecoderFlags flags;
  flags.qk_norm = true;
  flags.gelu = true;
  flags.post_norms = true;
  flags.scale_embeddings = true;
  HEARTH_ASSIGN_OR_RETURN(int64_t window, f.get_int_or("gemma3.attention.sliding_window", 0));
  if (window < 0 || window > (int64_t(1) << 30))
    return corrupt("[model] gemma3.attention.sliding_window = " + std::to_string(window));
  flags.sliding_window = int(window);
  if (window > 0) {
    HEARTH_ASSIGN_OR_RETURN(int64_t period,
                            f.get_int_or("gemma3.attention.sliding_window_pattern", 6));
    if (period <= 0 || period > 4096)
      return corrupt("[model] gemma3.attention.sliding_window_pattern = " + std::to_string(period));
    flags.swa_layers.resize(size_t(cfg.n_layer));
    for (int64_t il = 0; il < cfg.n_layer; ++il)
      flags.swa_layers[size_t(il)] = il % period < period - 1;
  }
  HEARTH_ASSIGN_OR_RETURN(double base_swa, f.get_float_or("gemma3.rope.freq_base_swa", 10000.0));
  flags.rope_base_swa = float(base_swa);
  flags.attn_scale = cfg.n_layer == 62 ? 1.0f / std::sqrt(float(cfg.n_embd / cfg.n_head))
                                       : 1.0f / std::sqrt(float(cfg.head_dim));
  HEARTH_ASSIGN_OR_RETURN(double cap, f.get_float_or("gemma3.final_logit_softcapping", 0.0));
  flags.final_softcap = float(cap);
  return ArchSpec{std::move(cfg), std::move(flags)};
}

}  // namespace hearth::models
