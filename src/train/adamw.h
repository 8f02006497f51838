// train/adamw.h — AdamW (decoupled weight decay) over a ParamStore, with global-norm clipping.
#pragma once

#include <vector>

#include "base/thread_pool.h"
#include "train/params.h"

namespace hearth::train {

struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.1f;  // only on tensors marked `decay`
  float clip_norm = 1.0f;     // 0: no clipping
};

class AdamW {
 public:
  explicit AdamW(const ParamStore& store) : m(store.total(), 0.0f), v(store.total(), 0.0f) {}
  // One update from the store's gradients at learning rate `lr`; returns the gradient norm
  // before clipping. Does not clear the gradients.
  float step(ThreadPool& pool, ParamStore& store, const AdamWOptions& o, float lr);
  long long t = 0;  // steps taken
  std::vector<float> m, v;
};

}  // namespace hearth::train
