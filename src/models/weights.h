// models/weights.h — typed, checked access to a model's tensors by name.
//
// Every tensor an architecture needs is fetched through here with its expected shape, so a
// missing or mis-shaped tensor is an error that names it (never a crash in a kernel).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "ops/matmul.h"

namespace hearth::models {

class WeightLoader {
 public:
  WeightLoader(const gguf::GgufFile& f, ThreadPool& pool, bool repack, ops::Placement placement,
               std::string arch)
      : f_(f), pool_(pool), repack_(repack), placement_(placement), arch_(std::move(arch)) {}

  // A 2-D weight of shape (n_out, n_in).
  Result<ops::WeightMatrix> matrix(const std::string& name, int64_t n_out, int64_t n_in);
  // A 3-D expert tensor of shape (n_expert, n_out, n_in): one matrix view per expert.
  Result<std::vector<ops::WeightMatrix>> experts(const std::string& name, int64_t n_expert,
                                                 int64_t n_out, int64_t n_in);
  // A 3-D tensor of shape (n_expert, parts * n_out, n_in) whose rows stack `parts` matrices
  // per expert (e.g. ffn_gate_up_exps: gate rows, then up rows): result[p][e].
  Result<std::vector<std::vector<ops::WeightMatrix>>> experts_split(const std::string& name,
                                                                    int64_t n_expert, int parts,
                                                                    int64_t n_out, int64_t n_in);
  // nullopt if absent; an error if present with the wrong shape.
  Result<std::optional<ops::WeightMatrix>> optional_matrix(const std::string& name, int64_t n_out,
                                                           int64_t n_in);
  // A 1-D tensor of n floats (any float type), copied to F32 (norms, biases: small).
  Result<std::vector<float>> vector(const std::string& name, int64_t n);
  Result<std::optional<std::vector<float>>> optional_vector(const std::string& name, int64_t n);
  // The raw tensor with a shape check (embedding tables read row by row).
  Result<const gguf::TensorInfo*> tensor(const std::string& name, std::vector<int64_t> shape);

  HugeArena& arena() { return arena_; }
  const gguf::GgufFile& file() const { return f_; }
  bool has(const std::string& name) const { return f_.find_tensor(name) != nullptr; }

 private:
  Status check_shape(const gguf::TensorInfo& t, const std::vector<int64_t>& shape) const;
  const gguf::GgufFile& f_;
  ThreadPool& pool_;
  bool repack_;
  ops::Placement placement_;
  HugeArena arena_;
  std::string arch_;
};

std::string blk(int layer, const char* suffix);  // "blk.<layer>.<suffix>"
std::string shape_str(const std::vector<int64_t>& s);

// Dequantizes row `r` of a (rows, n) tensor of any supported type into out[n].
void dequantize_row_of(const gguf::TensorInfo& t, int64_t r, float* out);

}  // namespace hearth::models
