#include "templates/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <tuple>

namespace hearth::templates::jinja {

Value* Object::find(const std::string& k) {
  for (auto& [key, v] : items)
    if (key == k) return &v;
  return nullptr;
}
const Value* Object::find(const std::string& k) const {
  for (const auto& [key, v] : items)
    if (key == k) return &v;
  return nullptr;
}
void Object::set(const std::string& k, Value v) {
  if (Value* p = find(k))
    *p = std::move(v);
  else
    items.emplace_back(k, std::move(v));
}

bool Value::truthy() const {
  switch (k) {
    case K::kUndefined:
    case K::kNull:
      return false;
    case K::kBool:
      return b;
    case K::kInt:
      return i != 0;
    case K::kFloat:
      return f != 0 && !std::isnan(f);
    case K::kStr:
      return !s.empty();
    case K::kArray:
    case K::kTuple:
      return !arr->empty();
    case K::kObject:
    case K::kKwargs:
      return !obj->items.empty();
    case K::kNamespace:
    case K::kFunc:
      return true;
  }
  return false;
}

const char* Value::type_name() const {
  switch (k) {
    case K::kUndefined:
      return "UndefinedValue";
    case K::kNull:
      return "NullValue";
    case K::kBool:
      return "BooleanValue";
    case K::kInt:
      return "IntegerValue";
    case K::kFloat:
      return "FloatValue";
    case K::kStr:
      return "StringValue";
    case K::kArray:
      return "ArrayValue";
    case K::kTuple:
      return "TupleValue";
    case K::kObject:
      return "ObjectValue";
    case K::kNamespace:
      return "NamespaceValue";
    case K::kKwargs:
      return "KeywordArgumentsValue";
    case K::kFunc:
      return "FunctionValue";
  }
  return "?";
}

namespace {

// JavaScript orders integer-like keys of a plain object first, ascending (Object.entries).
bool array_index_key(const std::string& k, uint32_t* out) {
  if (k.empty() || k.size() > 10 || (k.size() > 1 && k[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : k) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + uint64_t(c - '0');
  }
  if (v >= 4294967295ull) return false;
  *out = uint32_t(v);
  return true;
}

}  // namespace

Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::null();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value::integer(int64_t(j.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: {
      const double d = j.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18)
        return Value::integer(int64_t(d));
      return Value::number(d);
    }
    case nlohmann::ordered_json::value_t::string:
      return Value::str(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> v;
      v.reserve(j.size());
      for (const auto& x : j) v.push_back(from_json(x));
      return Value::array(std::move(v));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value o = Value::object();
      // The value is kept with its key: j[k] would search the object again for every key.
      std::vector<std::tuple<uint32_t, std::string, const nlohmann::ordered_json*>> numeric;
      for (const auto& [k, x] : j.items()) {
        uint32_t idx;
        if (array_index_key(k, &idx)) numeric.emplace_back(idx, k, &x);
      }
      std::sort(numeric.begin(), numeric.end(),
                [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
      for (const auto& [idx, k, x] : numeric) o.obj->items.emplace_back(k, from_json(*x));
      for (const auto& [k, x] : j.items()) {
        uint32_t idx;
        if (!array_index_key(k, &idx)) o.obj->items.emplace_back(k, from_json(x));
      }
      return o;
    }
    default:
      return Value::undefined();
  }
}

std::string js_number(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  if (d == 0) return "0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);  // e.g. "-1.2345e-07" (shortest round-trip digits)
  std::string out;
  if (sci[0] == '-') {
    out = "-";
    sci.erase(0, 1);
  }
  const size_t e = sci.find('e');
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (sci[i] != '.') digits += sci[i];
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int exp10 = std::stoi(sci.substr(e + 1));
  const int k = int(digits.size()), n = exp10 + 1;  // value = 0.digits * 10^n
  if (k <= n && n <= 21) {
    out += digits + std::string(size_t(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, size_t(n)) + "." + digits.substr(size_t(n));
  } else if (-6 < n && n <= 0) {
    out += "0." + std::string(size_t(-n), '0') + digits;
  } else {
    out += digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    out += "e";
    out += (n - 1) >= 0 ? "+" : "-";
    out += std::to_string(std::abs(n - 1));
  }
  return out;
}

namespace {

std::string json_string(const std::string& s, bool ensure_ascii) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = uint8_t(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      default:
        break;
    }
    char buf[16];
    if (c < 0x20) {
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else if (ensure_ascii && c >= 0x7f) {
      // Decode one code point; escape as UTF-16 units, as the reference does.
      uint32_t cp = c;
      int len = 1;
      if (c >= 0xF0 && i + 3 < s.size()) {
        cp = ((c & 7u) << 18) | ((uint8_t(s[i + 1]) & 63u) << 12) |
             ((uint8_t(s[i + 2]) & 63u) << 6) | (uint8_t(s[i + 3]) & 63u);
        len = 4;
      } else if (c >= 0xE0 && i + 2 < s.size()) {
        cp = ((c & 15u) << 12) | ((uint8_t(s[i + 1]) & 63u) << 6) | (uint8_t(s[i + 2]) & 63u);
        len = 3;
      } else if (c >= 0xC0 && i + 1 < s.size()) {
        cp = ((c & 31u) << 6) | (uint8_t(s[i + 1]) & 63u);
        len = 2;
      }
      if (cp >= 0x10000) {
        const uint32_t v = cp - 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      }
      out += buf;
      i += size_t(len - 1);
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

constexpr int kMaxJsonDepth = 256;

void spend(Budget* b, size_t bytes) {
  if (!b) return;
  if (!b->spend_steps(1)) throw std::runtime_error(b->steps_message());
  if (!b->spend_bytes(bytes)) throw std::runtime_error(b->bytes_message());
}

}  // namespace

namespace {

// to_json writes into one string rather than joining its children's strings at every level: the
// text is then built once, whatever the nesting, and spent from the budget as it grows.
struct JsonWriter {
  const JsonOptions& o;
  bool undefined_as_null;
  std::string out;
  size_t spent = 0;  // bytes of `out` already spent from the budget

  void flush() {
    spend(o.budget, out.size() - spent);
    spent = out.size();
  }
  void newline(int depth) {
    out += '\n';
    out.append(size_t(depth) * size_t(std::max(0, o.indent)), ' ');
    flush();
  }
  void write(const Value& v, int depth) {
    // A namespace or list can be made to contain itself (`set ns.x = [ns]`); JavaScript's
    // JSON.stringify refuses such cycles, and so do we, before the stack runs out.
    if (depth > kMaxJsonDepth)
      throw std::runtime_error("Cannot convert to JSON: nesting deeper than " +
                               std::to_string(kMaxJsonDepth) + " levels (cyclic structure?)");
    static const std::string kCommaSpace = ", ", kComma = ",", kColonSpace = ": ";
    switch (v.k) {
      case Value::K::kNull:
        out += "null";
        break;
      case Value::K::kUndefined:
        out += undefined_as_null ? "null" : "undefined";
        break;
      case Value::K::kBool:
        out += v.b ? "true" : "false";
        break;
      case Value::K::kInt:
        out += std::to_string(v.i);
        break;
      case Value::K::kFloat:
        out += std::isfinite(v.f) ? js_number(v.f) : "null";
        break;
      case Value::K::kStr:
        out += json_string(v.s, o.ensure_ascii);
        break;
      case Value::K::kArray:
      case Value::K::kTuple:
      case Value::K::kObject:
      case Value::K::kKwargs:
      case Value::K::kNamespace: {
        const std::string& item_sep = o.has_separators ? o.item_sep
                                      : o.indent > 0   ? kComma
                                                       : kCommaSpace;
        const std::string& key_sep = o.has_separators ? o.key_sep : kColonSpace;
        if (v.is_array()) {
          out += '[';
          for (size_t i = 0; i < v.arr->size(); ++i) {
            if (i) out += item_sep;
            if (o.indent > 0) newline(depth + 1);
            write((*v.arr)[i], depth + 1);
          }
          if (o.indent > 0 && !v.arr->empty()) newline(depth);
          out += ']';
          break;
        }
        const auto& items = v.obj->items;
        std::vector<size_t> order(items.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        if (o.sort_keys)
          std::stable_sort(order.begin(), order.end(),
                           [&](size_t a, size_t b) { return items[a].first < items[b].first; });
        out += '{';
        for (size_t i = 0; i < order.size(); ++i) {
          if (i) out += item_sep;
          if (o.indent > 0) newline(depth + 1);
          out += json_string(items[order[i]].first, o.ensure_ascii);
          out += key_sep;
          write(items[order[i]].second, depth + 1);
        }
        if (o.indent > 0 && !items.empty()) newline(depth);
        out += '}';
        break;
      }
      case Value::K::kFunc:
        throw std::runtime_error(std::string("Cannot convert to JSON: ") + v.type_name());
    }
    flush();
  }
};

}  // namespace

std::string to_json(const Value& v, const JsonOptions& o, bool undefined_as_null, int depth) {
  JsonWriter w{o, undefined_as_null, {}, 0};
  w.write(v, depth);
  return std::move(w.out);
}

std::string to_output(const Value& v, Budget* budget) {
  return v.none_or_undefined() ? std::string() : rt_string(v, budget);
}

std::string js_string(const Value& v, Budget* budget) {
  switch (v.k) {
    case Value::K::kStr:
      return v.s;
    case Value::K::kInt:
      return std::to_string(v.i);
    case Value::K::kFloat:
      return js_number(v.f);
    case Value::K::kBool:
      return v.b ? "true" : "false";
    case Value::K::kNull:
      return "null";
    case Value::K::kUndefined:
      return "undefined";
    case Value::K::kArray:
    case Value::K::kTuple: {
      std::string r;
      for (size_t i = 0; i < v.arr->size(); ++i) {
        if (i) r += ',';
        spend(budget, 0);
        r += rt_string((*v.arr)[i], budget);
      }
      return r;
    }
    case Value::K::kFunc:
      return "function";
    default:
      return "[object Map]";
  }
}

std::string rt_string(const Value& v, Budget* budget) {
  switch (v.k) {
    case Value::K::kUndefined:
      return "undefined";
    case Value::K::kNull:
      return "null";
    case Value::K::kBool:
      return v.b ? "true" : "false";
    case Value::K::kInt:
      return std::to_string(v.i);
    case Value::K::kFloat:
      if (v.f == 0 && std::signbit(v.f)) return "-0.0";
      if (std::isfinite(v.f) && v.f == std::floor(v.f) && std::fabs(v.f) < 1e21) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.1f", v.f);
        return buf;
      }
      return js_number(v.f);
    case Value::K::kStr:
      return v.s;
    case Value::K::kFunc:
      return "function";
    default: {
      JsonOptions o;
      o.budget = budget;
      return to_json(v, o, false);
    }
  }
}

bool strict_equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.num() == b.num();
  if (a.k != b.k) {
    return false;
  }
  switch (a.k) {
    case Value::K::kUndefined:
    case Value::K::kNull:
      return true;
    case Value::K::kBool:
      return a.b == b.b;
    case Value::K::kStr:
      return a.s == b.s;
    case Value::K::kArray:
    case Value::K::kTuple:
      return a.arr == b.arr;
    case Value::K::kFunc:
      return a.fn == b.fn;
    default:
      return a.obj == b.obj;
  }
}

bool loose_equals(const Value& a, const Value& b) {
  if (a.none_or_undefined() || b.none_or_undefined())
    return a.none_or_undefined() && b.none_or_undefined();
  const bool pa = a.k == Value::K::kBool || a.is_number() || a.k == Value::K::kStr;
  const bool pb = b.k == Value::K::kBool || b.is_number() || b.k == Value::K::kStr;
  if (pa && pb) {
    if (a.k == Value::K::kStr && b.k == Value::K::kStr) return a.s == b.s;
    // Otherwise JavaScript compares as numbers.
    auto to_num = [](const Value& x) -> double {
      if (x.k != Value::K::kStr) return x.num();
      const std::string& s = x.s;
      size_t b0 = s.find_first_not_of(" \t\n\r\f\v"), e0 = s.find_last_not_of(" \t\n\r\f\v");
      if (b0 == std::string::npos) return 0.0;
      const std::string t = s.substr(b0, e0 - b0 + 1);
      char* end = nullptr;
      const double d = std::strtod(t.c_str(), &end);
      return *end ? std::nan("") : d;
    };
    return to_num(a) == to_num(b);
  }
  return strict_equals(a, b);
}

}  // namespace hearth::templates::jinja
