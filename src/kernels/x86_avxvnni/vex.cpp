// The AVX-VNNI level with VEX vpdpbusd (built with -mavxvnni; level.h).
#include <immintrin.h>

namespace hearth::kernels::avxvnni {
namespace {
inline __m256i dpbusd(__m256i acc, __m256i w, __m256i a) {
  return _mm256_dpbusd_avx_epi32(acc, w, a);
}
}  // namespace
}  // namespace hearth::kernels::avxvnni

#include "base/cpu_features.h"
#include "kernels/x86_avxvnni/level.h"

namespace hearth::kernels {

void register_avxvnni_evex(KernelTable& t);  // evex.cpp

void register_avxvnni(KernelTable& t) {
  if (cpu_features().avx_vnni)
    avxvnni::fill(t);
  else  // an AVX-512 VNNI CPU without AVX-VNNI (kernels/dispatch.cpp): the EVEX encoding
    register_avxvnni_evex(t);
}

}  // namespace hearth::kernels
