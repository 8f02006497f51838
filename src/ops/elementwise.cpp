#include "ops/elementwise.h"

#include <algorithm>
#include <limits>

#include "base/fp16.h"
#include "kernels/kernels.h"

namespace hearth::ops {

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
  const float mean = float(sum / double(n));
  const float s = 1.0f / std::sqrt(mean + eps);
  if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * s) * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
  }
}

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float mean = float(sum / double(n));
  double var = 0;
  for (int64_t i = 0; i < n; ++i) var += double(x[i] - mean) * double(x[i] - mean);
  const float s = 1.0f / std::sqrt(float(var / double(n)) + eps);
  for (int64_t i = 0; i < n; ++i) {
    float v = (x[i] - mean) * s;
    if (w) v *= w[i];
    if (b) v += b[i];
    y[i] = v;
  }
}

namespace {
float gelu_exact(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  constexpr float kCoef = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoef * x * x)));
}

// ggml evaluates GELU through a table indexed by the F16 value of x, holding F16 results (and
// passes x >= 10 through, 0 for x <= -10); the same roundings here keep deep Gemma stacks on
// llama.cpp's numbers. The table is built once (65536 entries).
struct GeluTable {
  float v[65536];
  GeluTable() {
    for (uint32_t i = 0; i < 65536; ++i) v[i] = round_fp16(gelu_exact(fp16_to_fp32(uint16_t(i))));
  }
};
}  // namespace

float gelu(float x) {
  static const GeluTable table;
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return table.v[fp32_to_fp16(x)];
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  kernels::active().swiglu(gate, up, out, n);
}

void geglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gelu(gate[i]) * up[i];
}

void add(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void scale(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void softmax(float* x, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  if (mx == -std::numeric_limits<float>::infinity()) {
    std::fill(x, x + n, 0.0f);
    return;
  }
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(x[i] - mx);
    x[i] = e;
    sum += e;
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace hearth::ops
