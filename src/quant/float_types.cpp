// F32, F16 and BF16: plain element types. Their "quantize" is a rounding conversion. BF16
// weights are dotted with activations rounded to BF16, as ggml does. F16 weights are dotted with
// activations as llama.cpp does on the same CPU: rounded to F16 (ggml's CPU default), except on
// CPUs with AMX, whose ggml backend takes F16 weights with F32 activations. Measured: position-0
// logits then match llama.cpp exactly on an AMX Xeon, and to ~1e-5 instead of ~2e-3 on a Zen 4
// EPYC (no AMX), where F32 activations had let a 700-token Qwen 3.5 run drift to 1.8e-2.
#include "quant/float_types.h"

#include <cstring>

#include "base/cpu_features.h"
#include "base/fp16.h"
#include "quant/families.h"

namespace hearth {
namespace {

void dequant_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, size_t(n) * 4);
}
void quant_f32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, size_t(n) * 4);
}
float dot_f32(int64_t n, const void* x, const void* y) {
  const float* a = static_cast<const float*>(x);
  const float* b = static_cast<const float*>(y);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
  return float(s);
}

void dequant_f16(const void* src, float* dst, int64_t n) {
  const uint16_t* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(s[i]);
}
void quant_f16(const float* src, void* dst, int64_t n) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_fp16(src[i]);
}
float dot_f16_f32(int64_t n, const void* x, const void* y) {
  const uint16_t* a = static_cast<const uint16_t*>(x);
  const float* b = static_cast<const float*>(y);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(fp16_to_fp32(a[i])) * double(b[i]);
  return float(s);
}

void dequant_bf16(const void* src, float* dst, int64_t n) {
  const uint16_t* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(s[i]);
}
void quant_bf16(const float* src, void* dst, int64_t n) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_bf16(src[i]);
}
float dot_bf16(int64_t n, const void* x, const void* y) {
  const uint16_t* a = static_cast<const uint16_t*>(x);
  const uint16_t* b = static_cast<const uint16_t*>(y);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(bf16_to_fp32(a[i])) * double(bf16_to_fp32(b[i]));
  return float(s);
}

}  // namespace

float vec_dot_f16_f16(int64_t n, const void* x, const void* y) {
  const uint16_t* a = static_cast<const uint16_t*>(x);
  const uint16_t* b = static_cast<const uint16_t*>(y);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(fp16_to_fp32(a[i])) * double(fp16_to_fp32(b[i]));
  return float(s);
}

void register_float_types(Registry& r) {
  add_type(r, {DType::F32, "f32", 1, 4, false, true, DType::F32, dequant_f32, quant_f32, dot_f32});
  if (cpu_features().amx_tile)
    add_type(
        r, {DType::F16, "f16", 1, 2, false, true, DType::F32, dequant_f16, quant_f16, dot_f16_f32});
  else
    add_type(r, {DType::F16, "f16", 1, 2, false, true, DType::F16, dequant_f16, quant_f16,
                 vec_dot_f16_f16});
  add_type(
      r, {DType::BF16, "bf16", 1, 2, false, true, DType::BF16, dequant_bf16, quant_bf16, dot_bf16});
}

}  // namespace hearth
