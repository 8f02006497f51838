#include "grammar/json_schema.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <vector>

#include "grammar/grammar.h"

namespace hearth::grammar {
namespace {

using ojson = nlohmann::ordered_json;

constexpr int kMaxDepth = 32;      // schema nesting
constexpr int kAnyValueDepth = 6;  // free-form JSON nests at most this deep (so it ends)

std::string lit(std::string_view s) {
  return gbnf_literal(s);
}

std::string repeat_digits(int n) {
  return n <= 0 ? "" : n == 1 ? "[0-9]" : "[0-9]{" + std::to_string(n) + "}";
}

// Non-negative integers with the same number of digits, a <= b (decimal strings, no sign).
std::string same_len_range(const std::string& a, const std::string& b) {
  if (a == b) return lit(a);
  const size_t n = a.size();
  if (n == 1) return std::string("[") + a[0] + "-" + b[0] + "]";
  if (a[0] == b[0])
    return lit(a.substr(0, 1)) + " (" + same_len_range(a.substr(1), b.substr(1)) + ")";
  std::vector<std::string> alts;
  alts.push_back(lit(a.substr(0, 1)) + " (" + same_len_range(a.substr(1), std::string(n - 1, '9')) +
                 ")");
  if (a[0] + 1 <= b[0] - 1)
    alts.push_back(std::string("[") + char(a[0] + 1) + "-" + char(b[0] - 1) + "] " +
                   repeat_digits(int(n - 1)));
  alts.push_back(lit(b.substr(0, 1)) + " (" + same_len_range(std::string(n - 1, '0'), b.substr(1)) +
                 ")");
  std::string r;
  for (size_t i = 0; i < alts.size(); ++i) r += (i ? " | " : "") + alts[i];
  return r;
}

// Non-negative integers in [lo, hi] (hi < 0: unbounded), no leading zeros.
std::string uint_range(int64_t lo, int64_t hi) {
  constexpr int kMaxDigits = 16;
  std::vector<std::string> alts;
  const std::string ls = std::to_string(lo);
  const int hd = hi < 0 ? kMaxDigits : int(std::to_string(hi).size());
  for (int d = int(ls.size()); d <= hd; ++d) {
    const int64_t first = d == 1 ? 0 : int64_t(std::pow(10.0, d - 1));
    const int64_t last = int64_t(std::pow(10.0, d)) - 1;
    const int64_t a = std::max(lo, first);
    const int64_t b = hi < 0 ? last : std::min(hi, last);
    if (a > b) continue;
    if (hi < 0 && a == first && d > int(ls.size())) {  // every longer number
      alts.push_back((d == 1 ? std::string("[0-9]")
                             : "[1-9] [0-9]{" + std::to_string(d - 1) + "," +
                                   std::to_string(kMaxDigits - 1) + "}"));
      break;
    }
    alts.push_back(same_len_range(std::to_string(a), std::to_string(b)));
  }
  std::string r;
  for (size_t i = 0; i < alts.size(); ++i) r += (i ? " | " : "") + ("(" + alts[i] + ")");
  return r.empty() ? "[0-9]" : r;
}

// A non-negative count bound pair (minItems/maxItems, minLength/maxLength): lo defaults to 0,
// hi to -1 (none); both at most `limit`.
Status count_bounds(const ojson& s, const char* min_key, const char* max_key, int64_t limit,
                    int64_t& lo, int64_t& hi) {
  lo = 0;
  hi = -1;
  if (s.contains(min_key)) {
    if (!s[min_key].is_number_integer() || s[min_key].get<int64_t>() < 0)
      return invalid_argument(std::string("'") + min_key + "' must be a non-negative integer");
    lo = s[min_key].get<int64_t>();
  }
  if (s.contains(max_key)) {
    if (!s[max_key].is_number_integer() || s[max_key].get<int64_t>() < lo)
      return invalid_argument(std::string("'") + max_key + "' must be an integer >= " + min_key);
    hi = s[max_key].get<int64_t>();
  }
  if (lo > limit || hi > limit)
    return invalid_argument(std::string(min_key) + " / " + max_key + " above " +
                            std::to_string(limit) + " are not supported");
  return Status::ok();
}

bool integral(double x) {
  return std::isfinite(x) && std::floor(x) == x && std::fabs(x) < 1e15;
}

const std::set<std::string>& known_keywords() {
  static const std::set<std::string> k = {"type",
                                          "properties",
                                          "required",
                                          "additionalProperties",
                                          "enum",
                                          "const",
                                          "items",
                                          "minItems",
                                          "maxItems",
                                          "minLength",
                                          "maxLength",
                                          "pattern",
                                          "minimum",
                                          "maximum",
                                          "exclusiveMinimum",
                                          "exclusiveMaximum",
                                          "anyOf",
                                          "oneOf",
                                          "allOf",
                                          "$ref",
                                          "$defs",
                                          "definitions",
                                          "format",
                                          "title",
                                          "description",
                                          "default",
                                          "examples",
                                          "$schema",
                                          "$id",
                                          "$comment",
                                          "readOnly",
                                          "writeOnly",
                                          "deprecated",
                                          "nullable",
                                          "strict"};
  return k;
}

}  // namespace

SchemaCompiler::SchemaCompiler(std::string prefix) : prefix_(std::move(prefix)) {}

std::string SchemaCompiler::common(const std::string& name, const std::string& body) {
  const std::string n = prefix_ + name;
  if (common_done_.insert(n).second) rules_[n] = body;
  return n;
}

std::string SchemaCompiler::add(const std::string& hint, const std::string& body) {
  const std::string n = prefix_ + hint + "-" + std::to_string(counter_++);
  rules_[n] = body;
  return n;
}

std::string SchemaCompiler::ws() {
  return common("ws", "| \" \" | \"\\n\" [ \\t]{0,20}");
}

std::string SchemaCompiler::string_rule() {
  const std::string c = common(
      "char", "[^\"\\\\\\x00-\\x1F\\x7F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})");
  return common("string", "\"\\\"\" " + c + "* \"\\\"\"");
}

std::string SchemaCompiler::any_value() {
  // Bounded nesting: value-k holds objects / arrays of value-(k+1); the deepest only scalars.
  const std::string w = ws(), s = string_rule();
  const std::string num = common(
      "number", "\"-\"? ([0-9] | [1-9] [0-9]{0,15}) (\".\" [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?");
  const std::string scalar =
      common("scalar", s + " | " + num + " | \"true\" | \"false\" | \"null\"");
  std::string below = scalar;
  for (int d = kAnyValueDepth; d >= 0; --d) {
    const std::string sfx = "-" + std::to_string(d);
    const std::string obj =
        common("object" + sfx, "\"{\" " + w + " (" + s + " " + w + " \":\" " + w + " " + below +
                                   " (\",\" " + w + " " + s + " " + w + " \":\" " + w + " " +
                                   below + ")*)? " + w + " \"}\"");
    const std::string arr = common("array" + sfx, "\"[\" " + w + " (" + below + " (\",\" " + w +
                                                      " " + below + ")*)? " + w + " \"]\"");
    below = common("value" + sfx, scalar + " | " + obj + " | " + arr);
  }
  return below;
}

std::string SchemaCompiler::any_object() {
  any_value();
  return prefix_ + "object-0";
}

std::string SchemaCompiler::rules() const {
  std::string r;
  for (const auto& [n, b] : rules_) r += n + " ::= " + b + "\n";
  return r;
}

Result<std::string> SchemaCompiler::value(const ojson& schema) {
  root_ = &schema;
  return visit(schema, 0);
}

Result<std::string> SchemaCompiler::visit(const ojson& s, int depth) {
  if (depth > kMaxDepth) return invalid_argument("JSON schema nests too deeply");
  if (s.is_boolean()) {
    if (s.get<bool>()) return any_value();
    return invalid_argument("a 'false' schema admits no value");
  }
  if (!s.is_object()) return invalid_argument("a JSON schema must be an object");
  for (const auto& [k, v] : s.items())
    if (!known_keywords().count(k))
      return invalid_argument("unsupported JSON Schema keyword '" + k + "'");
  if (s.contains("$ref")) {
    if (!s["$ref"].is_string()) return invalid_argument("'$ref' must be a string");
    const std::string ref = s["$ref"].get<std::string>();
    if (auto it = refs_.find(ref); it != refs_.end()) return it->second;
    const ojson* target = nullptr;
    for (const char* pfx : {"#/$defs/", "#/definitions/"})
      if (ref.rfind(pfx, 0) == 0) {
        const std::string key = ref.substr(std::string(pfx).size());
        const char* container = pfx[2] == '$' ? "$defs" : "definitions";
        if (root_ && root_->contains(container) && (*root_)[container].contains(key))
          target = &(*root_)[container][key];
      }
    if (ref == "#") target = root_;
    if (!target)
      return invalid_argument("'$ref' " + ref + " does not resolve (only local #/$defs/ refs)");
    // Named first, so a recursive schema refers to itself.
    const std::string name = add("ref", "");
    refs_[ref] = name;
    HEARTH_ASSIGN_OR_RETURN(std::string body, visit(*target, depth + 1));
    rules_[name] = body;
    return name;
  }
  const bool nullable =
      s.contains("nullable") && s["nullable"].is_boolean() && s["nullable"].get<bool>();
  auto with_null = [&](std::string r) -> Result<std::string> {
    return nullable ? add("nullable", r + " | \"null\"") : r;
  };
  if (s.contains("const")) return with_null(add("const", lit(s["const"].dump())));
  if (s.contains("enum")) {
    if (!s["enum"].is_array() || s["enum"].empty())
      return invalid_argument("'enum' must be a non-empty array");
    std::string body;
    for (const auto& v : s["enum"]) body += (body.empty() ? "" : " | ") + lit(v.dump());
    return with_null(add("enum", body));
  }
  for (const char* k : {"anyOf", "oneOf", "allOf"})
    if (s.contains(k)) {
      if (!s[k].is_array() || s[k].empty())
        return invalid_argument(std::string("'") + k + "' must be a non-empty array");
      if (k[1] == 'l' && s[k].size() > 1)
        return invalid_argument("'allOf' with more than one schema is not supported");
      std::string body;
      for (const auto& sub : s[k]) {
        HEARTH_ASSIGN_OR_RETURN(std::string r, visit(sub, depth + 1));
        body += (body.empty() ? "" : " | ") + r;
      }
      return with_null(add(k, body));
    }
  std::vector<std::string> types;
  if (s.contains("type")) {
    const ojson& t = s["type"];
    if (t.is_string())
      types.push_back(t.get<std::string>());
    else if (t.is_array())
      for (const auto& x : t) {
        if (!x.is_string()) return invalid_argument("'type' entries must be strings");
        types.push_back(x.get<std::string>());
      }
    else
      return invalid_argument("'type' must be a string or an array");
  } else {
    // Untyped: implied by the keywords present, else any value.
    if (s.contains("properties") || s.contains("additionalProperties"))
      types.push_back("object");
    else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems"))
      types.push_back("array");
    else if (s.contains("pattern") || s.contains("minLength") || s.contains("maxLength") ||
             s.contains("format"))
      types.push_back("string");
    else if (s.contains("minimum") || s.contains("maximum") || s.contains("exclusiveMinimum") ||
             s.contains("exclusiveMaximum"))
      types.push_back("number");
    else
      return with_null(any_value());
  }
  std::string body;
  for (const auto& t : types) {
    Result<std::string> r = invalid_argument("");
    if (t == "object")
      r = object(s, depth);
    else if (t == "array")
      r = array(s, depth);
    else if (t == "string")
      r = string(s);
    else if (t == "number")
      r = number(s, false);
    else if (t == "integer")
      r = number(s, true);
    else if (t == "boolean")
      r = std::string("(\"true\" | \"false\")");
    else if (t == "null")
      r = std::string("\"null\"");
    else
      return invalid_argument("unknown JSON Schema type '" + t + "'");
    if (!r) return r.status();
    body += (body.empty() ? "" : " | ") + *r;
  }
  return with_null(add("type", body));
}

Result<std::string> SchemaCompiler::object(const ojson& s, int depth) {
  const std::string w = ws(), str = string_rule();
  std::vector<std::string> req;
  if (s.contains("required")) {
    if (!s["required"].is_array()) return invalid_argument("'required' must be an array");
    for (const auto& r : s["required"]) {
      if (!r.is_string()) return invalid_argument("'required' entries must be strings");
      req.push_back(r.get<std::string>());
    }
  }
  const ojson props = s.contains("properties") ? s["properties"] : ojson::object();
  if (!props.is_object()) return invalid_argument("'properties' must be an object");
  // Extra keys: allowed when additionalProperties says so, or when no properties are listed.
  std::string extra;
  if (s.contains("additionalProperties")) {
    const ojson& ap = s["additionalProperties"];
    if (!(ap.is_boolean() && !ap.get<bool>())) {
      HEARTH_ASSIGN_OR_RETURN(
          std::string v, ap.is_boolean() ? Result<std::string>(any_value()) : visit(ap, depth + 1));
      extra = add("kv", str + " " + w + " \":\" " + w + " " + v);
    }
  } else if (props.empty()) {
    extra = add("kv", str + " " + w + " \":\" " + w + " " + any_value());
  }
  std::vector<std::string> rq, op;  // key-value rules, required (in `required` order) then optional
  for (const auto& name : req) {
    if (!props.contains(name)) {
      if (extra.empty())
        return invalid_argument("required property '" + name + "' is not in 'properties'");
      rq.push_back(
          add("kv", lit(ojson(name).dump()) + " " + w + " \":\" " + w + " " + any_value()));
      continue;
    }
    HEARTH_ASSIGN_OR_RETURN(std::string v, visit(props[name], depth + 1));
    rq.push_back(add("kv", lit(ojson(name).dump()) + " " + w + " \":\" " + w + " " + v));
  }
  for (const auto& [name, sub] : props.items()) {
    if (std::find(req.begin(), req.end(), name) != req.end()) continue;
    HEARTH_ASSIGN_OR_RETURN(std::string v, visit(sub, depth + 1));
    op.push_back(add("kv", lit(ojson(name).dump()) + " " + w + " \":\" " + w + " " + v));
  }
  const std::string comma = "\",\" " + w + " ";
  std::string tail;  // optional properties after at least one key, then extra keys
  for (const auto& o : op) tail += " (" + comma + o + ")?";
  if (!extra.empty()) tail += " (" + comma + extra + ")*";
  std::string inner;
  if (!rq.empty()) {
    inner = rq[0];
    for (size_t i = 1; i < rq.size(); ++i) inner += " " + comma + rq[i];
    inner += tail;
  } else {
    // None required: whichever optional key comes first, then the later ones.
    std::vector<std::string> firsts;
    for (size_t i = 0; i < op.size(); ++i) {
      std::string f = op[i];
      for (size_t j = i + 1; j < op.size(); ++j) f += " (" + comma + op[j] + ")?";
      if (!extra.empty()) f += " (" + comma + extra + ")*";
      firsts.push_back(f);
    }
    if (!extra.empty()) firsts.push_back(extra + " (" + comma + extra + ")*");
    for (size_t i = 0; i < firsts.size(); ++i) inner += (i ? " | " : "") + firsts[i];
    if (!inner.empty()) inner = "(" + inner + ")?";
  }
  return add("object", "\"{\" " + w + " " + (inner.empty() ? "" : inner + " ") + w + " \"}\"");
}

Result<std::string> SchemaCompiler::array(const ojson& s, int depth) {
  const std::string w = ws();
  std::string item;
  if (s.contains("items")) {
    HEARTH_ASSIGN_OR_RETURN(item, visit(s["items"], depth + 1));
  } else {
    item = any_value();
  }
  int64_t lo, hi;
  HEARTH_RETURN_IF_ERROR(count_bounds(s, "minItems", "maxItems", 1000, lo, hi));
  const std::string more = "(\",\" " + w + " " + item + ")";
  std::string rep;
  const int64_t more_lo = std::max<int64_t>(lo - 1, 0);
  if (hi < 0)
    rep = more + "{" + std::to_string(more_lo) + ",}";
  else
    rep = more + "{" + std::to_string(more_lo) + "," +
          std::to_string(std::max<int64_t>(hi - 1, 0)) + "}";
  std::string body;
  if (hi == 0)
    body = "\"[\" " + w + " \"]\"";
  else if (lo == 0)
    body = "\"[\" " + w + " (" + item + " " + rep + ")? " + w + " \"]\"";
  else
    body = "\"[\" " + w + " " + item + " " + rep + " " + w + " \"]\"";
  return add("array", body);
}

Result<std::string> SchemaCompiler::string(const ojson& s) {
  string_rule();
  const std::string c = prefix_ + "char";
  if (s.contains("format") && s["format"].is_string()) {
    const std::string f = s["format"].get<std::string>();
    const std::string date =
        "[0-9]{4} \"-\" (\"0\" [1-9] | \"1\" [0-2]) \"-\" (\"0\" [1-9] | [1-2] [0-9] | \"3\" "
        "[0-1])";
    const std::string time =
        "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,6})? "
        "(\"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])";
    std::string body;
    if (f == "date") body = date;
    if (f == "time") body = time;
    if (f == "date-time") body = date + " \"T\" " + time;
    if (f == "uuid")
      body =
          "[0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" "
          "[0-9a-fA-F]{12}";
    if (!body.empty()) return add("format", "\"\\\"\" " + body + " \"\\\"\"");
    // Other formats are annotations (JSON Schema 2020-12): any string.
  }
  if (s.contains("pattern")) {
    if (!s["pattern"].is_string()) return invalid_argument("'pattern' must be a string");
    if (s.contains("minLength") || s.contains("maxLength"))
      return invalid_argument("'pattern' together with minLength / maxLength is not supported");
    HEARTH_ASSIGN_OR_RETURN(std::string r, regex_to_gbnf(s["pattern"].get<std::string>()));
    return add("pattern", "\"\\\"\" (" + r + ") \"\\\"\"");
  }
  int64_t lo, hi;
  HEARTH_RETURN_IF_ERROR(count_bounds(s, "minLength", "maxLength", 10000, lo, hi));
  if (lo == 0 && hi < 0) return prefix_ + "string";
  const std::string rep = hi < 0 ? "{" + std::to_string(lo) + ",}"
                                 : "{" + std::to_string(lo) + "," + std::to_string(hi) + "}";
  return add("string", "\"\\\"\" " + c + rep + " \"\\\"\"");
}

Result<std::string> SchemaCompiler::number(const ojson& s, bool integer) {
  const bool bounded = s.contains("minimum") || s.contains("maximum") ||
                       s.contains("exclusiveMinimum") || s.contains("exclusiveMaximum");
  if (!bounded) {
    if (integer) return common("integer", "\"-\"? ([0-9] | [1-9] [0-9]{0,15})");
    any_value();
    return prefix_ + "number";
  }
  // Bounds: [lo, hi] with exclusive flags; JSON Schema draft 4's boolean exclusives too.
  double lo = -INFINITY, hi = INFINITY;
  bool lo_x = false, hi_x = false;
  auto num = [&](const char* k, double& out) -> Status {
    if (!s.contains(k) || s[k].is_boolean()) return Status::ok();
    if (!s[k].is_number()) return invalid_argument(std::string("'") + k + "' must be a number");
    out = s[k].get<double>();
    return Status::ok();
  };
  HEARTH_RETURN_IF_ERROR(num("minimum", lo));
  HEARTH_RETURN_IF_ERROR(num("maximum", hi));
  double elo = -INFINITY, ehi = INFINITY;
  HEARTH_RETURN_IF_ERROR(num("exclusiveMinimum", elo));
  HEARTH_RETURN_IF_ERROR(num("exclusiveMaximum", ehi));
  if (s.contains("exclusiveMinimum") && s["exclusiveMinimum"].is_boolean())
    lo_x = s["exclusiveMinimum"].get<bool>();
  if (s.contains("exclusiveMaximum") && s["exclusiveMaximum"].is_boolean())
    hi_x = s["exclusiveMaximum"].get<bool>();
  if (elo >= lo) {
    lo = elo;
    lo_x = true;
  }
  if (ehi <= hi) {
    hi = ehi;
    hi_x = true;
  }
  for (double b : {lo, hi})
    if (std::isfinite(b) && !integral(b))
      return invalid_argument("number bounds must be whole numbers (got " + ojson(b).dump() + ")");
  if (lo > hi || (lo == hi && (lo_x || hi_x)))
    return invalid_argument("the number bounds admit no value");
  if (integer) {
    int64_t a = std::isfinite(lo) ? int64_t(lo) + (lo_x ? 1 : 0) : INT64_MIN;
    int64_t b = std::isfinite(hi) ? int64_t(hi) - (hi_x ? 1 : 0) : INT64_MAX;
    if (a > b) return invalid_argument("the integer bounds admit no value");
    std::vector<std::string> alts;
    if (b >= 0) alts.push_back(uint_range(std::max<int64_t>(a, 0), b == INT64_MAX ? -1 : b));
    if (a < 0) {
      const int64_t na = std::max<int64_t>(b < 0 ? -b : 1, 1);
      alts.push_back("\"-\" (" + uint_range(na, a == INT64_MIN ? -1 : -a) + ")");
    }
    std::string body;
    for (const auto& x : alts) body += (body.empty() ? "" : " | ") + ("(" + x + ")");
    return add("integer", body);
  }
  // Numbers with whole bounds: the integer part decides, the fraction only at the ends.
  const std::string frac = "(\".\" [0-9]{1,16})?", zero_frac = "(\".\" \"0\"{1,16})?",
                    nonzero_frac = "\".\" \"0\"{0,15} [1-9] [0-9]{0,15}";
  // Non-negative magnitudes m with a <= m <= b (b < 0: unbounded) and exclusive flags.
  auto side = [&](int64_t a, bool ax, int64_t b, bool bx) -> std::string {
    std::vector<std::string> alts;
    const int64_t first_any = ax ? a + 1 : a;  // integer parts taking any fraction
    const int64_t last_any = b < 0 ? -1 : b - 1;
    if (b < 0 || first_any <= last_any)
      alts.push_back("(" + uint_range(first_any, last_any) + ") " + frac);
    if (ax) alts.push_back(lit(std::to_string(a)) + " " + nonzero_frac);
    if (b >= 0 && !bx && b >= a && !(ax && a == b))
      alts.push_back(lit(std::to_string(b)) + " " + zero_frac);
    std::string r;
    for (const auto& x : alts) r += (r.empty() ? "" : " | ") + ("(" + x + ")");
    return r;
  };
  std::vector<std::string> alts;
  if (hi >= 0) {
    const bool from_zero = lo < 0;
    alts.push_back(side(from_zero ? 0 : int64_t(lo), from_zero ? false : lo_x,
                        std::isfinite(hi) ? int64_t(hi) : -1, hi_x));
  }
  if (lo < 0) {  // "-" m with m in [max(0, -hi), -lo], and m > 0 when the positive side has 0
    const bool to_zero = hi >= 0;
    alts.push_back("\"-\" (" +
                   side(to_zero ? 0 : int64_t(-hi), to_zero ? true : hi_x,
                        std::isfinite(lo) ? int64_t(-lo) : -1, lo_x) +
                   ")");
  }
  std::string body;
  for (const auto& x : alts) body += (body.empty() ? "" : " | ") + ("(" + x + ")");
  return add("number", body);
}

// ---- Regex subset

namespace {

class RegexToGbnf {
 public:
  explicit RegexToGbnf(const std::string& p) : p_(p) {}
  Result<std::string> run() {
    bool anchored_start = false, anchored_end = false;
    if (!p_.empty() && p_[0] == '^') {
      anchored_start = true;
      i_ = 1;
    }
    size_t end = p_.size();
    if (end > i_ && p_[end - 1] == '$' && (end < 2 || p_[end - 2] != '\\')) {
      anchored_end = true;
      end -= 1;
    }
    end_ = end;
    HEARTH_ASSIGN_OR_RETURN(std::string r, alt());
    if (i_ != end_) return invalid_argument("pattern: unexpected '" + std::string(1, p_[i_]) + "'");
    const std::string any = "[^\"\\\\\\x00-\\x1F\\x7F]*";
    return (anchored_start ? "" : any + " ") + "(" + r + ")" + (anchored_end ? "" : " " + any);
  }

