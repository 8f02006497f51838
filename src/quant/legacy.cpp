// Legacy 32-element block types: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0, the Q8_1 activation format, and
// IQ4_NL. In every 32-wide type, byte j of qs holds element j (low nibble) and element j + 16
// (high nibble); Q5 types keep bit 4 of element i in bit i of the little-endian u32 qh.
#include "quant/legacy.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "quant/blocks.h"
#include "quant/families.h"
#include "quant/rounding.h"

namespace hearth {

// ---- Q8_0: x = d * q, q int8; d = amax / 127 (also the activation format of Q4_0/Q5_0/Q8_0).

void quantize_row_q8_0_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_0*>(vy);
  for (int64_t b = 0; b < n / QK8_0; ++b, x += QK8_0) {
    float amax = 0;
    for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) y[b].qs[j] = int8_t(std::roundf(x[j] * id));
  }
}

// Activations, as llama.cpp's x86 CPU backend quantizes them: the multiplier is 127 / amax
// rather than 1 / d, and rounding is to nearest with ties to even. Which of two adjacent
// integers a value lands on decides every later bit, so hearth rounds exactly as llama.cpp does.
// One 32-element block; returns d (stored as f16 by the callers).
static float quantize_act_block(const float* x, int8_t* qs) {
  float amax = 0;
  for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float id = amax != 0 ? 127.0f / amax : 0.0f;
  for (int j = 0; j < QK8_0; ++j) qs[j] = int8_t(nearest_int(x[j] * id));
  return amax / 127.0f;
}

void quantize_act_q8_0(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_0*>(vy);
  for (int64_t b = 0; b < n / QK8_0; ++b, x += QK8_0)
    y[b].d = fp32_to_fp16(quantize_act_block(x, y[b].qs));
}

void dequantize_row_q8_0(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_q8_0*>(vx);
  for (int64_t b = 0; b < n / QK8_0; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < QK8_0; ++j) y[b * QK8_0 + j] = d * x[b].qs[j];
  }
}

float vec_dot_q8_0_q8_0(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q8_0*>(vx);
  const auto* y = static_cast<const block_q8_0*>(vy);
  float s = 0;
  for (int64_t b = 0; b < n / QK8_0; ++b) {
    int32_t acc = 0;
    for (int j = 0; j < QK8_0; ++j) acc += int32_t(x[b].qs[j]) * y[b].qs[j];
    s += float(acc) * (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d));
  }
  return s;
}

// ---- Q8_1: Q8_0 plus s = d * sum(q), the activation format of Q4_1/Q5_1.

void quantize_row_q8_1_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_1*>(vy);
  for (int64_t b = 0; b < n / QK8_1; ++b, x += QK8_1) {
    float amax = 0;
    for (int j = 0; j < QK8_1; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < QK8_1; ++j) {
      y[b].qs[j] = int8_t(std::roundf(x[j] * id));
      sum += y[b].qs[j];
    }
    y[b].s = fp32_to_fp16(float(sum) * d);
  }
}

// As quantize_act_q8_0, plus s = d * sum(q).
void quantize_act_q8_1(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_1*>(vy);
  for (int64_t b = 0; b < n / QK8_1; ++b, x += QK8_1) {
    const float d = quantize_act_block(x, y[b].qs);
    int sum = 0;
    for (int j = 0; j < QK8_1; ++j) sum += y[b].qs[j];
    y[b].d = fp32_to_fp16(d);
    y[b].s = fp32_to_fp16(d * float(sum));
  }
}

void dequantize_row_q8_1(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_q8_1*>(vx);
  for (int64_t b = 0; b < n / QK8_1; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < QK8_1; ++j) y[b * QK8_1 + j] = d * x[b].qs[j];
  }
}

// ---- Q4_0: x = d * (q - 8); d = (signed value of largest magnitude) / -8.

void quantize_row_q4_0_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q4_0*>(vy);
  for (int64_t b = 0; b < n / QK4_0; ++b, x += QK4_0) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK4_0; ++j)
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -8.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const uint8_t lo = uint8_t(std::min(15, int(int8_t(x[j] * id + 8.5f))));
      const uint8_t hi = uint8_t(std::min(15, int(int8_t(x[j + 16] * id + 8.5f))));
      y[b].qs[j] = uint8_t(lo | (hi << 4));
    }
  }
}

void dequantize_row_q4_0(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_q4_0*>(vx);
  for (int64_t b = 0; b < n / QK4_0; ++b, y += QK4_0) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      y[j] = d * (int(x[b].qs[j] & 15) - 8);
      y[j + 16] = d * (int(x[b].qs[j] >> 4) - 8);
    }
  }
}

