// quant/kquants.h — scalar references of the K-quants and IQ4_XS (oracles for kernels/).
#pragma once

#include <cstdint>

namespace hearth {

void quantize_row_q8_K_ref(const float* x, void* y, int64_t n);
void dequantize_row_q8_K(const void* x, float* y, int64_t n);
void quantize_row_q2_K_ref(const float* x, void* y, int64_t n);
void dequantize_row_q2_K(const void* x, float* y, int64_t n);
float vec_dot_q2_K_q8_K(int64_t n, const void* x, const void* y);
void quantize_row_q3_K_ref(const float* x, void* y, int64_t n);
void dequantize_row_q3_K(const void* x, float* y, int64_t n);
float vec_dot_q3_K_q8_K(int64_t n, const void* x, const void* y);
void quantize_row_q4_K_ref(const float* x, void* y, int64_t n);
void dequantize_row_q4_K(const void* x, float* y, int64_t n);
float vec_dot_q4_K_q8_K(int64_t n, const void* x, const void* y);
void quantize_row_q5_K_ref(const float* x, void* y, int64_t n);
void dequantize_row_q5_K(const void* x, float* y, int64_t n);
float vec_dot_q5_K_q8_K(int64_t n, const void* x, const void* y);
void quantize_row_q6_K_ref(const float* x, void* y, int64_t n);
void dequantize_row_q6_K(const void* x, float* y, int64_t n);
float vec_dot_q6_K_q8_K(int64_t n, const void* x, const void* y);
void quantize_row_iq4_xs_ref(const float* x, void* y, int64_t n);
void dequantize_row_iq4_xs(const void* x, float* y, int64_t n);
float vec_dot_iq4_xs_q8_K(int64_t n, const void* x, const void* y);

// Q4_K/Q5_K: the 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes.
inline void get_scale_min_k4(int j, const uint8_t* s, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = uint8_t((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
    m = uint8_t((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// Q8_K: the value of x[0..QK_K) whose magnitude is amax (the block's largest), the first one on
// ties — the one quantize_row_q8_K_ref's scan keeps; vectorised quantizers find amax, then this.
inline float q8k_signed_max(const float* x, float amax) {
  for (int j = 0; j < 256; ++j)
    if (x[j] == amax || x[j] == -amax) return x[j];
  return 0;
}

// Q3_K: the signed 6-bit scale of sub-block j (0..15), already minus 32.
inline int q3k_scale(int j, const uint8_t* s) {
  const int lo = j < 8 ? (s[j] & 15) : (s[j - 8] >> 4);
  const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

}  // namespace hearth
