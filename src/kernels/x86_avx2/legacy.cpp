#include "kernels/x86_avx2/x86_avx2.h"

namespace hearth::kernels {

void register_avx2_legacy(KernelTable&) {}  // TODO(#2)

}  // namespace hearth::kernels
