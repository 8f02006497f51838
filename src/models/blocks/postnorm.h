// models/blocks/postnorm.h — the post-norm residual of BERT-family encoders.
#pragma once

#include <cstdint>
#include <vector>

#include "models/blocks/step.h"
#include "ops/elementwise.h"

namespace hearth::models {

// x = LayerNorm(x + y) (weight w, bias b) over this thread's rows of the step.
inline void add_layer_norm(const Step& s, float* x, const float* y, const std::vector<float>& w,
                           const std::vector<float>& b, int64_t E, float eps) {
  for (int64_t t = s.tb; t < s.te; ++t) {
    ops::add(x + t * E, y + t * E, x + t * E, E);
    ops::layer_norm(x + t * E, w.data(), b.data(), x + t * E, E, eps);
  }
}

}  // namespace hearth::models
