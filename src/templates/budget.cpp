#include "templates/budget.h"

#include <algorithm>
#include <cstdio>

namespace hearth::templates {

namespace {

int64_t scaled(uint64_t input_bytes, int64_t per_byte, int64_t floor) {
  const uint64_t cap = uint64_t(INT64_MAX) / uint64_t(per_byte);
  const int64_t v = input_bytes > cap ? INT64_MAX : int64_t(input_bytes) * per_byte;
  return std::max(floor, v);
}

}  // namespace

Budget Budget::for_input(uint64_t input_bytes) {
  Budget b;
  b.max_steps = scaled(input_bytes, kStepsPerInputByte, kMinSteps);
  b.max_bytes = scaled(input_bytes, kBytesPerInputByte, kMinBytes);
  return b;
}

std::string Budget::steps_message() const {
  return "template exceeded its budget of " + std::to_string(max_steps) + " steps";
}

std::string Budget::bytes_message() const {
  const double mib = double(max_bytes) / double(1 << 20);
  char buf[64];
  if (max_bytes % (1 << 20) == 0)
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(max_bytes >> 20));
  else
    std::snprintf(buf, sizeof buf, "%.1f", mib);
  return std::string("template exceeded its budget of ") + buf + " MiB of output/allocations";
}

std::string recursion_message(int max_depth) {
  return "recursion deeper than " + std::to_string(max_depth) + " levels";
}

uint64_t json_size(const nlohmann::ordered_json& j) {
  using V = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case V::string:
      return j.get_ref<const std::string&>().size() + 2;
    case V::array: {
      uint64_t n = 2;
      for (const auto& x : j) n += json_size(x) + 1;
      return n;
    }
    case V::object: {
      uint64_t n = 2;
      for (const auto& [k, x] : j.items()) n += k.size() + 4 + json_size(x);
      return n;
    }
    case V::number_integer:
    case V::number_unsigned:
    case V::number_float:
      return 8;  // near enough: this sizes a budget, it does not print
    default:
      return 4;  // null, true, false
  }
}

}  // namespace hearth::templates
