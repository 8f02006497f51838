// base/cpu_features.h — what this CPU can run, read once from CPUID/XGETBV.
#pragma once

#include <string>

namespace hearth {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512vnni = false, avx512bf16 = false, avx_vnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  std::string describe() const;
};

// Detected once; thread-safe.
const CpuFeatures& cpu_features();

}  // namespace hearth
