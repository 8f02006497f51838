#include "runtime/options.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace hearth::runtime {
namespace {

using ojson = nlohmann::ordered_json;

Status type_error(const std::string& key, const char* want) {
  return invalid_argument("option \"" + key + "\" must be " + want);
}

// Larger than any model's context; bounds what a request can make the server allocate.
constexpr double kMaxContext = 1 << 24;

Status out_of_range(const std::string& key, double lo, double hi) {
  auto num = [](double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%.10g", x);
    return std::string(b);
  };
  return invalid_argument("option \"" + key + "\" must be between " + num(lo) + " and " + num(hi));
}

Status apply(GenOptions& o, const ojson& obj) {
  if (obj.is_null()) return Status::ok();
  if (!obj.is_object()) return invalid_argument("options must be a JSON object");
  for (const auto& item : obj.items()) {
    // (not a structured binding: clang 14 cannot capture those in the lambdas below)
    const std::string key = item.key();
    const ojson& v = item.value();
    if (v.is_null()) continue;
    // Integers in [lo, hi]; numbers finite and in [lo, hi]. A value outside its range is a 400
    // naming the option, never a buffer sized from it.
    auto as_int = [&](int& dst, double lo = -2147483648.0, double hi = 2147483647.0) -> Status {
      if (!v.is_number()) return type_error(key, "an integer");
      const double d = v.get<double>();
      if (!std::isfinite(d) || d != std::floor(d)) return type_error(key, "an integer");
      if (d < lo || d > hi) return out_of_range(key, lo, hi);
      dst = int(d);
      return Status::ok();
    };
    auto as_float = [&](float& dst, double lo = -1e30, double hi = 1e30) -> Status {
      if (!v.is_number()) return type_error(key, "a number");
      const double d = v.get<double>();
      if (!std::isfinite(d)) return type_error(key, "a finite number");
      if (d < lo || d > hi) return out_of_range(key, lo, hi);
      dst = float(d);
      return Status::ok();
    };
    auto& s = o.sampler;
    if (key == "num_ctx") {
      HEARTH_RETURN_IF_ERROR(as_int(o.num_ctx, 0, kMaxContext));
    } else if (key == "num_predict") {
      HEARTH_RETURN_IF_ERROR(as_int(o.num_predict, -2));
    } else if (key == "thinking_budget") {  // hearth: tokens of thinking before it is closed
      HEARTH_RETURN_IF_ERROR(as_int(o.thinking_budget, -1));
    } else if (key == "num_keep") {
      HEARTH_RETURN_IF_ERROR(as_int(o.num_keep, -1));
    } else if (key == "temperature") {
      HEARTH_RETURN_IF_ERROR(as_float(s.temperature, 0, 1e6));
    } else if (key == "top_k") {
      HEARTH_RETURN_IF_ERROR(as_int(s.top_k));
    } else if (key == "top_p") {
      HEARTH_RETURN_IF_ERROR(as_float(s.top_p, 0, 1));
    } else if (key == "min_p") {
      HEARTH_RETURN_IF_ERROR(as_float(s.min_p, 0, 1));
    } else if (key == "typical_p") {
      HEARTH_RETURN_IF_ERROR(as_float(s.typical_p, 0, 1));
    } else if (key == "repeat_last_n") {
      HEARTH_RETURN_IF_ERROR(as_int(s.repeat_last_n, -1, kMaxContext));
    } else if (key == "repeat_penalty") {
      HEARTH_RETURN_IF_ERROR(as_float(s.repeat_penalty));
    } else if (key == "presence_penalty") {
      HEARTH_RETURN_IF_ERROR(as_float(s.presence_penalty));
    } else if (key == "frequency_penalty") {
      HEARTH_RETURN_IF_ERROR(as_float(s.frequency_penalty));
    } else if (key == "draft_num_predict") {
      HEARTH_RETURN_IF_ERROR(as_int(o.draft_num_predict, 0, 16));
    } else if (key == "lookup_decoding") {
      if (!v.is_boolean()) return type_error(key, "true or false");
      o.lookup_decoding = v.get<bool>();
    } else if (key == "seed") {
      if (!v.is_number_integer()) return type_error(key, "an integer");
      s.seed = v.get<int64_t>();
    } else if (key == "stop") {
      o.stop.clear();
      if (v.is_string()) {
        o.stop.push_back(v.get<std::string>());
      } else if (v.is_array()) {
        for (const auto& x : v) {
          if (!x.is_string()) return type_error(key, "a list of strings");
          if (!x.get<std::string>().empty()) o.stop.push_back(x.get<std::string>());
        }
      } else {
        return type_error(key, "a list of strings");
      }
    }
    // Everything else (num_batch, num_thread, use_mmap, mirostat, ...) is accepted and ignored.
  }
  return Status::ok();
}

}  // namespace

Result<GenOptions> merge_options(const ojson& model_params, const ojson& request_options) {
  GenOptions o;
  o.sampler.repeat_penalty = 1.0f;  // Ollama's default since 2026-08 (was 1.1)
  HEARTH_RETURN_IF_ERROR(apply(o, model_params));
  HEARTH_RETURN_IF_ERROR(apply(o, request_options));
  if (o.num_ctx < 0) return invalid_argument("option \"num_ctx\" must not be negative");
  if (o.num_ctx > 0 && o.num_ctx < 4) o.num_ctx = 4;  // Ollama's minimum
  return o;
}

Result<std::chrono::nanoseconds> parse_keep_alive(const ojson& v) {
  using std::chrono::nanoseconds;
  if (v.is_number()) {
    const double s = v.get<double>();
    if (!std::isfinite(s)) return invalid_argument("keep_alive must be finite");
    if (s < 0) return nanoseconds(-1);
    return nanoseconds(int64_t(std::min(s, 1e9) * 1e9));
  }
  if (!v.is_string()) return invalid_argument("keep_alive must be a duration string or a number");
  const std::string str = v.get<std::string>();
  // A bare number is seconds; otherwise a Go duration: [-]{number unit}+ with units
  // ns us µs ms s m h.
  {
    char* end = nullptr;
    const double s = std::strtod(str.c_str(), &end);
    if (!str.empty() && end && *end == 0) return parse_keep_alive(ojson(s));
  }
  size_t i = 0;
  bool neg = false;
  if (i < str.size() && (str[i] == '-' || str[i] == '+')) neg = str[i++] == '-';
  if (i >= str.size()) return invalid_argument("invalid duration \"" + str + "\"");
  double total = 0;
  while (i < str.size()) {
    const char* b = str.c_str() + i;
    char* end = nullptr;
    const double x = std::strtod(b, &end);
    if (end == b || !(x >= 0)) return invalid_argument("invalid duration \"" + str + "\"");
    i += size_t(end - b);
    size_t j = i;
    while (j < str.size() && !(std::isdigit(uint8_t(str[j])) || str[j] == '.')) ++j;
    const std::string unit = str.substr(i, j - i);
    double mul = 0;
    if (unit == "ns")
      mul = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs")
      mul = 1e3;
    else if (unit == "ms")
      mul = 1e6;
    else if (unit == "s")
      mul = 1e9;
    else if (unit == "m")
      mul = 60e9;
    else if (unit == "h")
      mul = 3600e9;
    else
      return invalid_argument("invalid duration \"" + str + "\": unknown unit \"" + unit + "\"");
    total += x * mul;
    i = j;
  }
  if (neg && total > 0) return nanoseconds(-1);
  return nanoseconds(int64_t(std::min(total, 1e18)));  // as a number: at most 1e9 s
}

}  // namespace hearth::runtime
