#include "train/adamw.h"

#include <cmath>

namespace hearth::train {

float AdamW::step(ThreadPool& pool, ParamStore& store, const AdamWOptions& o, float lr) {
  const size_t n = store.total();
  std::vector<double> part(size_t(pool.size()), 0.0);
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    ThreadPool::split(int64_t(n), ith, nth, b, e, 16);
    double s = 0;
    for (int64_t i = b; i < e; ++i) s += double(store.grads[size_t(i)]) * store.grads[size_t(i)];
    part[size_t(ith)] = s;
  });
  double sq = 0;
  for (double s : part) sq += s;
  const float norm = float(std::sqrt(sq));
  const float clip = o.clip_norm > 0 && norm > o.clip_norm ? o.clip_norm / norm : 1.0f;
  ++t;
  const float bc1 = 1.0f - std::pow(o.beta1, float(t)), bc2 = 1.0f - std::pow(o.beta2, float(t));
  for (size_t pi = 0; pi < store.size(); ++pi) {
    const ParamInfo& p = store.info(pi);
    const float decay = p.decay ? o.weight_decay : 0.0f;
    float* w = store.value(pi);
    const float* g = store.grad(pi);
    float* m1 = m.data() + p.offset;
    float* v1 = v.data() + p.offset;
    pool.run([&](int ith, int nth) {
      int64_t b, e;
      ThreadPool::split(int64_t(p.count), ith, nth, b, e, 16);
      for (int64_t i = b; i < e; ++i) {
        const float gi = g[i] * clip;
        m1[i] = o.beta1 * m1[i] + (1 - o.beta1) * gi;
        v1[i] = o.beta2 * v1[i] + (1 - o.beta2) * gi * gi;
        const float mh = m1[i] / bc1, vh = v1[i] / bc2;
        w[i] -= lr * (mh / (std::sqrt(vh) + o.eps) + decay * w[i]);
      }
    });
  }
  return norm;
}

}  // namespace hearth::train
