// Registers every avx2 kernel family into the avx2 table.
#include "kernels/x86_avx2/x86_avx2.h"

namespace hearth::kernels {

void register_avx2(KernelTable& t) {
  register_avx2_float(t);
  register_avx2_legacy(t);
  register_avx2_kquants(t);
  register_avx2_attn(t);
  register_avx2_peak(t);
}

}  // namespace hearth::kernels
