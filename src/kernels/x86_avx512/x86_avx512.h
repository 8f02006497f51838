// kernels/x86_avx512 — kernels compiled with avx512 flags (see CMakeLists.txt); only called when
// the CPU supports them. One file per type family.
#pragma once

#include "kernels/kernels.h"

namespace hearth::kernels {

void register_avx512_float(KernelTable& t);    // float.cpp:   F32 F16 BF16
void register_avx512_legacy(KernelTable& t);   // legacy.cpp:  Q8_0 (+ Q8_0 activations)
void register_avx512_kquants(KernelTable& t);  // kquants.cpp: Q4_K Q6_K (+ Q8_K activations)
void register_avx512_attn(KernelTable& t);     // attn.cpp:    attention helpers
void register_avx512_unpacked(
    KernelTable& t);  // unpacked.cpp: Q5_K Q2_K Q3_K IQ4_XS Q4_0 Q5_0 IQ4_NL Q4_1 Q5_1

}  // namespace hearth::kernels
