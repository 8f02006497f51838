// ops/elementwise.h — norms, activations and softmax over rows of floats.
//
// Plain loops written to auto-vectorise; their rounding order follows ggml's where that changes
// results beyond float noise (e.g. RMSNorm's sum of squares in double).
#pragma once

#include <cmath>
#include <cstdint>

namespace hearth::ops {

// y = x / sqrt(mean(x²) + eps) * w   (w may be null: no weight)
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
// y = (x - mean) / sqrt(var + eps) * w + b
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps);

inline float silu(float x) {
  return x / (1.0f + std::exp(-x));
}
inline float sigmoid(float x) {
  return 1.0f / (1.0f + std::exp(-x));
}
// tanh-approximated GELU, as ggml computes it.
float gelu(float x);

// out[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, float* out, int64_t n);
// out[i] = gelu(gate[i]) * up[i]
void geglu(const float* gate, const float* up, float* out, int64_t n);

void add(const float* a, const float* b, float* out, int64_t n);  // out may alias a or b
void scale(float* x, float s, int64_t n);

// In-place softmax; returns nothing. -inf entries become 0.
void softmax(float* x, int64_t n);

}  // namespace hearth::ops
