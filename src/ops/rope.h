// ops/rope.h — rotary position embeddings with linear, YaRN and per-frequency (Llama 3) scaling.
//
// NORM mode rotates adjacent pairs (x[2i], x[2i+1]); NEOX mode rotates (x[i], x[i + n_rot/2]).
// Only the first n_rot dims of each head rotate. Angles are built as ggml builds them
// (theta_i = pos · base^(-2i/n_rot) by repeated float multiplication, divided by an optional
// per-frequency factor), so results match llama.cpp to float rounding.
#pragma once

#include <cstdint>

namespace hearth::ops {

enum class RopeMode { kNorm, kNeox };

struct RopeParams {
  RopeMode mode = RopeMode::kNorm;
  int n_rot = 0;            // rotated dims per head
  float freq_base = 10000;  // %s.rope.freq_base
  float freq_scale = 1;     // 1 / %s.rope.scaling.factor for linear and YaRN
  float ext_factor = 0;     // YaRN extrapolation mix (1 when scaling type is yarn)
  float attn_factor = 1;    // magnitude scale
  float beta_fast = 32, beta_slow = 1;
  int n_ctx_orig = 0;                   // %s.rope.scaling.original_context_length
  const float* freq_factors = nullptr;  // rope_freqs.weight, n_rot/2 entries (Llama 3 scaling)
  // Multi-axis RoPE (Qwen 3.5's interleaved M-RoPE, %s.rope.dimension_sections): rotation pair i
  // belongs to axis t, h, w or e by sections; text tokens have position p on t, h and w and 0 on
  // e (as llama.cpp feeds them), so pairs of axis e do not rotate. All zero: one axis.
  int sections[4] = {0, 0, 0, 0};
};

// cos/sin for one position: cs[2i] = cos, cs[2i+1] = sin for i < n_rot/2.
void rope_cos_sin(const RopeParams& p, int64_t pos, float* cs);
// Rotates n_heads heads of head_dim floats (heads contiguous) with a cos/sin row.
void rope_apply(const RopeParams& p, const float* cs, float* x, int n_heads, int head_dim);

}  // namespace hearth::ops
