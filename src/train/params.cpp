#include "train/params.h"

#include <algorithm>
#include <cmath>

namespace hearth::train {

size_t ParamStore::add(std::string name, std::vector<int64_t> shape, bool decay) {
  ParamInfo p;
  p.name = std::move(name);
  p.shape = std::move(shape);
  p.count = 1;
  for (int64_t d : p.shape) p.count *= size_t(d);
  // 64-byte aligned starts keep every tensor's rows vector-aligned.
  p.offset = (total_ + 15) / 16 * 16;
  p.decay = decay;
  total_ = p.offset + p.count;
  info_.push_back(std::move(p));
  return info_.size() - 1;
}

void ParamStore::finalize() {
  values.assign(total_, 0.0f);
  grads.assign(total_, 0.0f);
}

int64_t ParamStore::find(const std::string& name) const {
  for (size_t i = 0; i < info_.size(); ++i)
    if (info_[i].name == name) return int64_t(i);
  return -1;
}

void ParamStore::zero_grads() {
  std::fill(grads.begin(), grads.end(), 0.0f);
}

uint64_t Rng::next() {  // splitmix64
  uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double Rng::uniform() {
  return double(next() >> 11) * (1.0 / 9007199254740992.0);
}

double Rng::normal() {  // Box-Muller
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u = 0;
  while (u <= 1e-300) u = uniform();
  const double v = uniform(), r = std::sqrt(-2.0 * std::log(u)), a = 6.283185307179586 * v;
  spare_ = r * std::sin(a);
  has_spare_ = true;
  return r * std::cos(a);
}

}  // namespace hearth::train
