// quant/families.h — internal: each type family registers its rows (one .cpp per family).
#pragma once

#include "quant/types.h"

namespace hearth {

struct Registry;
void add_type(Registry& r, const TypeTraits& t);

void register_float_types(Registry& r);   // quant/float_types.cpp: F32, F16, BF16
void register_legacy_types(Registry& r);  // quant/legacy.cpp: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1 IQ4_NL
void register_kquant_types(Registry& r);  // quant/kquants.cpp: Q2_K..Q6_K, Q8_K, IQ4_XS

}  // namespace hearth
