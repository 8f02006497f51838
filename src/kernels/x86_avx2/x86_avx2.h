// kernels/x86_avx2 — kernels compiled with avx2 flags (see CMakeLists.txt); only called when the
// CPU supports them. One file per type family.
#pragma once

#include "kernels/kernels.h"

namespace hearth::kernels {

void register_avx2_float(KernelTable& t);    // float.cpp:    F16 (x F32), BF16, F32, F16 x F16
void register_avx2_legacy(KernelTable& t);   // legacy.cpp:  Q8_0 Q4_0 Q5_0 IQ4_NL Q4_1 Q5_1
void register_avx2_kquants(KernelTable& t);  // kquants.cpp: Q2_K..Q6_K IQ4_XS
void register_avx2_attn(KernelTable& t);     // attn.cpp:    attention helpers
void register_avx2_peak(KernelTable& t);     // peak.cpp:    peak probes for bench --peak

}  // namespace hearth::kernels
