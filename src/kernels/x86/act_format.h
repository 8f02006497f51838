// The activation formats the x86 integer kernels take (the weight type's vec_dot_type).
#pragma once

namespace hearth::kernels::x86 {

enum class ActFormat { kQ8K, kQ8_0, kQ8_1 };

}  // namespace hearth::kernels::x86
