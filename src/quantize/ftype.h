// quantize/ftype.h — llama.cpp's file types ("ftype", e.g. Q4_K_M) and the per-tensor type mix
// each implies, so `hearth quantize` produces the same tensor types as llama-quantize.
//
// The rules (which tensors get more bits, fallbacks for rows that do not fit a block size) are
// facts of llama.cpp's `llama_tensor_get_type` and are restated here in our own code. Only the
// ftypes whose tensor types hearth implements are listed; the list drives help and errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quant/types.h"

namespace hearth::quantize {

enum class FType : uint32_t {
  ALL_F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q8_0 = 7,
  Q5_0 = 8,
  Q5_1 = 9,
  Q2_K = 10,
  Q3_K_S = 11,
  Q3_K_M = 12,
  Q3_K_L = 13,
  Q4_K_S = 14,
  Q4_K_M = 15,
  Q5_K_S = 16,
  Q5_K_M = 17,
  Q6_K = 18,
  IQ4_NL = 25,
  IQ4_XS = 30,
  BF16 = 32,
};

struct FTypeInfo {
  FType ftype;
  const char* name;  // as llama-quantize spells it, e.g. "Q4_K_M"
  DType default_type;
};

const std::vector<FTypeInfo>& ftypes();
const FTypeInfo* find_ftype(std::string_view name);  // case-insensitive
std::string ftype_names();                           // "Q4_0, Q4_1, ..." for messages

// What the mix rules need to know about the model.
struct ModelFacts {
  std::string arch;
  int n_layer = 0;
  int n_expert = 0;  // 0 or 1 for dense models
  int n_gqa = 1;     // n_head / n_head_kv
  bool is_70b = false;
};

struct TensorDesc {
  std::string name;
  DType type;
  std::vector<int64_t> shape;  // outermost-first; shape.back() is the row length
};

// Chooses the output type of every tensor, in llama.cpp's processing order (layer, then name),
// which matters because some rules count tensors as they go. Returns types in `tensors` order.
std::vector<DType> plan_types(const ModelFacts& m, const std::vector<TensorDesc>& tensors,
                              FType ftype);

// The order llama.cpp processes and writes tensors in: by layer number ("blk.N."; others first),
// then by name. Returns indices into `names`.
std::vector<size_t> llama_tensor_order(const std::vector<std::string>& names);

bool tensor_allows_quantization(const TensorDesc& t);

}  // namespace hearth::quantize