float vec_dot_q4_0_q8_0(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q4_0*>(vx);
  const auto* y = static_cast<const block_q8_0*>(vy);
  float s = 0;
  for (int64_t b = 0; b < n / QK4_0; ++b) {
    int32_t acc = 0;
    for (int j = 0; j < 16; ++j)
      acc += (int(x[b].qs[j] & 15) - 8) * y[b].qs[j] + (int(x[b].qs[j] >> 4) - 8) * y[b].qs[j + 16];
    s += float(acc) * (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d));
  }
  return s;
}

// ---- Q4_1: x = d * q + m; m = block min, d = (max - min) / 15.

void quantize_row_q4_1_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q4_1*>(vy);
  for (int64_t b = 0; b < n / QK4_1; ++b, x += QK4_1) {
    float mn = x[0], mx = x[0];
    for (int j = 1; j < QK4_1; ++j) {
      mn = std::min(mn, x[j]);
      mx = std::max(mx, x[j]);
    }
    const float d = (mx - mn) / 15.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(mn);
    for (int j = 0; j < 16; ++j) {
      const uint8_t lo = uint8_t(std::min(15, int(int8_t((x[j] - mn) * id + 0.5f))));
      const uint8_t hi = uint8_t(std::min(15, int(int8_t((x[j + 16] - mn) * id + 0.5f))));
      y[b].qs[j] = uint8_t(lo | (hi << 4));
    }
  }
}

void dequantize_row_q4_1(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_q4_1*>(vx);
  for (int64_t b = 0; b < n / QK4_1; ++b, y += QK4_1) {
    const float d = fp16_to_fp32(x[b].d), m = fp16_to_fp32(x[b].m);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * (x[b].qs[j] & 15) + m;
      y[j + 16] = d * (x[b].qs[j] >> 4) + m;
    }
  }
}

float vec_dot_q4_1_q8_1(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q4_1*>(vx);
  const auto* y = static_cast<const block_q8_1*>(vy);
  float s = 0;
  for (int64_t b = 0; b < n / QK4_1; ++b) {
    int32_t acc = 0;
    for (int j = 0; j < 16; ++j)
      acc += int(x[b].qs[j] & 15) * y[b].qs[j] + int(x[b].qs[j] >> 4) * y[b].qs[j + 16];
    s += fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d) * float(acc) +
         fp16_to_fp32(x[b].m) * fp16_to_fp32(y[b].s);
  }
  return s;
}

// ---- Q5_0 / Q5_1: as Q4 with a fifth bit per element in qh.

namespace {
inline uint32_t load_qh(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
}  // namespace

void quantize_row_q5_0_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q5_0*>(vy);
  for (int64_t b = 0; b < n / QK5_0; ++b, x += QK5_0) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK5_0; ++j)
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -16.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const uint8_t a = uint8_t(std::min(31, int(int8_t(x[j] * id + 16.5f))));
      const uint8_t c = uint8_t(std::min(31, int(int8_t(x[j + 16] * id + 16.5f))));
      y[b].qs[j] = uint8_t((a & 15) | ((c & 15) << 4));
      qh |= uint32_t((a >> 4) & 1) << j;
      qh |= uint32_t((c >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[b].qh, &qh, 4);
  }
}

