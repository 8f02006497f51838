// quant/legacy.h — scalar references of the 32-element types (oracles for kernels/).
#pragma once

#include <cstdint>

namespace hearth {

void quantize_row_q8_0_ref(const float* x, void* y, int64_t n);
void quantize_act_q8_0(const float* x, void* y, int64_t n);
void dequantize_row_q8_0(const void* x, float* y, int64_t n);
float vec_dot_q8_0_q8_0(int64_t n, const void* x, const void* y);
void quantize_row_q8_1_ref(const float* x, void* y, int64_t n);
void quantize_act_q8_1(const float* x, void* y, int64_t n);
void dequantize_row_q8_1(const void* x, float* y, int64_t n);
void quantize_row_q4_0_ref(const float* x, void* y, int64_t n);
void dequantize_row_q4_0(const void* x, float* y, int64_t n);
float vec_dot_q4_0_q8_0(int64_t n, const void* x, const void* y);
void quantize_row_q4_1_ref(const float* x, void* y, int64_t n);
void dequantize_row_q4_1(const void* x, float* y, int64_t n);
float vec_dot_q4_1_q8_1(int64_t n, const void* x, const void* y);
void quantize_row_q5_0_ref(const float* x, void* y, int64_t n);
void dequantize_row_q5_0(const void* x, float* y, int64_t n);
float vec_dot_q5_0_q8_0(int64_t n, const void* x, const void* y);
void quantize_row_q5_1_ref(const float* x, void* y, int64_t n);
void dequantize_row_q5_1(const void* x, float* y, int64_t n);
float vec_dot_q5_1_q8_1(int64_t n, const void* x, const void* y);
void quantize_row_iq4_nl_ref(const float* x, void* y, int64_t n);
void dequantize_row_iq4_nl(const void* x, float* y, int64_t n);
float vec_dot_iq4_nl_q8_0(int64_t n, const void* x, const void* y);

}  // namespace hearth
