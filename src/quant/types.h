// quant/types.h — tensor element types and the registry of their traits.
//
// Type ids are ggml's (they are written in GGUF files). Each supported type has one row in the
// registry (quant/registry.cpp) with its block geometry, its scalar *reference* quantize,
// dequantize and dot product, and the activation type it is dotted with (ggml's vec_dot_type).
// The references are canonical and never optimised; kernels/ holds the fast versions and is
// tested against these. Adding a type: docs/adding-a-quant-type.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hearth {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ4_NL = 20,
  IQ4_XS = 23,
  BF16 = 30,
};
constexpr int kMaxTypeId = 40;

struct TypeTraits {
  DType type;
  const char* name;  // ggml's name, e.g. "q4_K"
  int block_elems;   // elements per block (1 for float types)
  int block_bytes;   // bytes per block
  bool quantized;
  bool storable;       // may appear in a model file (Q8_K and Q8_1 are activation-only)
  DType vec_dot_type;  // format the activations are converted to before a dot product

  // Scalar references. n must be a multiple of block_elems.
  void (*dequantize_row)(const void* src, float* dst, int64_t n);
  // Plain (no importance matrix) quantization, bit-identical to llama.cpp's for the same input.
  void (*quantize_row)(const float* src, void* dst, int64_t n);
  // Dot of n elements: a row of this type with a row of vec_dot_type. Accumulation order is
  // free, so results may differ from kernels by float rounding only.
  float (*vec_dot)(int64_t n, const void* x, const void* y);
  // Activation formats whose llama.cpp CPU quantizer differs from the reference in rounding
  // details (Q8_0/Q8_1 on x86: 127/amax as the multiplier, ties to even); activations and
  // KV-cache rows use it so they round as llama.cpp's do. nullptr: quantize_row.
  void (*quantize_act)(const float* src, void* dst, int64_t n) = nullptr;
};

// The quantizer for activations of type tt (see TypeTraits::quantize_act).
inline auto act_quantizer(const TypeTraits& tt) {
  return tt.quantize_act ? tt.quantize_act : tt.quantize_row;
}

// nullptr if the id is unknown or not supported by hearth.
const TypeTraits* find_type(uint32_t id);
const TypeTraits& type_traits(DType t);                      // t must be supported
const TypeTraits* find_type_by_name(std::string_view name);  // case-insensitive
std::string supported_type_names();  // for error messages, from the registry

inline size_t row_bytes(const TypeTraits& tt, int64_t n) {
  return size_t(n / tt.block_elems) * size_t(tt.block_bytes);
}
inline size_t row_bytes(DType t, int64_t n) {
  return row_bytes(type_traits(t), n);
}

}  // namespace hearth
