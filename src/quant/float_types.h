// quant/float_types.h — references for the float types that other layers call directly.
#pragma once

#include <cstdint>

namespace hearth {

// F16 row · F16 row (attention scores against an F16 KV cache take Q rounded to F16).
float vec_dot_f16_f16(int64_t n, const void* x, const void* y);

}  // namespace hearth
