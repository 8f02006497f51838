#include "kernels/x86_avx512/x86_avx512.h"

namespace hearth::kernels {

void register_avx512_float(KernelTable&) {}  // TODO(#2)

}  // namespace hearth::kernels
