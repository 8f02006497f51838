// kernels/x86_avx512 — kernels compiled with avx512 flags (see CMakeLists.txt); only called when
// the CPU supports them. One file per type family.
#pragma once

#include "kernels/kernels.h"

namespace hearth::kernels {

void register_avx512_float(KernelTable& t);     // float.cpp:   F32 F16 BF16
void register_avx512_legacy(KernelTable& t);    // legacy.cpp:  Q8_0 (+ Q8_0 activations)
void register_avx512_kquants(KernelTable& t);   // kquants.cpp: Q2_K..Q6_K IQ4_XS (+ Q8_K)
void register_avx512_attn(KernelTable& t);      // attn.cpp:    attention helpers
void register_avx512_peak(KernelTable& t);      // peak.cpp:    peak probes for bench --peak
void register_avx512_unpacked(KernelTable& t);  // unpacked.cpp: Q4_0 Q5_0 IQ4_NL Q4_1 Q5_1
void register_avx512_repacked(KernelTable& t);  // repacked.cpp: Q4_K Q5_K Q6_K load-time repacks
void register_avx512_repacked_q4_0(KernelTable& t);  // repacked_q4_0.cpp: Q4_0 load-time repack

// Q8_0 weights x Q8_0 activations. Decode and small batches always sum in llama.cpp's x86 order
// (bit-identical results); for prefill (M >= 16) `llama_order` picks that order or hearth's
// faster per-block integer one. The table takes llama.cpp's except on CPUs with AMX (legacy.cpp
// says why); both are exported for the kernel tests.
void gemm_q8_0_avx512(bool llama_order, int64_t K, const void* W, size_t w_stride, int64_t n_rows,
                      const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy);

}  // namespace hearth::kernels