void dequantize_row_q5_0(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_q5_0*>(vx);
  for (int64_t b = 0; b < n / QK5_0; ++b, y += QK5_0) {
    const float d = fp16_to_fp32(x[b].d);
    const uint32_t qh = load_qh(x[b].qh);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * (int((x[b].qs[j] & 15) | (((qh >> j) & 1) << 4)) - 16);
      y[j + 16] = d * (int((x[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16);
    }
  }
}

float vec_dot_q5_0_q8_0(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q5_0*>(vx);
  const auto* y = static_cast<const block_q8_0*>(vy);
  float s = 0;
  for (int64_t b = 0; b < n / QK5_0; ++b) {
    const uint32_t qh = load_qh(x[b].qh);
    int32_t acc = 0;
    for (int j = 0; j < 16; ++j) {
      acc += (int((x[b].qs[j] & 15) | (((qh >> j) & 1) << 4)) - 16) * y[b].qs[j];
      acc += (int((x[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16) * y[b].qs[j + 16];
    }
    s += float(acc) * (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d));
  }
  return s;
}

void quantize_row_q5_1_ref(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q5_1*>(vy);
  for (int64_t b = 0; b < n / QK5_1; ++b, x += QK5_1) {
    float mn = x[0], mx = x[0];
    for (int j = 1; j < QK5_1; ++j) {
      mn = std::min(mn, x[j]);
      mx = std::max(mx, x[j]);
    }
    const float d = (mx - mn) / 31.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(mn);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const uint8_t a = uint8_t((x[j] - mn) * id + 0.5f);
      const uint8_t c = uint8_t((x[j + 16] - mn) * id + 0.5f);
      y[b].qs[j] = uint8_t((a & 15) | ((c & 15) << 4));
      qh |= uint32_t((a >> 4) & 1) << j;
      qh |= uint32_t((c >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[b].qh, &qh, 4);
  }
}

void dequantize_row_q5_1(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_q5_1*>(vx);
  for (int64_t b = 0; b < n / QK5_1; ++b, y += QK5_1) {
    const float d = fp16_to_fp32(x[b].d), m = fp16_to_fp32(x[b].m);
    const uint32_t qh = load_qh(x[b].qh);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * int((x[b].qs[j] & 15) | (((qh >> j) & 1) << 4)) + m;
      y[j + 16] = d * int((x[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) + m;
    }
  }
}

float vec_dot_q5_1_q8_1(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q5_1*>(vx);
  const auto* y = static_cast<const block_q8_1*>(vy);
  float s = 0;
  for (int64_t b = 0; b < n / QK5_1; ++b) {
    const uint32_t qh = load_qh(x[b].qh);
    int32_t acc = 0;
    for (int j = 0; j < 16; ++j) {
      acc += int((x[b].qs[j] & 15) | (((qh >> j) & 1) << 4)) * y[b].qs[j];
      acc += int((x[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) * y[b].qs[j + 16];
    }
    s += fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d) * float(acc) +
         fp16_to_fp32(x[b].m) * fp16_to_fp32(y[b].s);
  }
  return s;
}

// ---- IQ4_NL: x = d * kvalues_iq4nl[q]; the scale search is shared with IQ4_XS (iq4.cpp).

void dequantize_row_iq4_nl(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const block_iq4_nl*>(vx);
  for (int64_t b = 0; b < n / QK4_NL; ++b, y += QK4_NL) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * kvalues_iq4nl[x[b].qs[j] & 15];
      y[j + 16] = d * kvalues_iq4nl[x[b].qs[j] >> 4];
    }
  }
}

float vec_dot_iq4_nl_q8_0(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_iq4_nl*>(vx);
  const auto* y = static_cast<const block_q8_0*>(vy);
  float s = 0;
  for (int64_t b = 0; b < n / QK4_NL; ++b) {
    int32_t acc = 0;
    for (int j = 0; j < 16; ++j)
      acc += kvalues_iq4nl[x[b].qs[j] & 15] * y[b].qs[j] +
             kvalues_iq4nl[x[b].qs[j] >> 4] * y[b].qs[j + 16];
    s += float(acc) * (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d));
  }
  return s;
}

void register_legacy_types(Registry& r) {
  add_type(r, {DType::Q4_0, "q4_0", QK4_0, sizeof(block_q4_0), true, true, DType::Q8_0,
               dequantize_row_q4_0, quantize_row_q4_0_ref, vec_dot_q4_0_q8_0});
  add_type(r, {DType::Q4_1, "q4_1", QK4_1, sizeof(block_q4_1), true, true, DType::Q8_1,
               dequantize_row_q4_1, quantize_row_q4_1_ref, vec_dot_q4_1_q8_1});
  add_type(r, {DType::Q5_0, "q5_0", QK5_0, sizeof(block_q5_0), true, true, DType::Q8_0,
               dequantize_row_q5_0, quantize_row_q5_0_ref, vec_dot_q5_0_q8_0});
  add_type(r, {DType::Q5_1, "q5_1", QK5_1, sizeof(block_q5_1), true, true, DType::Q8_1,
               dequantize_row_q5_1, quantize_row_q5_1_ref, vec_dot_q5_1_q8_1});
  add_type(r, {DType::Q8_0, "q8_0", QK8_0, sizeof(block_q8_0), true, true, DType::Q8_0,
               dequantize_row_q8_0, quantize_row_q8_0_ref, vec_dot_q8_0_q8_0, quantize_act_q8_0});
  add_type(r, {DType::Q8_1, "q8_1", QK8_1, sizeof(block_q8_1), true, false, DType::Q8_1,
               dequantize_row_q8_1, quantize_row_q8_1_ref, nullptr, quantize_act_q8_1});
  add_type(r, {DType::IQ4_NL, "iq4_nl", QK4_NL, sizeof(block_iq4_nl), true, true, DType::Q8_0,
               dequantize_row_iq4_nl, quantize_row_iq4_nl_ref, vec_dot_iq4_nl_q8_0});
}

}  // namespace hearth
