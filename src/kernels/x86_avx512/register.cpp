// Registers every avx512 kernel family into the avx512 table.
#include "kernels/x86_avx512/x86_avx512.h"

namespace hearth::kernels {

void register_avx512(KernelTable& t) {
  register_avx512_float(t);
  register_avx512_legacy(t);
  register_avx512_kquants(t);
  register_avx512_attn(t);
  register_avx512_peak(t);
  register_avx512_unpacked(t);
  register_avx512_repacked(t);
  register_avx512_repacked_q4_0(t);
}

}  // namespace hearth::kernels
