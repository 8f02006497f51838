// train/params.h — the trainable tensors of a model, in one flat buffer with its gradients.
//
// One buffer for values and one for gradients (and the optimiser's moments beside them) make
// the optimiser step, gradient clipping and checkpointing loops over a single array.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hearth::train {

struct ParamInfo {
  std::string name;            // GGUF tensor name
  std::vector<int64_t> shape;  // outermost first, as GGUF stores it
  size_t offset = 0, count = 0;
  bool decay = false;  // weight decay applies (matrices, not norms)
};

class ParamStore {
 public:
  // Declares a tensor; call before finalize(). Returns its index.
  size_t add(std::string name, std::vector<int64_t> shape, bool decay);
  void finalize();  // allocates values (zero) and gradients

  size_t size() const { return info_.size(); }
  const ParamInfo& info(size_t i) const { return info_[i]; }
  const std::vector<ParamInfo>& infos() const { return info_; }
  int64_t find(const std::string& name) const;  // -1 if absent

  float* value(size_t i) { return values.data() + info_[i].offset; }
  const float* value(size_t i) const { return values.data() + info_[i].offset; }
  float* grad(size_t i) { return grads.data() + info_[i].offset; }
  void zero_grads();
  size_t total() const { return total_; }

  std::vector<float> values, grads;

 private:
  std::vector<ParamInfo> info_;
  size_t total_ = 0;
};

// Deterministic normal numbers (own generator, so a training recipe gives the same model on
// every machine and standard library).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed ? seed : 0x9E3779B97F4A7C15ull) {}
  uint64_t next();
  double uniform();  // [0, 1)
  double normal();

 private:
  uint64_t s_;
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace hearth::train
