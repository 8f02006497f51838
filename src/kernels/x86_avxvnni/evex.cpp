// The AVX-VNNI level with the EVEX (AVX-512 VL + VNNI) encoding of 256-bit vpdpbusd, for AVX-512
// CPUs without AVX-VNNI (built with AVX-512 flags; level.h).
#include <immintrin.h>

namespace hearth::kernels::avxvnni {
namespace {
inline __m256i dpbusd(__m256i acc, __m256i w, __m256i a) {
  return _mm256_dpbusd_epi32(acc, w, a);
}
}  // namespace
}  // namespace hearth::kernels::avxvnni

#include "kernels/x86_avxvnni/level.h"

namespace hearth::kernels {

void register_avxvnni_evex(KernelTable& t) {
  avxvnni::fill(t);
}

}  // namespace hearth::kernels
