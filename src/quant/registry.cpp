#include <algorithm>
#include <array>
#include <cctype>

#include "quant/families.h"
#include "quant/types.h"

namespace hearth {

struct Registry {
  std::array<TypeTraits, kMaxTypeId> rows{};
  std::array<bool, kMaxTypeId> present{};
  Registry() {
    // One call per family; each adds its rows with add_type().
    register_float_types(*this);
    register_legacy_types(*this);
    register_kquant_types(*this);
  }
};

namespace {

const Registry& registry() {
  static const Registry r;
  return r;
}

}  // namespace

void add_type(Registry& r, const TypeTraits& t) {
  const auto id = static_cast<uint32_t>(t.type);
  r.rows[id] = t;
  r.present[id] = true;
}

const TypeTraits* find_type(uint32_t id) {
  const auto& r = registry();
  if (id >= kMaxTypeId || !r.present[id]) return nullptr;
  return &r.rows[id];
}

const TypeTraits& type_traits(DType t) {
  return *find_type(static_cast<uint32_t>(t));
}

const TypeTraits* find_type_by_name(std::string_view name) {
  const auto& r = registry();
  for (uint32_t i = 0; i < kMaxTypeId; ++i) {
    if (!r.present[i]) continue;
    std::string_view n = r.rows[i].name;
    if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
          return std::tolower(a) == std::tolower(b);
        }))
      return &r.rows[i];
  }
  return nullptr;
}

std::string supported_type_names() {
  std::string s;
  const auto& r = registry();
  for (uint32_t i = 0; i < kMaxTypeId; ++i) {
    if (!r.present[i] || !r.rows[i].storable) continue;
    if (!s.empty()) s += ", ";
    s += r.rows[i].name;
  }
  return s;
}

}  // namespace hearth
