// kernels/x86_avx2 — kernels compiled with avx2 flags (see CMakeLists.txt); only called when the
// CPU supports them. One file per type family.
#pragma once

#include "kernels/kernels.h"

namespace hearth::kernels {

void register_avx2_float(KernelTable& t);   // float.cpp:   F32 F16 BF16
void register_avx2_legacy(KernelTable& t);  // legacy.cpp:  Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 IQ4_NL
void register_avx2_kquants(KernelTable& t);
void register_avx2_attn(
    KernelTable& t);  // attn.cpp:    attention helpers  // kquants.cpp: Q2_K..Q6_K IQ4_XS

}  // namespace hearth::kernels
