#include "parsers/calls.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "base/json_depth.h"

namespace hearth::parsers {
namespace {

using ojson = nlohmann::ordered_json;

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = char(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

ojson parse_json(std::string_view s) {
  return parse_json_bounded<ojson>(s);
}

// The end of the JSON value (object or array) starting at s[pos], strings and escapes respected;
// npos if it does not close.
size_t json_value_end(std::string_view s, size_t pos) {
  int depth = 0;
  bool in_str = false, esc = false;
  for (size_t i = pos; i < s.size(); ++i) {
    const char c = s[i];
    if (in_str) {
      if (esc)
        esc = false;
      else if (c == '\\')
        esc = true;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

// Arguments given as an object, or as a string holding one (some models and clients).
bool arguments_of(const ojson& v, ojson& args) {
  if (v.is_null()) {
    args = ojson::object();
    return true;
  }
  if (v.is_object()) {
    args = v;
    return true;
  }
  if (v.is_string()) {
    ojson p = parse_json(v.get<std::string>());
    if (p.is_object()) {
      args = std::move(p);
      return true;
    }
  }
  return false;
}

// {"name": ..., "arguments" | "parameters": ...} (optionally "type": "function", or the call
// wrapped in "function").
bool call_from_object(const ojson& o, ToolCall& c) {
  if (!o.is_object()) return false;
  if (o.contains("function") && o["function"].is_object() && !o.contains("name"))
    return call_from_object(o["function"], c);
  if (!o.contains("name") || !o["name"].is_string()) return false;
  c.name = o["name"].get<std::string>();
  if (c.name.empty()) return false;
  const ojson* a = nullptr;
  if (o.contains("arguments"))
    a = &o["arguments"];
  else if (o.contains("parameters"))
    a = &o["parameters"];
  static const ojson kNull;
  return arguments_of(a ? *a : kNull, c.arguments);
}

bool fail(std::string* error, std::string why) {
  if (error) *error = std::move(why);
  return false;
}

// ---- Hermes JSON

bool parse_hermes(std::string_view body, std::vector<ToolCall>& out, std::string* error) {
  const ojson o = parse_json(trim(body));
  ToolCall c;
  if (!call_from_object(o, c)) return fail(error, "not a {\"name\", \"arguments\"} JSON object");
  out.push_back(std::move(c));
  return true;
}

// ---- Qwen XML

const ojson* param_schema(const ojson& tools, std::string_view fn, std::string_view param) {
  if (!tools.is_array()) return nullptr;
  for (const auto& t : tools) {
    const ojson* f = t.is_object() && t.contains("function") ? &t["function"] : &t;
    if (!f->is_object() || !f->contains("name") || (*f)["name"] != fn) continue;
    if (!f->contains("parameters")) return nullptr;
    const ojson& p = (*f)["parameters"];
    if (!p.is_object() || !p.contains("properties") || !p["properties"].is_object()) return nullptr;
    const auto it = p["properties"].find(std::string(param));
    return it == p["properties"].end() ? nullptr : &*it;
  }
  return nullptr;
}

void collect_types(const ojson& s, std::vector<std::string>& types, int depth = 0) {
  if (!s.is_object() || depth > 8) return;
  if (s.contains("type")) {
    const ojson& t = s["type"];
    if (t.is_string()) types.push_back(t.get<std::string>());
    if (t.is_array())
      for (const auto& x : t)
        if (x.is_string()) types.push_back(x.get<std::string>());
  }
  for (const char* k : {"anyOf", "oneOf"})
    if (s.contains(k) && s[k].is_array())
      for (const auto& x : s[k]) collect_types(x, types, depth + 1);
  if (s.contains("enum") && s["enum"].is_array() && types.empty())
    for (const auto& x : s["enum"]) {
      if (x.is_string()) types.push_back("string");
      if (x.is_number_integer()) types.push_back("integer");
      if (x.is_number_float()) types.push_back("number");
      if (x.is_boolean()) types.push_back("boolean");
    }
}

std::optional<ojson> as_integer(std::string_view v) {
  int64_t x = 0;
  const char* b = v.data();
  const char* e = v.data() + v.size();
  if (!v.empty() && v.front() == '+') ++b;
  const auto r = std::from_chars(b, e, x);
  if (r.ec != std::errc() || r.ptr != e || b == e) return std::nullopt;
  return ojson(x);
}

std::optional<ojson> as_number(std::string_view v) {
  if (v.empty()) return std::nullopt;
  const std::string s(v);
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(d)) return std::nullopt;
  if (std::floor(d) == d && std::fabs(d) < 9.0e15) return ojson(int64_t(d));
  return ojson(d);
}

bool has(const std::vector<std::string>& types, std::string_view t) {
  for (const auto& x : types)
    if (x == t) return true;
  return false;
}

}  // namespace

ojson qwen_typed_value(std::string_view raw, const ojson& schema) {
  std::string_view v = raw;
  if (!v.empty() && v.front() == '\n') v.remove_prefix(1);
  if (!v.empty() && v.back() == '\n') v.remove_suffix(1);
  if (lower(v) == "null") return nullptr;
  std::vector<std::string> types;
  collect_types(schema, types);
  if (types.empty()) return std::string(v);
  const std::string lv = lower(trim(v));
  const std::string_view tv = trim(v);
  if (has(types, "boolean")) {
    if (lv == "true" || lv == "false") return lv == "true";
    if (types.size() == 1) return false;
  }
  if (has(types, "integer"))
    if (auto x = as_integer(tv)) return *x;
  if (has(types, "number"))
    if (auto x = as_number(tv)) return *x;
  for (const char* kind : {"array", "object"})
    if (has(types, kind)) {
      ojson p = parse_json(tv);
      if ((kind[0] == 'a' && p.is_array()) || (kind[0] == 'o' && p.is_object())) return p;
    }
  return std::string(v);
}

namespace {

bool parse_qwen_xml(std::string_view body, const ojson& tools, std::vector<ToolCall>& out,
                    std::string* error) {
  std::vector<ToolCall> calls;
  std::string_view s = body;
  for (;;) {
    s = trim(s);
    if (s.empty()) break;
    if (!starts_with(s, "<function=")) return fail(error, "expected <function=NAME>");
    s.remove_prefix(10);
    const size_t gt = s.find('>');
    if (gt == std::string_view::npos) return fail(error, "unterminated <function=");
    ToolCall c;
    c.name = std::string(trim(s.substr(0, gt)));
    if (c.name.empty()) return fail(error, "empty function name");
    s.remove_prefix(gt + 1);
    for (;;) {
      s = trim(s);
      if (starts_with(s, "</function>")) {
        s.remove_prefix(11);
        break;
      }
      if (s.empty()) break;  // a missing </function> at the end of the call is tolerated
      if (!starts_with(s, "<parameter=")) return fail(error, "expected <parameter=NAME>");
      s.remove_prefix(11);
      const size_t pg = s.find('>');
      if (pg == std::string_view::npos) return fail(error, "unterminated <parameter=");
      const std::string pname(trim(s.substr(0, pg)));
      s.remove_prefix(pg + 1);
      size_t end = s.find("</parameter>");
      size_t skip = 12;
      if (end == std::string_view::npos) {  // tolerated: the next parameter or the function's end
        end = std::min(s.find("<parameter="), s.find("</function>"));
        skip = 0;
        if (end == std::string_view::npos) end = s.size();
      }
      static const ojson kNoSchema;
      const ojson* sch = param_schema(tools, c.name, pname);
      c.arguments[pname] = qwen_typed_value(s.substr(0, end), sch ? *sch : kNoSchema);
      s.remove_prefix(end + skip);
    }
    calls.push_back(std::move(c));
  }
  if (calls.empty()) return fail(error, "no <function=...> in the call");
  for (auto& c : calls) out.push_back(std::move(c));
  return true;
}

// ---- Gemma 4: {key:<|"|>string<|"|>,n:1,o:{...},a:[...]} (bare keys, <|"|>-quoted strings).

constexpr std::string_view kQ = "<|\"|>";

struct GemmaReader {
  std::string_view s;
  size_t i = 0;
  int depth = 0;
  void ws() {
    while (i < s.size() && is_space(s[i])) ++i;
  }
  bool at_end() const { return i >= s.size(); }

  bool string_until(std::string_view close, ojson& v, bool repair_to_end) {
    const size_t e = s.find(close, i);
    if (e == std::string_view::npos) {
      if (!repair_to_end) return false;
      v = std::string(s.substr(i));  // repair: the final quote is missing
      i = s.size();
      return true;
    }
    v = std::string(s.substr(i, e - i));
    i = e + close.size();
    return true;
  }

  bool value(ojson& v) {
    if (++depth > kMaxJsonDepth) return false;
    const bool ok = value_inner(v);
    --depth;
    return ok;
  }

  bool value_inner(ojson& v) {
    ws();
    if (at_end()) return false;
    if (s.substr(i, kQ.size()) == kQ) {
      i += kQ.size();
      return string_until(kQ, v, true);
    }
    const char c = s[i];
    if (c == '\'') {  // repair: single-quoted string
      ++i;
      return string_until("'", v, true);
    }
    if (c == '"') {
      const size_t e = json_string_end(i);
      if (e == std::string_view::npos) return false;
      v = parse_json(s.substr(i, e - i));
      i = e;
      return v.is_string();
    }
    if (c == '{') return object(v);
    if (c == '[') {
      ++i;
      v = ojson::array();
      for (;;) {
        ws();
        if (at_end()) return true;  // repair: a missing ]
        if (s[i] == ']') {
          ++i;
          return true;
        }
        ojson x;
        if (!value(x)) return false;
        v.push_back(std::move(x));
        ws();
        if (!at_end() && s[i] == ',') ++i;
      }
    }
    // A bare literal: number, true/false/null, or an unquoted word (kept as a string).
    const size_t b = i;
    while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']') ++i;
    const std::string_view lit = trim(s.substr(b, i - b));
    if (lit.empty()) return false;
    if (lit == "true" || lit == "false") {
      v = lit == "true";
    } else if (lit == "null") {
      v = nullptr;
    } else if (auto n = as_number(lit)) {
      v = *n;
    } else {
      v = std::string(lit);
    }
    return true;
  }

  size_t json_string_end(size_t from) const {
    bool esc = false;
    for (size_t k = from + 1; k < s.size(); ++k) {
      if (esc)
        esc = false;
      else if (s[k] == '\\')
        esc = true;
      else if (s[k] == '"')
        return k + 1;
    }
    return std::string_view::npos;
  }

  bool object(ojson& v) {
    ++i;  // {
    v = ojson::object();
    for (;;) {
      ws();
      if (at_end()) return true;  // repair: a missing }
      if (s[i] == '}') {
        ++i;
        return true;
      }
      std::string key;
      if (s.substr(i, kQ.size()) == kQ) {
        i += kQ.size();
        ojson k;
        if (!string_until(kQ, k, false)) return false;
        key = k.get<std::string>();
      } else if (s[i] == '"') {
        const size_t e = json_string_end(i);
        if (e == std::string_view::npos) return false;
        const ojson k = parse_json(s.substr(i, e - i));
        if (!k.is_string()) return false;
        key = k.get<std::string>();
        i = e;
      } else {
        const size_t b = i;
        while (i < s.size() && s[i] != ':' && s[i] != '}' && s[i] != ',') ++i;
        key = std::string(trim(s.substr(b, i - b)));
      }
      ws();
      if (at_end() || s[i] != ':' || key.empty()) return false;
      ++i;
      ojson x;
      if (!value(x)) return false;
      v[key] = std::move(x);
      ws();
      if (!at_end() && s[i] == ',') ++i;
    }
  }
};

bool parse_gemma4(std::string_view body, std::vector<ToolCall>& out, std::string* error) {
  std::string_view s = trim(body);
  if (!starts_with(s, "call:")) return fail(error, "expected call:NAME{...}");
  s.remove_prefix(5);
  const size_t brace = s.find('{');
  if (brace == std::string_view::npos) return fail(error, "no argument object");
  ToolCall c;
  c.name = std::string(trim(s.substr(0, brace)));
  if (c.name.empty()) return fail(error, "empty function name");
  GemmaReader r{s, brace};
  ojson args;
  if (!r.value(args) || !args.is_object()) return fail(error, "malformed arguments");
  r.ws();
  // Tolerated after the object: the noise some checkpoints repeat.
  std::string_view rest = s.substr(r.i);
  while (!rest.empty() && (rest.front() == '}' || is_space(rest.front()))) rest.remove_prefix(1);
  if (!rest.empty()) return fail(error, "text after the argument object");
  c.arguments = std::move(args);
  out.push_back(std::move(c));
  return true;
}

// ---- Pythonic: [f(a=1, b="x"), g()] and Llama's built-in form name.call(query="...").

struct PyReader {
  std::string_view s;
  size_t i = 0;
  int depth = 0;
  void ws() {
    while (i < s.size() && is_space(s[i])) ++i;
  }
  bool eat(char c) {
    ws();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  bool ident(std::string& out) {
    ws();
    const size_t b = i;
    while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_' ||
                            s[i] == '.' || s[i] == '-'))
      ++i;
    out = std::string(s.substr(b, i - b));
    return !out.empty();
  }
  bool string(ojson& v) {
    const char q = s[i++];
    std::string r;
    while (i < s.size() && s[i] != q) {
      char c = s[i++];
      if (c == '\\' && i < s.size()) {
        const char e = s[i++];
        c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
      }
      r += c;
    }
    if (i >= s.size()) return false;
    ++i;
    v = std::move(r);
    return true;
  }
  bool value(ojson& v) {
    if (++depth > kMaxJsonDepth) return false;
    const bool ok = value_inner(v);
    --depth;
    return ok;
  }
  bool value_inner(ojson& v) {
    ws();
    if (i >= s.size()) return false;
    const char c = s[i];
    if (c == '"' || c == '\'') return string(v);
    if (c == '[' || c == '(') {
      const char close = c == '[' ? ']' : ')';
      ++i;
      v = ojson::array();
      if (eat(close)) return true;
      for (;;) {
        ojson x;
        if (!value(x)) return false;
        v.push_back(std::move(x));
        if (eat(close)) return true;
        if (!eat(',')) return false;
        if (eat(close)) return true;
      }
    }
    if (c == '{') {
      ++i;
      v = ojson::object();
      if (eat('}')) return true;
      for (;;) {
        ojson k, x;
        if (!value(k) || !eat(':') || !value(x)) return false;
        v[k.is_string() ? k.get<std::string>() : k.dump()] = std::move(x);
        if (eat('}')) return true;
        if (!eat(',')) return false;
        if (eat('}')) return true;
      }
    }
    const size_t b = i;
    while (i < s.size() && s[i] != ',' && s[i] != ')' && s[i] != ']' && s[i] != '}' &&
           !is_space(s[i]))
      ++i;
    const std::string_view lit = s.substr(b, i - b);
    if (lit == "True" || lit == "true") {
      v = true;
    } else if (lit == "False" || lit == "false") {
      v = false;
    } else if (lit == "None" || lit == "null") {
      v = nullptr;
    } else if (auto n = as_number(lit)) {
      v = *n;
    } else {
      return false;
    }
    return true;
  }
  bool call(ToolCall& c) {
    if (!ident(c.name)) return false;
    if (c.name.size() > 5 && c.name.substr(c.name.size() - 5) == ".call")
      c.name.resize(c.name.size() - 5);  // <|python_tag|>brave_search.call(query="...")
    if (!eat('(')) return false;
    c.arguments = ojson::object();
    if (eat(')')) return true;
    for (;;) {
      std::string k;
      ojson v;
      if (!ident(k) || !eat('=') || !value(v)) return false;
      c.arguments[k] = std::move(v);
      if (eat(')')) return true;
      if (!eat(',')) return false;
    }
  }
};

bool parse_pythonic(std::string_view body, std::vector<ToolCall>& out, std::string* error) {
  PyReader r{trim(body)};
  const bool list = r.eat('[');
  std::vector<ToolCall> calls;
  for (;;) {
    ToolCall c;
    if (!r.call(c)) return fail(error, "not a pythonic call list");
    calls.push_back(std::move(c));
    if (list && r.eat(']')) break;
    if (!r.eat(',')) {
      if (list) return fail(error, "unterminated call list");
      break;
    }
  }
  r.ws();
  if (r.i != r.s.size()) return fail(error, "text after the calls");
  for (auto& c : calls) out.push_back(std::move(c));
  return true;
}

// ---- Llama 3 JSON: one object, a list of them, or several separated by ';' / newlines; or the
// built-in pythonic form after <|python_tag|>.

bool parse_llama_json(std::string_view body, std::vector<ToolCall>& out, std::string* error) {
  std::string_view s = trim(body);
  if (!s.empty() && s.front() != '{' && s.front() != '[') return parse_pythonic(s, out, error);
  std::vector<ToolCall> calls;
  const ojson whole = parse_json(s);
  if (whole.is_array()) {
    for (const auto& o : whole) {
      ToolCall c;
      if (!call_from_object(o, c)) return fail(error, "list item is not a call");
      calls.push_back(std::move(c));
    }
  } else {
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && (is_space(s[i]) || s[i] == ';')) ++i;
      if (i >= s.size()) break;
      if (s[i] != '{') return fail(error, "expected a JSON object");
      const size_t e = json_value_end(s, i);
      if (e == std::string_view::npos) return fail(error, "unterminated JSON object");
      ToolCall c;
      if (!call_from_object(parse_json(s.substr(i, e - i)), c))
        return fail(error, "not a {\"name\", \"parameters\"} object");
      calls.push_back(std::move(c));
      i = e;
    }
  }
  if (calls.empty()) return fail(error, "no call");
  for (auto& c : calls) out.push_back(std::move(c));
  return true;
}

// ---- DeepSeek:
// <｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{...}\n```<｜tool▁call▁end｜> (R1) or
// <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜> (V3.1), repeated.

bool parse_deepseek(std::string_view body, std::vector<ToolCall>& out, std::string* error) {
  static constexpr std::string_view kBegin = "<｜tool▁call▁begin｜>", kSep = "<｜tool▁sep｜>",
                                    kEnd = "<｜tool▁call▁end｜>";
  std::vector<ToolCall> calls;
  std::string_view s = body;
  for (;;) {
    s = trim(s);
    if (s.empty()) break;
    if (!starts_with(s, kBegin)) return fail(error, "expected <｜tool▁call▁begin｜>");
    s.remove_prefix(kBegin.size());
    const size_t sep = s.find(kSep);
    size_t end = s.find(kEnd);
    if (sep == std::string_view::npos) return fail(error, "no <｜tool▁sep｜>");
    if (end == std::string_view::npos) end = s.size();
    if (end < sep) return fail(error, "call ends before its separator");
    const std::string_view left = trim(s.substr(0, sep));
    std::string_view right = s.substr(sep + kSep.size(), end - sep - kSep.size());
    ToolCall c;
    if (left == "function") {  // R1: the name, then a ```json fence
      const size_t nl = right.find('\n');
      c.name = std::string(trim(right.substr(0, nl)));
      right = nl == std::string_view::npos ? std::string_view() : right.substr(nl + 1);
      right = trim(right);
      if (starts_with(right, "```json")) right.remove_prefix(7);
      right = trim(right);
      if (right.size() >= 3 && right.substr(right.size() - 3) == "```") right.remove_suffix(3);
    } else {
      c.name = std::string(left);
    }
    if (c.name.empty() || !arguments_of(parse_json(trim(right)), c.arguments))
      return fail(error, "malformed DeepSeek call");
    calls.push_back(std::move(c));
    s.remove_prefix(std::min(s.size(), end + kEnd.size()));
  }
  if (calls.empty()) return fail(error, "no call");
  for (auto& c : calls) out.push_back(std::move(c));
  return true;
}

// ---- Mistral: NAME[ARGS]{...} (repeated, each after [TOOL_CALLS]), or a JSON list of calls.

bool parse_mistral(std::string_view body, std::vector<ToolCall>& out, std::string* error) {
  std::string_view s = trim(body);
  if (!s.empty() && s.front() == '[') return parse_llama_json(s, out, error);
  std::vector<ToolCall> calls;
  for (;;) {
    s = trim(s);
    if (starts_with(s, "[TOOL_CALLS]")) s = trim(s.substr(12));
    if (s.empty()) break;
    const size_t args = s.find("[ARGS]");
    if (args == std::string_view::npos) return fail(error, "expected NAME[ARGS]{...}");
    ToolCall c;
    std::string_view name = s.substr(0, args);
    if (const size_t id = name.find("[CALL_ID]"); id != std::string_view::npos)
      name = name.substr(0, id);
    c.name = std::string(trim(name));
    s.remove_prefix(args + 6);
    s = trim(s);
    const size_t e = s.empty() || s.front() != '{' ? std::string_view::npos : json_value_end(s, 0);
    if (c.name.empty() || e == std::string_view::npos ||
        !arguments_of(parse_json(s.substr(0, e)), c.arguments))
      return fail(error, "malformed Mistral call");
    calls.push_back(std::move(c));
    s.remove_prefix(e);
  }
  if (calls.empty()) return fail(error, "no call");
  for (auto& c : calls) out.push_back(std::move(c));
  return true;
}

}  // namespace

bool parse_calls(CallSyntax syntax, std::string_view body, const ojson& tools,
                 std::vector<ToolCall>& out, std::string* error) {
  switch (syntax) {
    case CallSyntax::kHermesJson:
      return parse_hermes(body, out, error);
    case CallSyntax::kQwenXml:
      return parse_qwen_xml(body, tools, out, error);
    case CallSyntax::kGemma4:
      return parse_gemma4(body, out, error);
    case CallSyntax::kLlamaJson:
      return parse_llama_json(body, out, error);
    case CallSyntax::kPythonic:
      return parse_pythonic(body, out, error);
    case CallSyntax::kDeepSeek:
      return parse_deepseek(body, out, error);
    case CallSyntax::kMistral:
      return parse_mistral(body, out, error);
    case CallSyntax::kNone:
      break;
  }
  return fail(error, "this model has no tool-call syntax");
}

}  // namespace hearth::parsers
