// base/json_depth.h — parsing JSON from outside with a nesting limit.
//
// nlohmann's parser itself is iterative, but everything that later walks a parsed value (copies,
// dump(), the template engines' conversions) recurses once per level: a 40 KB body of nested
// brackets exhausted the stack of the thread handling it. Input is refused at parse time instead;
// real request bodies (JSON schemas, tool definitions) nest a few tens of levels at most.
#pragma once

#include <string_view>

namespace hearth {

constexpr int kMaxJsonDepth = 128;

// Json is nlohmann::json or nlohmann::ordered_json. Returns a discarded value (is_discarded())
// for invalid JSON, and for JSON nested deeper than max_depth, then with *too_deep set.
template <class Json>
Json parse_json_bounded(std::string_view text, bool* too_deep = nullptr,
                        int max_depth = kMaxJsonDepth) {
  bool deep = false;
  Json j = Json::parse(
      text.begin(), text.end(),
      [&](int depth, typename Json::parse_event_t, Json&) {
        if (depth <= max_depth) return true;
        deep = true;
        return false;  // not kept: the value stays shallow while the rest is checked
      },
      false);
  if (too_deep) *too_deep = deep;
  if (deep) return Json(Json::value_t::discarded);
  return j;
}

}  // namespace hearth
