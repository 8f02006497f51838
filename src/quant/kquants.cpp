// K-quants (256-element super-blocks): Q2_K Q3_K Q4_K Q5_K Q6_K (+ Q8_K activations) and IQ4_XS.
#include "quant/families.h"

namespace hearth {

void register_kquant_types(Registry&) {}  // TODO(#2): K-quants

}  // namespace hearth