 private:
  Result<std::string> alt() {
    std::string r;
    for (;;) {
      HEARTH_ASSIGN_OR_RETURN(std::string s, seq());
      r += (r.empty() ? "" : " | ") + (s.empty() ? "\"\"" : s);
      if (i_ < end_ && p_[i_] == '|') {
        ++i_;
        continue;
      }
      return r;
    }
  }
  Result<std::string> seq() {
    std::string r;
    while (i_ < end_ && p_[i_] != '|' && p_[i_] != ')') {
      HEARTH_ASSIGN_OR_RETURN(std::string a, atom());
      if (i_ < end_ && (p_[i_] == '*' || p_[i_] == '+' || p_[i_] == '?')) {
        a = "(" + a + ")" + p_[i_++];
        if (i_ < end_ && p_[i_] == '?') ++i_;  // lazy: same language
      } else if (i_ < end_ && p_[i_] == '{') {
        const size_t close = p_.find('}', i_);
        if (close == std::string::npos || close > end_)
          return invalid_argument("pattern: unterminated {");
        a = "(" + a + ")" + p_.substr(i_, close - i_ + 1);
        i_ = close + 1;
      }
      r += (r.empty() ? "" : " ") + a;
    }
    return r;
  }
  // One character of a JSON string's content, spelled as the JSON text that encodes it.
  static std::string json_char(uint32_t c) {
    if (c == '"') return gbnf_literal("\\\"");
    if (c == '\\') return gbnf_literal("\\\\");
    if (c == '\n') return gbnf_literal("\\n");
    if (c == '\t') return gbnf_literal("\\t");
    if (c == '\r') return gbnf_literal("\\r");
    std::string s;
    if (c < 0x80)
      s += char(c);
    else
      return "";  // non-ASCII literals: see atom()
    return gbnf_literal(s);
  }
  Result<std::string> atom() {
    const char c = p_[i_++];
    switch (c) {
      case '(': {
        if (p_.compare(i_, 2, "?:") == 0)
          i_ += 2;
        else if (i_ < end_ && p_[i_] == '?')
          return invalid_argument("pattern: lookarounds are not supported");
        HEARTH_ASSIGN_OR_RETURN(std::string r, alt());
        if (i_ >= end_ || p_[i_] != ')') return invalid_argument("pattern: missing )");
        ++i_;
        return "(" + r + ")";
      }
      case '[':
        return cls();
      case '.':
        return std::string("[^\"\\\\\\x00-\\x1F\\x7F]");
      case '\\':
        return escape(false);
      case '^':
      case '$':
        return invalid_argument("pattern: anchors inside the pattern are not supported");
      case '*':
      case '+':
      case '?':
      case '{':
        return invalid_argument(std::string("pattern: nothing to repeat before '") + c + "'");
      default: {
        // A UTF-8 character of the pattern, copied as is.
        const unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x80) return json_char(u);
        std::string s(1, c);
        while (i_ < end_ && (static_cast<unsigned char>(p_[i_]) & 0xC0) == 0x80) s += p_[i_++];
        return gbnf_literal(s);
      }
    }
  }
  // \d \w \s and friends as class bodies (without brackets); escaped literals otherwise.
  Result<std::string> escape(bool in_class) {
    if (i_ >= end_) return invalid_argument("pattern: trailing backslash");
    const char e = p_[i_++];
    const char* body = nullptr;
    switch (e) {
      case 'd':
        body = "0-9";
        break;
      case 'w':
        body = "a-zA-Z0-9_";
        break;
      case 's':
        body = " \\t\\n\\r";
        break;
      case 'D':
        return in_class ? Result<std::string>(invalid_argument("pattern: \\D in a class"))
                        : std::string("[^0-9\"\\\\\\x00-\\x1F\\x7F]");
      case 'W':
        return in_class ? Result<std::string>(invalid_argument("pattern: \\W in a class"))
                        : std::string("[^a-zA-Z0-9_\"\\\\\\x00-\\x1F\\x7F]");
      case 'S':
        return in_class ? Result<std::string>(invalid_argument("pattern: \\S in a class"))
                        : std::string("[^ \\t\\n\\r\"\\\\\\x00-\\x1F\\x7F]");
      case 'n':
        return in_class ? std::string("\\n") : json_char('\n');
      case 't':
        return in_class ? std::string("\\t") : json_char('\t');
      case 'b':
      case 'B':
        return invalid_argument("pattern: word boundaries are not supported");
      default:
        if (std::isalnum(static_cast<unsigned char>(e)))
          return invalid_argument(std::string("pattern: \\") + e + " is not supported");
        if (in_class) return std::string("\\") + e;
        return json_char(static_cast<unsigned char>(e));
    }
    return in_class ? std::string(body) : "[" + std::string(body) + "]";
  }
  Result<std::string> cls() {
    bool neg = false;
    if (i_ < end_ && p_[i_] == '^') {
      neg = true;
      ++i_;
    }
    std::string body;
    bool quote = false, backslash = false;
    bool first = true;
    while (i_ < end_ && (p_[i_] != ']' || first)) {
      first = false;
      const char c = p_[i_];
      if (c == '\\') {
        ++i_;
        HEARTH_ASSIGN_OR_RETURN(std::string e, escape(true));
        if (e == "\\\"")
          quote = true;
        else if (e == "\\\\")
          backslash = true;
        else
          body += e;
        continue;
      }
      ++i_;
      if (c == '"')
        quote = true;
      else if (c == '[')
        body += "\\[";
      else
        body += c;
    }
    if (i_ >= end_) return invalid_argument("pattern: unterminated [");
    ++i_;
    if (neg) return "[^" + body + "\"\\\\\\x00-\\x1F\\x7F]";
    std::string r = body.empty() ? "" : "[" + body + "]";
    if (quote) r += (r.empty() ? "" : " | ") + gbnf_literal("\\\"");
    if (backslash) r += (r.empty() ? "" : " | ") + gbnf_literal("\\\\");
    if (r.empty()) return invalid_argument("pattern: empty class");
    return "(" + r + ")";
  }
  const std::string& p_;
  size_t i_ = 0, end_ = 0;
};

}  // namespace

Result<std::string> regex_to_gbnf(const std::string& pattern) {
  return RegexToGbnf(pattern).run();
}

Result<std::string> json_schema_grammar(const ojson& schema) {
  SchemaCompiler c;
  std::string root;
  if (schema.is_string() && schema.get<std::string>() == "json") {
    root = c.any_object();
  } else {
    HEARTH_ASSIGN_OR_RETURN(root, c.value(schema));
  }
  const std::string w = c.ws();  // before rules(), which must include it
  return "root ::= " + w + " " + root + " " + w + "\n" + c.rules();
}

}  // namespace hearth::grammar
