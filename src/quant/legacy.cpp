// Legacy 32-element block types: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 (+ Q8_1 activations) and IQ4_NL.
#include "quant/families.h"

namespace hearth {

void register_legacy_types(Registry&) {}  // TODO(#2): legacy types

}  // namespace hearth
