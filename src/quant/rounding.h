// quant/rounding.h — the rounding helper llama.cpp's quantizers use, so ours round identically.
#pragma once

#include <cstdint>
#include <cstring>

namespace hearth {

// Round to nearest, ties to even, for |f| < 2^22: adding 1.5 * 2^23 leaves the integer in the low
// mantissa bits (the float unit does the rounding).
inline int nearest_int(float f) {
  float v = f + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

}  // namespace hearth
