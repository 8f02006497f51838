// The tree-walking interpreter, with the reference renderer's semantics: scopes (a for loop gets
// its own, set inside a loop does not leak), macro calls see the caller's scope, loose ==, the
// filter and test sets, string/dict methods, and errors for what the reference rejects.
#include "templates/jinja/interpreter.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <optional>

namespace hearth::templates::jinja {

namespace {

// Objects keep their keys in a list, searched linearly: a lookup in an object of n keys costs
// n / kKeysPerStep steps, so that repeated lookups in a huge one are bounded too.
constexpr size_t kKeysPerStep = 32;
// Items copied into a new list per step.
constexpr size_t kItemsPerStep = 8;

// Integer results that leave int64 continue as floats, as the reference's JavaScript numbers do;
// int64 overflow is undefined behaviour (and INT64_MIN % -1 traps: SIGFPE), never reached.
Value int_or_float(double d) {
  if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) return Value::integer(int64_t(d));
  return Value::number(d);
}

// range(stop) / range(start, stop[, step]) as the first item, the step and the number of items,
// computed without stepping through them (range(10**12) is refused before anything is built).
struct RangeSpec {
  int64_t start = 0, step = 1;
  uint64_t n = 0;
  int64_t at(uint64_t k) const { return int64_t(uint64_t(start) + k * uint64_t(step)); }
};
RangeSpec range_spec(const std::vector<Value>& a) {
  int64_t start = 0, stop = 0, step = 1;
  auto num = [](const Value& v) -> int64_t {
    if (!v.is_number() && v.k != Value::K::kBool) throw JinjaError(0, "range() takes numbers");
    if (!(std::fabs(v.num()) < 9.2e18)) throw JinjaError(0, "range() argument too large");
    return int64_t(v.num());
  };
  if (a.size() == 1) {
    stop = num(a[0]);
  } else if (a.size() >= 2) {
    start = num(a[0]);
    stop = num(a[1]);
    if (a.size() >= 3) step = num(a[2]);
  } else {
    throw JinjaError(0, "range() needs arguments");
  }
  if (step == 0) throw JinjaError(0, "range() step must not be zero");
  const long double span = step > 0 ? (long double)stop - start : (long double)start - stop;
  const long double mag = step > 0 ? (long double)step : -(long double)step;
  RangeSpec r;
  r.start = start;
  r.step = step;
  r.n = span <= 0 ? 0 : uint64_t(std::ceil(span / mag));
  return r;
}

struct BreakSignal {};
struct ContinueSignal {};

Value kwargs_of(std::vector<Value>& args) {
  if (!args.empty() && args.back().k == Value::K::kKwargs) {
    Value kw = args.back();
    args.pop_back();
    return kw;
  }
  return Value::object(Value::K::kKwargs);
}

const Value* kwarg(const Value& kw, const char* name) {
  return kw.obj ? kw.obj->find(name) : nullptr;
}

bool is_space_js(uint32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

// UTF-8 helpers, which walk code points in place rather than building a string for each (a
// 10 MB message would be 10 M strings). The byte length of the code point starting at s[i].
size_t char_len(const std::string& s, size_t i) {
  const uint8_t c = uint8_t(s[i]);
  const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  return std::min(n, s.size() - i);
}
// The number of code points.
size_t char_count(const std::string& s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += char_len(s, i)) ++n;
  return n;
}
// Byte offset of code point `k` (s.size() if there are fewer).
size_t char_offset(const std::string& s, size_t k) {
  size_t i = 0;
  for (; i < s.size() && k > 0; --k) i += char_len(s, i);
  return i;
}
// The code point of the `size` bytes at `ch` (one code point, char_len bytes).
uint32_t cp_of(const char* ch, size_t size) {
  const uint8_t c = uint8_t(ch[0]);
  if (c < 0x80 || size == 1) return c;
  if (size == 2) return ((c & 31u) << 6) | (uint8_t(ch[1]) & 63u);
  if (size == 3) return ((c & 15u) << 12) | ((uint8_t(ch[1]) & 63u) << 6) | (uint8_t(ch[2]) & 63u);
  return ((c & 7u) << 18) | ((uint8_t(ch[1]) & 63u) << 12) | ((uint8_t(ch[2]) & 63u) << 6) |
         (uint8_t(ch[3]) & 63u);
}
uint32_t cp_of(const std::string& ch) {
  return cp_of(ch.data(), ch.size());
}
uint32_t cp_at(const std::string& s, size_t i) {
  return cp_of(s.data() + i, char_len(s, i));
}
std::string trim_js(const std::string& s, bool left, bool right) {
  size_t b = 0;
  if (left)
    while (b < s.size() && is_space_js(cp_at(s, b))) b += char_len(s, b);
  size_t e = s.size();
  if (right) {
    e = b;  // the end of the last code point that is not a space
    for (size_t i = b; i < s.size(); i += char_len(s, i))
      if (!is_space_js(cp_at(s, i))) e = i + char_len(s, i);
  }
  return s.substr(b, e - b);
}
// Upper/lower case for ASCII and the Latin-1/Greek/Cyrillic ranges templates meet; other
// characters are kept.
std::string case_map(const std::string& s, bool upper) {
  std::string r;
  r.reserve(s.size());
  for (size_t i = 0; i < s.size(); i += char_len(s, i)) {
    const std::string ch = s.substr(i, char_len(s, i));
    uint32_t c = cp_of(ch);
    uint32_t m = c;
    if (upper) {
      if (c >= 'a' && c <= 'z')
        m = c - 32;
      else if ((c >= 0xE0 && c <= 0xFE && c != 0xF7))
        m = c - 32;
      else if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2)
        m = c - 32;
      else if (c >= 0x430 && c <= 0x44F)
        m = c - 32;
      else if (c >= 0x450 && c <= 0x45F)
        m = c - 80;
    } else {
      if (c >= 'A' && c <= 'Z')
        m = c + 32;
      else if ((c >= 0xC0 && c <= 0xDE && c != 0xD7))
        m = c + 32;
      else if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        m = c + 32;
      else if (c >= 0x410 && c <= 0x42F)
        m = c + 32;
      else if (c >= 0x400 && c <= 0x40F)
        m = c + 80;
    }
    if (m == c) {
      r += ch;
    } else {
      std::string enc;
      if (m < 0x80)
        enc += char(m);
      else {
        enc += char(0xC0 | (m >> 6));
        enc += char(0x80 | (m & 63));
      }
      r += enc;
    }
  }
  return r;
}
std::string title_case(const std::string& s) {
  // \b\w with ASCII word characters, as the reference's regex.
  std::string r = s;
  auto word = [](char c) { return std::isalnum(uint8_t(c)) || c == '_'; };
  for (size_t i = 0; i < r.size(); ++i)
    if (word(r[i]) && (i == 0 || !word(r[i - 1]))) r[i] = char(std::toupper(uint8_t(r[i])));
  return r;
}

}  // namespace

Env::Env(Env* parent) : parent_(parent) {}

Value Env::lookup(const std::string& n) const {
  const Value* v = find(n);
  return v ? *v : Value::undefined();
}

const Value* Env::find(const std::string& n) const {
  for (const Env* e = this; e; e = e->parent_) {
    auto it = e->vars_.find(n);
    if (it != e->vars_.end()) return &it->second;
  }
  return nullptr;
}

Interpreter::Interpreter(Budget& budget, int max_depth) : budget_(budget), max_depth_(max_depth) {}

void Interpreter::tick(int line, uint64_t n) {
  if (!budget_.spend_steps(n)) throw JinjaError(line, budget_.steps_message());
}

void Interpreter::charge(uint64_t bytes, int line) {
  if (!budget_.spend_bytes(bytes)) throw JinjaError(line, budget_.bytes_message());
}

void Interpreter::need_room(uint64_t bytes, int line) {
  if (!budget_.has_room(bytes)) throw JinjaError(line, budget_.bytes_message());
}

// A list built or copied: its slots and the bytes of the strings copied into them, and a step per
// kItemsPerStep items (copying an item takes a small fraction of evaluating a node).
void Interpreter::charge_list(const std::vector<Value>& items, int line) {
  uint64_t bytes = items.size() * sizeof(Value);
  for (const auto& x : items) bytes += x.s.size();
  tick(line, items.size() / kItemsPerStep);
  charge(bytes, line);
}

void Interpreter::setup_globals(Env& g) {
  g.set("true", Value::boolean(true));
  g.set("false", Value::boolean(false));
  g.set("none", Value::null());
  g.set("True", Value::boolean(true));
  g.set("False", Value::boolean(false));
  g.set("None", Value::null());
  g.set("raise_exception", Value::function([](std::vector<Value>& a, Env&) -> Value {
          std::string msg = a.empty() ? std::string() : to_output(a[0]);
          throw JinjaError(0, "raise_exception: " + msg);
        }));
  Value range = Value::function([this](std::vector<Value>& a, Env&) -> Value {
    const RangeSpec r = range_spec(a);
    tick(0, r.n / kItemsPerStep);
    charge(r.n > UINT64_MAX / sizeof(Value) ? UINT64_MAX : r.n * sizeof(Value), 0);
    std::vector<Value> out;
    out.reserve(size_t(r.n));
    for (uint64_t k = 0; k < r.n; ++k) out.push_back(Value::integer(r.at(k)));
    return Value::array(std::move(out));
  });
  range_fn_ = range.fn;
  g.set("range", range);
  g.set("strftime_now", Value::function([](std::vector<Value>& a, Env&) -> Value {
          if (a.empty() || a[0].k != Value::K::kStr)
            throw JinjaError(0, "strftime_now() needs a format");
          const time_t now = std::time(nullptr);
          struct tm tm {};
          localtime_r(&now, &tm);
          static const char* kShort[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
          static const char* kLong[] = {"January",   "February", "March",    "April",
                                        "May",       "June",     "July",     "August",
                                        "September", "October",  "November", "December"};
          const std::string& f = a[0].s;
          std::string out;
          auto pad2 = [](int n) {
            std::string r = n < 10 ? "0" : "";
            r += std::to_string(n);
            return r;
          };
          // Only %Y %m %d %b %B %H %M %% are understood; anything else stays as written.
          for (size_t i = 0; i < f.size(); ++i) {
            if (f[i] != '%' || i + 1 >= f.size()) {
              out += f[i];
              continue;
            }
            const char c = f[i + 1];
            switch (c) {
              case 'Y':
                out += std::to_string(tm.tm_year + 1900);
                break;
              case 'm':
                out += pad2(tm.tm_mon + 1);
                break;
              case 'd':
                out += pad2(tm.tm_mday);
                break;
              case 'b':
                out += kShort[tm.tm_mon];
                break;
              case 'B':
                out += kLong[tm.tm_mon];
                break;
              case 'H':
                out += pad2(tm.tm_hour);
                break;
              case 'M':
                out += pad2(tm.tm_min);
                break;
              case '%':
                out += '%';
                break;
              default:
                out += '%';
                out += c;
                break;
            }
            ++i;
          }
          return Value::str(out);
        }));
  g.set("namespace", Value::function([this](std::vector<Value>& a, Env&) -> Value {
          Value kw = kwargs_of(a);
          if (a.size() > 1) throw JinjaError(0, "namespace() takes at most 1 positional argument");
          Value ns = Value::object(Value::K::kNamespace);
          // Object::set searches the keys so far: building from a large dict is quadratic.
          auto set = [&](const std::string& k, const Value& v) {
            tick(0, ns.obj->items.size() / kKeysPerStep + 1);
            charge(sizeof(std::pair<std::string, Value>) + k.size() + v.s.size(), 0);
            ns.obj->set(k, v);
          };
          if (a.size() == 1) {
            if (a[0].is_object()) {
              // An object's keys are distinct already: copied without searching.
              for (auto& [k, v] : a[0].obj->items) {
                tick(0);
                charge(sizeof(std::pair<std::string, Value>) + k.size() + v.s.size(), 0);
                ns.obj->items.emplace_back(k, v);
              }
            } else if (a[0].is_array()) {
              for (auto& p : *a[0].arr) {
                if (!p.is_array() || p.arr->size() != 2 || (*p.arr)[0].k != Value::K::kStr)
                  throw JinjaError(0, "namespace expected an object or [key, value] pairs");
                set((*p.arr)[0].s, (*p.arr)[1]);
              }
            } else {
              throw JinjaError(0, std::string("'") + a[0].type_name() + "' object is not iterable");
            }
          }
          for (auto& [k, v] : kw.obj->items) set(k, v);
          return ns;
        }));
}

std::string Interpreter::render(const NodeP& program, Env& env) {
  struct BreakCycles {
    std::unordered_map<const void*, std::shared_ptr<Object>>& ns;
    ~BreakCycles() {
      for (auto& [_, o] : ns) o->items.clear();
      ns.clear();
    }
  } guard{written_ns_};
  Value v = block(program->body, env);
  return v.s;
}

Value Interpreter::block(const std::vector<NodeP>& stmts, Env& env) {
  std::string out;
  for (const auto& s : stmts) {
    Value v = eval(*s, env);
    if (v.k == Value::K::kStr) {
      out += v.s;  // eval charged it
    } else if (!v.none_or_undefined()) {
      std::string text;
      try {
        text = to_output(v, &budget_);
      } catch (const std::runtime_error& e) {  // the budget, or a cycle
        throw JinjaError(s->line, e.what());
      }
      charge(text.size(), s->line);
      out += text;
    }
  }
  return Value::str(std::move(out));
}

Value Interpreter::eval(const Node& n, Env& env) {
  tick(n.line);
  if (depth_ >= max_depth_) throw JinjaError(n.line, recursion_message(max_depth_));
  ++depth_;
  struct Guard {
    int& d;
    ~Guard() { --d; }
  } guard{depth_};
  try {
    Value v = eval_inner(n, env);
    // Every string a node yields is a new allocation (values hold strings by value): a lookup
    // of a large string costs its size each time, as a concatenation or a filter result does.
    if (v.k == Value::K::kStr) charge(v.s.size(), n.line);
    return v;
  } catch (JinjaError& e) {
    if (e.line == 0) e.line = n.line;
    throw;
  } catch (BreakSignal&) {
    throw;
  } catch (ContinueSignal&) {
    throw;
  } catch (std::bad_alloc&) {
    throw;  // reported as such by Template::render
  } catch (std::length_error&) {
    throw;
  } catch (std::exception& e) {
    throw JinjaError(n.line, e.what());
  }
}

Value Interpreter::eval_inner(const Node& n, Env& env) {
  using K = Node::K;
  switch (n.k) {
    case K::kProgram:
      return block(n.body, env);
    case K::kComment:
      return Value::null();
    case K::kLiteral:
      return n.lit;
    case K::kIdent:
      return env.lookup(n.name);
    case K::kArray:
    case K::kTuple: {
      std::vector<Value> v;
      for (const auto& c : n.a) v.push_back(eval(*c, env));
      charge(v.size() * sizeof(Value), n.line);  // the items' strings were charged by eval
      return Value::array(std::move(v), n.k == K::kTuple ? Value::K::kTuple : Value::K::kArray);
    }
    case K::kObject: {
      Value o = Value::object();
      for (size_t i = 0; i + 1 < n.a.size(); i += 2) {
        Value key = eval(*n.a[i], env);
        if (key.k != Value::K::kStr)
          throw JinjaError(n.line,
                           std::string("dict keys must be strings, got ") + key.type_name());
        o.obj->set(key.s, eval(*n.a[i + 1], env));
        charge(sizeof(std::pair<std::string, Value>), n.line);
      }
      return o;
    }
    case K::kIf: {
      Value t = eval(*n.x, env);
      return block(t.truthy() ? n.body : n.alt, env);
    }
    case K::kFor:
      return eval_for(n, env);
    case K::kSet:
      return eval_set(n, env);
    case K::kMacro:
      return eval_macro(n, env);
    case K::kCallBlock:
      return eval_call_block(n, env);
    case K::kFilterBlock: {
      Value body = block(n.body, env);
      return apply_filter(body, *n.x, env);
    }
    case K::kBreak:
      throw BreakSignal{};
    case K::kContinue:
      throw ContinueSignal{};
    case K::kMember:
      return eval_member(n, env);
    case K::kCall: {
      auto args_kw = eval_args(n.a, env);
      auto& args = args_kw.first;
      auto& kw = args_kw.second;
      if (!kw.obj->items.empty()) args.push_back(kw);
      Value fn = eval(*n.x, env);
      if (fn.k != Value::K::kFunc)
        throw JinjaError(n.line, std::string("cannot call something that is not a function (") +
                                     fn.type_name() + ")");
      return (*fn.fn)(args, env);
    }
    case K::kUnary: {
      Value v = eval(*n.x, env);
      if (n.name == "not") return Value::boolean(!v.truthy());
      const int sign = n.name == "-" ? -1 : 1;
      if (v.k == Value::K::kFloat) return Value::number(sign * v.f);
      if (v.k == Value::K::kInt)
        return v.i == INT64_MIN && sign < 0 ? int_or_float(-double(v.i))
                                            : Value::integer(sign * v.i);
      if (v.k == Value::K::kBool) return Value::integer(sign * int64_t(v.b));
      throw JinjaError(n.line, "unary " + n.name + " on " + v.type_name());
    }
    case K::kBinary:
      return eval_binary(n, env);
    case K::kFilter: {
      Value v = eval(*n.x, env);
      return apply_filter(v, *n.y, env);
    }
    case K::kTest:
      return eval_test(n, env);
    case K::kSelect: {
      Value t = eval(*n.y, env);
      if (!t.truthy()) return Value::undefined();
      return eval(*n.x, env);
    }
    case K::kTernary: {
      Value c = eval(*n.x, env);
      return c.truthy() ? eval(*n.y, env) : eval(*n.z, env);
    }
    default:
      throw JinjaError(n.line, "unexpected syntax node");
  }
}

std::pair<std::vector<Value>, Value> Interpreter::eval_args(const std::vector<NodeP>& args,
                                                            Env& env) {
  std::vector<Value> pos;
  Value kw = Value::object(Value::K::kKwargs);
  for (const auto& a : args) {
    if (a->k == Node::K::kSpread) {
      Value v = eval(*a->x, env);
      if (!v.is_array()) throw JinjaError(a->line, std::string("cannot unpack ") + v.type_name());
      charge_list(*v.arr, a->line);
      for (auto& x : *v.arr) pos.push_back(x);
    } else if (a->k != Node::K::kKwArg && a->k != Node::K::kKwSpread) {
      pos.push_back(eval(*a, env));
    }
  }
  for (const auto& a : args) {
    if (a->k == Node::K::kKwArg) {
      if (kw.obj->find(a->name))
        throw JinjaError(a->line, "got multiple values for keyword argument '" + a->name + "'");
      kw.obj->set(a->name, eval(*a->x, env));
    } else if (a->k == Node::K::kKwSpread) {
      Value v = eval(*a->x, env);
      if (!v.is_object()) throw JinjaError(a->line, "argument after ** must be a mapping");
      for (auto& [k, x] : v.obj->items) {
        tick(a->line, kw.obj->items.size() / kKeysPerStep + 1);
        charge(sizeof(std::pair<std::string, Value>) + k.size() + x.s.size(), a->line);
        kw.obj->set(k, x);
      }
    }
  }
  return {std::move(pos), std::move(kw)};
}

Value Interpreter::eval_binary(const Node& n, Env& env) {
  const std::string& op = n.name;
  Value l = eval(*n.x, env);
  if (op == "and") return l.truthy() ? eval(*n.y, env) : l;
  if (op == "or") return l.truthy() ? l : eval(*n.y, env);
  Value r = eval(*n.y, env);
  if (op == "==") return Value::boolean(loose_equals(l, r));
  if (op == "!=") return Value::boolean(!loose_equals(l, r));
  if (l.k == Value::K::kUndefined || r.k == Value::K::kUndefined) {
    if (r.k == Value::K::kUndefined && (op == "in" || op == "not in"))
      return Value::boolean(op == "not in");
    throw JinjaError(n.line, "cannot perform '" + op + "' on an undefined value");
  }
  if (l.k == Value::K::kNull || r.k == Value::K::kNull)
    throw JinjaError(n.line, "cannot perform '" + op + "' on none");
  // A concatenation is refused before it is built if the budget could not pay for it (eval
  // charges the result); this is what stops a string doubled in a loop.
  auto concat = [&] {
    std::string a = js_string(l, &budget_), b = js_string(r, &budget_);
    need_room(uint64_t(a.size()) + b.size(), n.line);
    return Value::str(a + b);
  };
  if (op == "~") return concat();
  const bool ln = l.is_number() || l.k == Value::K::kBool,
             rn = r.is_number() || r.k == Value::K::kBool;
  if (op == "**" && ln && rn) {
    const double a = l.num(), b = r.num();
    if (a == 0 && b < 0) throw JinjaError(n.line, "0.0 cannot be raised to a negative power");
    const double res = std::pow(a, b);
    if (!std::isfinite(res)) throw JinjaError(n.line, "exponentiation overflow");
    if (l.k == Value::K::kFloat || r.k == Value::K::kFloat || b < 0) return Value::number(res);
    return int_or_float(res);
  }
  if (l.is_number() && r.is_number()) {
    const bool fl = l.k == Value::K::kFloat || r.k == Value::K::kFloat;
    if (op == "+" || op == "-" || op == "*") {
      if (!fl) {
        const int64_t a = l.i, b = r.i;
        int64_t x;
        const bool over = op == "+"   ? __builtin_add_overflow(a, b, &x)
                          : op == "-" ? __builtin_sub_overflow(a, b, &x)
                                      : __builtin_mul_overflow(a, b, &x);
        if (!over) return Value::integer(x);
        const double da = double(a), db = double(b);
        return Value::number(op == "+" ? da + db : op == "-" ? da - db : da * db);
      }
      const double a = l.num(), b = r.num();
      return Value::number(op == "+" ? a + b : op == "-" ? a - b : a * b);
    }
    if (op == "/") return Value::number(l.num() / r.num());
    if (op == "//") {
      if (!fl) {
        if (r.i == 0) throw JinjaError(n.line, "integer division by zero");
        return int_or_float(std::floor(double(l.i) / double(r.i)));
      }
      return Value::number(std::floor(l.num() / r.num()));
    }
    if (op == "%") {
      if (!fl) {
        if (r.i == 0) throw JinjaError(n.line, "integer modulo by zero");
        return Value::integer(r.i == -1 ? 0 : l.i % r.i);
      }
      return Value::number(std::fmod(l.num(), r.num()));
    }
    if (op == "<") return Value::boolean(l.num() < r.num());
    if (op == ">") return Value::boolean(l.num() > r.num());
    if (op == "<=") return Value::boolean(l.num() <= r.num());
    if (op == ">=") return Value::boolean(l.num() >= r.num());
  } else if (l.is_array() && r.is_array()) {
    if (op == "+") {
      need_room((uint64_t(l.arr->size()) + r.arr->size()) * sizeof(Value), n.line);
      std::vector<Value> v = *l.arr;
      v.insert(v.end(), r.arr->begin(), r.arr->end());
      charge_list(v, n.line);
      return Value::array(std::move(v));
    }
  } else if (r.is_array()) {
    tick(n.line, r.arr->size() / kItemsPerStep);
    bool member = false;
    for (const auto& x : *r.arr) member |= strict_equals(x, l);
    if (op == "in") return Value::boolean(member);
    if (op == "not in") return Value::boolean(!member);
  }
  if ((l.k == Value::K::kStr || r.k == Value::K::kStr) && op == "+") return concat();
  if (l.k == Value::K::kStr && r.k == Value::K::kStr) {
    if (op == "in") return Value::boolean(r.s.find(l.s) != std::string::npos);
    if (op == "not in") return Value::boolean(r.s.find(l.s) == std::string::npos);
  }
  if (l.k == Value::K::kStr && r.is_object()) {
    tick(n.line, r.obj->items.size() / kKeysPerStep);
    if (op == "in") return Value::boolean(r.obj->find(l.s) != nullptr);
    if (op == "not in") return Value::boolean(r.obj->find(l.s) == nullptr);
  }
  throw JinjaError(
      n.line, "unknown operator '" + op + "' between " + l.type_name() + " and " + r.type_name());
}

Value Interpreter::eval_test(const Node& n, Env& env) {
  // A variable is tested where it is, not copied (`content is string` on a long message).
  Value copy;
  const Value* found = nullptr;
  if (n.x->k == Node::K::kIdent) {
    tick(n.x->line);
    found = env.find(n.x->name);
  } else {
    copy = eval(*n.x, env);
  }
  const Value& v = found ? *found : copy;
  const std::string& t = n.name;
  bool r;
  if (t == "boolean")
    r = v.k == Value::K::kBool;
  else if (t == "callable")
    r = v.k == Value::K::kFunc;
  else if (t == "odd" || t == "even") {
    if (v.k != Value::K::kInt) throw JinjaError(n.line, "cannot " + t + " on " + v.type_name());
    r = (v.i % 2 != 0) == (t == "odd");
  } else if (t == "false")
    r = v.k == Value::K::kBool && !v.b;
  else if (t == "true")
    r = v.k == Value::K::kBool && v.b;
  else if (t == "none")
    r = v.k == Value::K::kNull;
  else if (t == "string")
    r = v.k == Value::K::kStr;
  else if (t == "number")
    r = v.is_number();
  else if (t == "integer")
    r = v.k == Value::K::kInt;
  else if (t == "float")
    throw JinjaError(n.line, "unknown test 'float'");
  else if (t == "iterable")
    r = v.k == Value::K::kArray || v.k == Value::K::kStr;
  else if (t == "mapping")
    r = v.is_object();
  else if (t == "sequence")
    r = v.is_array() || v.is_object() || v.k == Value::K::kStr;
  else if (t == "lower")
    r = v.k == Value::K::kStr && v.s == case_map(v.s, false);
  else if (t == "upper")
    r = v.k == Value::K::kStr && v.s == case_map(v.s, true);
  else if (t == "defined")
    r = v.k != Value::K::kUndefined;
  else if (t == "undefined")
    r = v.k == Value::K::kUndefined;
  else
    throw JinjaError(n.line, "unknown test '" + t + "'");
  return Value::boolean(n.flag ? !r : r);
}

Value Interpreter::eval_member(const Node& n, Env& env) {
  Value obj = eval(*n.x, env);
  Value prop;
  if (n.flag) {
    if (n.y->k == Node::K::kSlice) return eval_slice(obj, *n.y, env);
    prop = eval(*n.y, env);
  } else if (n.y->k == Node::K::kLiteral) {
    prop = n.y->lit;
  } else {
    prop = Value::str(n.y->name);
  }
  if (obj.is_attr_container()) {
    tick(n.line, obj.obj->items.size() / kKeysPerStep);
    if (prop.k != Value::K::kStr)
      throw JinjaError(n.line, std::string("cannot access a property with ") + prop.type_name());
    if (const Value* v = obj.obj->find(prop.s)) return *v;
    if (obj.k == Value::K::kNamespace) return Value::undefined();
    return object_method(obj, prop.s);
  }
  if (obj.is_array() || obj.k == Value::K::kStr) {
    if (prop.k == Value::K::kInt) {
      if (obj.k == Value::K::kStr) {
        const int64_t len = prop.i < 0 ? int64_t(char_count(obj.s)) : INT64_MAX;
        const int64_t i = prop.i < 0 ? len + prop.i : prop.i;
        if (i < 0) return Value::undefined();
        const size_t at = char_offset(obj.s, size_t(i));
        if (at >= obj.s.size()) return Value::undefined();
        return Value::str(obj.s.substr(at, char_len(obj.s, at)));
      }
      int64_t i = prop.i < 0 ? int64_t(obj.arr->size()) + prop.i : prop.i;
      if (i < 0 || i >= int64_t(obj.arr->size())) return Value::undefined();
      return (*obj.arr)[size_t(i)];
    }
    if (prop.k == Value::K::kStr) {
      if (obj.k == Value::K::kStr) return string_method(obj, prop.s);
      if (prop.s == "length") return Value::integer(int64_t(obj.arr->size()));
      return Value::undefined();
    }
    throw JinjaError(n.line, std::string("cannot index with ") + prop.type_name());
  }
  if (prop.k != Value::K::kStr)
    throw JinjaError(n.line, std::string("cannot access a property with ") + prop.type_name());
  return Value::undefined();
}

Value Interpreter::eval_slice(const Value& obj, const Node& sl, Env& env) {
  if (!obj.is_array() && obj.k != Value::K::kStr)
    throw JinjaError(sl.line, "slice of something that is not a list or string");
  auto part = [&](const NodeP& p, bool* given) -> int64_t {
    *given = false;
    if (!p) return 0;
    Value v = eval(*p, env);
    if (v.k == Value::K::kUndefined) return 0;
    if (v.k != Value::K::kInt) throw JinjaError(sl.line, "slice indices must be integers");
    *given = true;
    return v.i;
  };
  bool hs, he, hst;
  int64_t start = part(sl.x, &hs), stop = part(sl.y, &he), step = part(sl.z, &hst);
  if (!hst) step = 1;
  if (step == 0) throw JinjaError(sl.line, "slice step cannot be zero");
  const int64_t len =
      obj.k == Value::K::kStr ? int64_t(char_count(obj.s)) : int64_t(obj.arr->size());
  if (step > 0) {
    start = !hs ? 0 : start < 0 ? std::max<int64_t>(len + start, 0) : std::min(start, len);
    stop = !he ? len : stop < 0 ? std::max<int64_t>(len + stop, 0) : std::min(stop, len);
  } else {
    start = !hs         ? len - 1
            : start < 0 ? std::max<int64_t>(len + start, -1)
                        : std::min(start, len - 1);
    stop = !he ? -1 : stop < -1 ? std::max<int64_t>(len + stop, -1) : std::min(stop, len - 1);
  }
  // How many items: counted rather than stepping past `stop`, which could overflow (step 2**63-1).
  const uint64_t span = step > 0 ? (stop > start ? uint64_t(stop - start) : 0)
                                 : (start > stop ? uint64_t(start - stop) : 0);
  const uint64_t mag = step > 0 ? uint64_t(step) : uint64_t(0) - uint64_t(step);
  const uint64_t count = span == 0 ? 0 : (span - 1) / mag + 1;
  tick(sl.line, count / kItemsPerStep);
  auto index = [&](uint64_t k) { return size_t(uint64_t(start) + k * uint64_t(step)); };
  if (obj.k == Value::K::kStr) {
    const std::string& str = obj.s;
    if (step == 1) {
      if (count == 0) return Value::str("");
      const size_t b = char_offset(str, size_t(start));
      return Value::str(str.substr(b, char_offset(str, size_t(stop)) - b));
    }
    std::vector<size_t> at;  // byte offset of each code point
    charge(uint64_t(len) * sizeof(size_t), sl.line);
    at.reserve(size_t(len));
    for (size_t i = 0; i < str.size(); i += char_len(str, i)) at.push_back(i);
    std::string r;
    for (uint64_t k = 0; k < count; ++k) {
      const size_t i = at[index(k)];
      r.append(str, i, char_len(str, i));
    }
    return Value::str(r);
  }
  std::vector<Value> r;
  r.reserve(size_t(count));
  for (uint64_t k = 0; k < count; ++k) r.push_back((*obj.arr)[index(k)]);
  charge_list(r, sl.line);
  return Value::array(std::move(r));
}

Value Interpreter::string_method(const Value& s, const std::string& name) {
  const std::string str = s.s;
  auto fn = [](auto f) { return Value::function(f); };
  if (name == "length") return Value::integer(int64_t(char_count(str)));
  if (name == "upper")
    return fn([str](std::vector<Value>&, Env&) { return Value::str(case_map(str, true)); });
  if (name == "lower")
    return fn([str](std::vector<Value>&, Env&) { return Value::str(case_map(str, false)); });
  if (name == "strip")
    return fn([str](std::vector<Value>&, Env&) { return Value::str(trim_js(str, true, true)); });
  if (name == "lstrip")
    return fn([str](std::vector<Value>&, Env&) { return Value::str(trim_js(str, true, false)); });
  if (name == "rstrip")
    return fn([str](std::vector<Value>&, Env&) { return Value::str(trim_js(str, false, true)); });
  if (name == "title")
    return fn([str](std::vector<Value>&, Env&) { return Value::str(title_case(str)); });
  if (name == "capitalize")
    return fn([str](std::vector<Value>&, Env&) {
      if (str.empty()) return Value::str("");
      const size_t n = char_len(str, 0);
      return Value::str(case_map(str.substr(0, n), true) + str.substr(n));
    });
  if (name == "startswith" || name == "endswith") {
    const bool start = name == "startswith";
    return fn([str, start, name](std::vector<Value>& a, Env&) {
      if (a.empty()) throw JinjaError(0, name + "() requires an argument");
      auto test = [&](const std::string& p) {
        return p.size() <= str.size() &&
               (start ? str.compare(0, p.size(), p) == 0
                      : str.compare(str.size() - p.size(), p.size(), p) == 0);
      };
      if (a[0].k == Value::K::kStr) return Value::boolean(test(a[0].s));
      if (a[0].is_array()) {
        for (const auto& x : *a[0].arr) {
          if (x.k != Value::K::kStr)
            throw JinjaError(0, name + "() tuple elements must be strings");
          if (test(x.s)) return Value::boolean(true);
        }
        return Value::boolean(false);
      }
      throw JinjaError(0, name + "() argument must be a string or tuple of strings");
    });
  }
  if (name == "split")
    return fn([this, str](std::vector<Value>& a, Env&) {
      Value sep = a.size() > 0 ? a[0] : Value::null();
      int64_t maxsplit = -1;
      if (a.size() > 1) {
        if (a[1].k != Value::K::kInt) throw JinjaError(0, "maxsplit argument must be a number");
        maxsplit = a[1].i;
      }
      std::vector<Value> out;
      if (sep.k == Value::K::kNull) {
        const std::string text = trim_js(str, true, false);
        size_t i = 0;
        while (i < text.size()) {
          size_t j = i;
          while (j < text.size() && !is_space_js(uint8_t(text[j]))) ++j;
          if (maxsplit != -1 && int64_t(out.size()) >= maxsplit) {
            out.push_back(Value::str(text.substr(i)));
            break;
          }
          out.push_back(Value::str(text.substr(i, j - i)));
          i = j;
          while (i < text.size() && is_space_js(uint8_t(text[i]))) ++i;
        }
      } else {
        if (sep.k != Value::K::kStr) throw JinjaError(0, "sep argument must be a string or null");
        if (sep.s.empty()) throw JinjaError(0, "empty separator");
        std::vector<std::string> parts;
        size_t i = 0;
        while (true) {
          const size_t j = str.find(sep.s, i);
          if (j == std::string::npos) {
            parts.push_back(str.substr(i));
            break;
          }
          parts.push_back(str.substr(i, j - i));
          i = j + sep.s.size();
        }
        if (maxsplit != -1 && int64_t(parts.size()) > maxsplit) {
          std::string rest;
          for (size_t k = size_t(maxsplit); k < parts.size(); ++k)
            rest += (k > size_t(maxsplit) ? sep.s : "") + parts[k];
          parts.resize(size_t(maxsplit));
          parts.push_back(rest);
        }
        for (auto& p : parts) out.push_back(Value::str(p));
      }
      charge_list(out, 0);
      return Value::array(std::move(out));
    });
  if (name == "replace")
    return fn([this, str](std::vector<Value>& a, Env&) { return string_replace(str, a); });
  return Value::undefined();
}

Value Interpreter::string_replace(const std::string& str, std::vector<Value>& a) {
  Value kw = kwargs_of(a);
  if (a.size() < 2) throw JinjaError(0, "replace() requires at least two arguments");
  if (a[0].k != Value::K::kStr || a[1].k != Value::K::kStr)
    throw JinjaError(0, "replace() arguments must be strings");
  Value count = a.size() > 2 ? a[2] : kwarg(kw, "count") ? *kwarg(kw, "count") : Value::null();
  if (count.k != Value::K::kInt && count.k != Value::K::kNull)
    throw JinjaError(0, "replace() count must be a number");
  int64_t remaining = count.k == Value::K::kNull || count.i < 0 ? INT64_MAX : count.i;
  const std::string &from = a[0].s, &to = a[1].s;
  if (remaining == 0) return Value::str(str);
  std::string out;
  // The result can be far larger than the input ('x' * n with every x replaced by a long
  // string): it is refused as soon as it outgrows what the budget could still pay for.
  if (from.empty()) {  // inserts between every character
    for (size_t i = 0;; i += char_len(str, i)) {
      if (remaining > 0) {
        out += to;
        --remaining;
        need_room(out.size(), 0);
      }
      if (i >= str.size()) break;
      out.append(str, i, char_len(str, i));
    }
    return Value::str(out);
  }
  size_t i = 0;
  while (true) {
    const size_t j = remaining > 0 ? str.find(from, i) : std::string::npos;
    if (j == std::string::npos) {
      out.append(str, i);
      break;
    }
    out.append(str, i, j - i);
    out += to;
    need_room(out.size(), 0);
    i = j + from.size();
    --remaining;
  }
  return Value::str(out);
}

Value Interpreter::object_method(const Value& o, const std::string& name) {
  auto obj = o.obj;
  if (name == "get")
    return Value::function([this, obj](std::vector<Value>& a, Env&) {
      tick(0, obj->items.size() / kKeysPerStep);
      if (a.empty() || a[0].k != Value::K::kStr)
        throw JinjaError(0, std::string("object key must be a string: got ") +
                                (a.empty() ? "nothing" : a[0].type_name()));
      if (const Value* v = obj->find(a[0].s)) return *v;
      return a.size() > 1 ? a[1] : Value::null();
    });
  // Each pair of items() is a two-item list of its own.
  const uint64_t pair_bytes = 2 * sizeof(Value) + sizeof(std::vector<Value>);
  if (name == "items")
    return Value::function([this, obj, pair_bytes](std::vector<Value>&, Env&) {
      std::vector<Value> out;
      for (auto& [k, v] : obj->items) {
        charge(pair_bytes + k.size() + v.s.size(), 0);
        out.push_back(Value::array({Value::str(k), v}));
      }
      charge_list(out, 0);
      return Value::array(std::move(out));
    });
  if (name == "keys")
    return Value::function([this, obj](std::vector<Value>&, Env&) {
      std::vector<Value> out;
      for (auto& [k, v] : obj->items) out.push_back(Value::str(k));
      charge_list(out, 0);
      return Value::array(std::move(out));
    });
  if (name == "values")
    return Value::function([this, obj](std::vector<Value>&, Env&) {
      std::vector<Value> out;
      for (auto& [k, v] : obj->items) out.push_back(v);
      charge_list(out, 0);
      return Value::array(std::move(out));
    });
  if (name == "dictsort")
    return Value::function([this, obj, pair_bytes](std::vector<Value>& a, Env&) {
      Value kw = kwargs_of(a);
      auto arg = [&](size_t i, const char* k, Value d) {
        return a.size() > i ? a[i] : kwarg(kw, k) ? *kwarg(kw, k) : d;
      };
      const Value cs = arg(0, "case_sensitive", Value::boolean(false));
      const Value by = arg(1, "by", Value::str("key"));
      const Value rev = arg(2, "reverse", Value::boolean(false));
      if (by.k != Value::K::kStr || (by.s != "key" && by.s != "value"))
        throw JinjaError(0, "by must be either 'key' or 'value'");
      std::vector<Value> items;
      for (auto& [k, v] : obj->items) {
        charge(pair_bytes + k.size() + v.s.size(), 0);
        items.push_back(Value::array({Value::str(k), v}));
      }
      charge_list(items, 0);
      const size_t idx = by.s == "key" ? 0 : 1;
      std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        tick(0);
        const int c = compare_values((*x.arr)[idx], (*y.arr)[idx], cs.truthy());
        return rev.truthy() ? c > 0 : c < 0;
      });
      return Value::array(std::move(items));
    });
  return Value::undefined();
}

int Interpreter::compare_values(const Value& a, const Value& b, bool case_sensitive) {
  if (a.k == Value::K::kNull && b.k == Value::K::kNull) return 0;
  if (a.k == Value::K::kNull || b.k == Value::K::kNull)
    throw JinjaError(0, "cannot compare with none");
  if (a.k == Value::K::kUndefined && b.k == Value::K::kUndefined) return 0;
  if (a.k == Value::K::kUndefined || b.k == Value::K::kUndefined)
    throw JinjaError(0, "cannot compare with undefined");
  const bool an = a.is_number() || a.k == Value::K::kBool,
             bn = b.is_number() || b.k == Value::K::kBool;
  if (an && bn) return a.num() < b.num() ? -1 : a.num() > b.num() ? 1 : 0;
  if (a.k != b.k)
    throw JinjaError(0, std::string("cannot compare ") + a.type_name() + " and " + b.type_name());
  if (a.k == Value::K::kStr) {
    std::string x = case_sensitive ? a.s : case_map(a.s, false),
                y = case_sensitive ? b.s : case_map(b.s, false);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  throw JinjaError(0, std::string("cannot compare ") + a.type_name());
}

Value Interpreter::apply_filter(const Value& v, const Node& f, Env& env) {
  if (f.k == Node::K::kIdent) {
    const std::string& name = f.name;
    if (name == "safe") return v;
    if (name == "tojson") {
      JsonOptions o;
      o.budget = &budget_;
      return Value::str(to_json(v, o));
    }
    if (v.is_array()) {
      if (name == "list") return v;
      if (name == "first") return v.arr->empty() ? Value::undefined() : v.arr->front();
      if (name == "last") return v.arr->empty() ? Value::undefined() : v.arr->back();
      if (name == "length") return Value::integer(int64_t(v.arr->size()));
      if (name == "reverse") {
        std::vector<Value> r(v.arr->rbegin(), v.arr->rend());
        charge_list(r, f.line);
        return Value::array(std::move(r));
      }
      if (name == "sort") {
        std::vector<Value> r = *v.arr;
        charge_list(r, f.line);
        std::stable_sort(r.begin(), r.end(), [&](const Value& a, const Value& b) {
          tick(f.line);
          return compare_values(a, b, false) < 0;
        });
        return Value::array(std::move(r));
      }
      if (name == "join") return Value::str(join_values(*v.arr, ""));
      if (name == "string") {
        JsonOptions o;
        o.budget = &budget_;
        return Value::str(to_json(v, o, false));
      }
      if (name == "unique") {  // quadratic: a step per kItemsPerStep comparisons
        std::vector<Value> r;
        for (const auto& x : *v.arr) {
          tick(f.line, r.size() / kItemsPerStep + 1);
          bool seen = false;
          for (const auto& y : r) seen |= strict_equals(x, y);
          if (!seen) r.push_back(x);
        }
        charge_list(r, f.line);
        return Value::array(std::move(r));
      }
      throw JinjaError(f.line, "unknown list filter '" + name + "'");
    }
    if (v.k == Value::K::kStr) {
      if (name == "length") return Value::integer(int64_t(char_count(v.s)));
      if (name == "upper") return Value::str(case_map(v.s, true));
      if (name == "lower") return Value::str(case_map(v.s, false));
      if (name == "title") return Value::str(title_case(v.s));
      if (name == "capitalize") {
        std::vector<Value> none;
        return (*string_method(v, "capitalize").fn)(none, env);
      }
      if (name == "trim") return Value::str(trim_js(v.s, true, true));
      if (name == "indent") return Value::str(indent(v.s, 4, false, false));
      if (name == "join" || name == "string") return v;
      if (name == "int") {
        char* end = nullptr;
        const long long x = std::strtoll(v.s.c_str(), &end, 10);
        return Value::integer(end == v.s.c_str() ? 0 : x);
      }
      if (name == "float") {
        char* end = nullptr;
        const double x = std::strtod(v.s.c_str(), &end);
        return Value::number(end == v.s.c_str() ? 0 : x);
      }
      throw JinjaError(f.line, "unknown string filter '" + name + "'");
    }
    if (v.is_number()) {
      if (name == "abs")
        return v.k == Value::K::kInt ? (v.i == INT64_MIN ? int_or_float(-double(v.i))
                                                         : Value::integer(std::llabs(v.i)))
                                     : Value::number(std::fabs(v.f));
      if (name == "int") return v.k == Value::K::kInt ? v : int_or_float(std::floor(v.num()));
      if (name == "float") return Value::number(v.num());
      if (name == "string") return Value::str(to_output(v, &budget_));
      throw JinjaError(f.line, "unknown number filter '" + name + "'");
    }
    if (v.is_object()) {
      if (name == "items" || name == "keys" || name == "values" || name == "dictsort") {
        std::vector<Value> none;
        return (*object_method(v, name).fn)(none, env);
      }
      if (name == "length") return Value::integer(int64_t(v.obj->items.size()));
      throw JinjaError(f.line, "unknown dict filter '" + name + "'");
    }
    if (v.k == Value::K::kBool) {
      if (name == "bool") return v;
      if (name == "int") return Value::integer(v.b ? 1 : 0);
      if (name == "float") return Value::number(v.b ? 1 : 0);
      if (name == "string") return Value::str(v.b ? "true" : "false");
      throw JinjaError(f.line, "unknown boolean filter '" + name + "'");
    }
    throw JinjaError(f.line, "cannot apply filter '" + name + "' to " + v.type_name());
  }
  if (f.k != Node::K::kCall || f.x->k != Node::K::kIdent)
    throw JinjaError(f.line, "unknown filter");
  const std::string& name = f.x->name;
  auto args_kw = eval_args(f.a, env);
  auto& args = args_kw.first;
  auto& kw = args_kw.second;
  auto arg = [&](size_t i, const char* k) -> const Value* {
    if (args.size() > i) return &args[i];
    return kwarg(kw, k);
  };
  if (name == "tojson") {
    JsonOptions o;
    if (const Value* x = kwarg(kw, "indent")) {
      if (x->k != Value::K::kInt && x->k != Value::K::kNull)
        throw JinjaError(f.line, "indent must be a number");
      // Clamped: the indent is repeated at every level, so a huge one is a huge allocation.
      o.indent = x->k == Value::K::kInt ? int(std::clamp<int64_t>(x->i, 0, 1 << 16)) : 0;
    }
    if (const Value* x = kwarg(kw, "ensure_ascii")) o.ensure_ascii = x->truthy();
    if (const Value* x = kwarg(kw, "sort_keys")) o.sort_keys = x->truthy();
    o.budget = &budget_;
    if (const Value* x = kwarg(kw, "separators"); x && x->k != Value::K::kNull) {
      if (!x->is_array() || x->arr->size() != 2 || (*x->arr)[0].k != Value::K::kStr ||
          (*x->arr)[1].k != Value::K::kStr)
        throw JinjaError(f.line, "separators must be a tuple of two strings");
      o.has_separators = true;
      o.item_sep = (*x->arr)[0].s;
      o.key_sep = (*x->arr)[1].s;
    }
    return Value::str(to_json(v, o));
  }
  if (name == "join") {
    std::vector<Value> items;
    if (v.k == Value::K::kStr) {
      need_room(uint64_t(char_count(v.s)) * sizeof(Value), f.line);
      for (size_t i = 0; i < v.s.size(); i += char_len(v.s, i))
        items.push_back(Value::str(v.s.substr(i, char_len(v.s, i))));
    } else if (v.is_array())
      items = *v.arr;
    else
      throw JinjaError(f.line, std::string("cannot join ") + v.type_name());
    charge_list(items, f.line);
    const Value* sep = arg(0, "separator");
    if (sep && sep->k != Value::K::kStr) throw JinjaError(f.line, "separator must be a string");
    return Value::str(join_values(items, sep ? sep->s : ""));
  }
  if (name == "int" || name == "float") {
    const bool is_int = name == "int";
    Value dflt =
        arg(0, "default") ? *arg(0, "default") : (is_int ? Value::integer(0) : Value::number(0));
    if (v.k == Value::K::kStr) {
      char* end = nullptr;
      if (is_int) {
        const long long x = std::strtoll(v.s.c_str(), &end, 10);
        return end == v.s.c_str() ? dflt : Value::integer(x);
      }
      const double x = std::strtod(v.s.c_str(), &end);
      return end == v.s.c_str() ? dflt : Value::number(x);
    }
    if (v.is_number()) return v;
    if (v.k == Value::K::kBool) return is_int ? Value::integer(v.b) : Value::number(v.b);
    throw JinjaError(f.line, "cannot apply filter '" + name + "' to " + v.type_name());
  }
  if (name == "default" || name == "d") {
    if (name == "d") throw JinjaError(f.line, "unknown filter 'd'");
    Value dflt = args.size() > 0 ? args[0] : Value::str("");
    const Value* b = arg(1, "boolean");
    if (b && b->k != Value::K::kBool)
      throw JinjaError(f.line, "`default` filter flag must be a boolean");
    if (v.k == Value::K::kUndefined || (b && b->b && !v.truthy())) return dflt;
    return v;
  }
  if (v.is_array()) {
    if (name == "sort") {
      const Value* rev = arg(0, "reverse");
      const Value* cs = arg(1, "case_sensitive");
      const Value* attr = arg(2, "attribute");
      std::vector<Value> r = *v.arr;
      charge_list(r, f.line);
      const bool by_attr = attr && attr->k != Value::K::kNull;
      const std::string path = !by_attr                    ? ""
                               : attr->k == Value::K::kInt ? std::to_string(attr->i)
                                                           : attr->s;
      std::stable_sort(r.begin(), r.end(), [&](const Value& a, const Value& b) {
        tick(f.line);
        int c;
        if (by_attr) {
          const Value ka = attribute(a, path), kb = attribute(b, path);
          charge(ka.s.size() + kb.s.size(), f.line);
          c = compare_values(ka, kb, cs && cs->truthy());
        } else {
          c = compare_values(a, b, cs && cs->truthy());
        }
        return rev && rev->truthy() ? c > 0 : c < 0;
      });
      return Value::array(std::move(r));
    }
    if (name == "selectattr" || name == "rejectattr") {
      const bool select = name == "selectattr";
      for (const auto& item : *v.arr)
        if (!item.is_attr_container())
          throw JinjaError(f.line, name + " can only be applied to a list of objects");
      for (const auto& a : f.a)
        if (a->k != Node::K::kLiteral || a->lit.k != Value::K::kStr)
          throw JinjaError(f.line, "arguments of " + name + " must be strings");
      if (args.empty()) throw JinjaError(f.line, name + " needs an attribute name");
      std::vector<Value> out;
      tick(f.line, v.arr->size());
      for (const auto& item : *v.arr) {
        const Value* a = item.obj->find(args[0].s);
        bool res = false;
        if (a && a->truthy()) {
          if (args.size() >= 2) {
            Node t;
            t.k = Node::K::kTest;
            t.name = args[1].s;
            res = test_value(*a, args[1].s, args.size() >= 3 ? &args[2] : nullptr, f.line);
          } else {
            res = a->truthy();
          }
        }
        if (res == select) out.push_back(item);
      }
      charge_list(out, f.line);
      return Value::array(std::move(out));
    }
    if (name == "map") {
      const Value* attr = kwarg(kw, "attribute");
      if (!attr) throw JinjaError(f.line, "map without attribute= is not supported");
      if (attr->k != Value::K::kStr) throw JinjaError(f.line, "attribute must be a string");
      const Value* dflt = kwarg(kw, "default");
      std::vector<Value> out;
      for (const auto& item : *v.arr) {
        if (!item.is_attr_container()) throw JinjaError(f.line, "items in map must be objects");
        Value x = attribute(item, attr->s);
        out.push_back(x.k == Value::K::kUndefined && dflt ? *dflt : x);
      }
      charge_list(out, f.line);
      return Value::array(std::move(out));
    }
    throw JinjaError(f.line, "unknown list filter '" + name + "'");
  }
  if (v.k == Value::K::kStr) {
    if (name == "indent") {
      const Value* w = arg(0, "width");
      if (w && w->k != Value::K::kInt) throw JinjaError(f.line, "width must be a number");
      const Value* first = arg(1, "first");
      const Value* blank = arg(2, "blank");
      return Value::str(
          indent(v.s, w ? w->i : 4, first && first->truthy(), blank && blank->truthy()));
    }
    if (name == "replace") {
      std::vector<Value> a = args;
      a.push_back(kw);
      return string_replace(v.s, a);
    }
    throw JinjaError(f.line, "unknown string filter '" + name + "'");
  }
  if (v.is_object()) {
    Value m = object_method(v, name);
    if (m.k == Value::K::kFunc) {
      std::vector<Value> a = args;
      if (!kw.obj->items.empty()) a.push_back(kw);
      return (*m.fn)(a, env);
    }
    throw JinjaError(f.line, "unknown dict filter '" + name + "'");
  }
  throw JinjaError(f.line, "cannot apply filter '" + name + "' to " + v.type_name());
}

bool Interpreter::test_value(const Value& v, const std::string& t, const Value* arg, int line) {
  if (t == "equalto" || t == "eq")
    return arg && ((v.k == arg->k && strict_equals(v, *arg)) ||
                   (v.is_number() && arg->is_number() && v.num() == arg->num()));
  Node n;
  n.k = Node::K::kTest;
  n.name = t;
  n.line = line;
  auto lit = std::make_shared<Node>();
  lit->k = Node::K::kLiteral;
  lit->lit = v;
  n.x = lit;
  Env dummy(nullptr);
  return eval_test(n, dummy).b;
}

Value Interpreter::attribute(const Value& item, const std::string& path) {
  Value cur = item;
  size_t i = 0;
  while (true) {
    const size_t dot = path.find('.', i);
    const std::string part = path.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
    if (cur.is_attr_container()) {
      const Value* v = cur.obj->find(part);
      cur = v ? *v : Value::undefined();
    } else if (cur.is_array()) {
      char* end = nullptr;
      const long idx = std::strtol(part.c_str(), &end, 10);
      if (end == part.c_str() || idx < 0 || size_t(idx) >= cur.arr->size())
        return Value::undefined();
      cur = (*cur.arr)[size_t(idx)];
    } else {
      return Value::undefined();
    }
    if (dot == std::string::npos) return cur;
    i = dot + 1;
  }
}

std::string Interpreter::join_values(const std::vector<Value>& items, const std::string& sep) {
  std::string r;
  for (size_t i = 0; i < items.size(); ++i) {
    need_room(r.size(), 0);  // a long separator can make the result far larger than the items
    if (i) r += sep;
    const Value& x = items[i];
    switch (x.k) {
      case Value::K::kUndefined:
      case Value::K::kNull:
        break;
      case Value::K::kStr:
        r += x.s;
        break;
      case Value::K::kInt:
        r += std::to_string(x.i);
        break;
      case Value::K::kFloat:
        r += js_number(x.f);
        break;
      case Value::K::kBool:
        r += x.b ? "true" : "false";
        break;
      case Value::K::kArray:
      case Value::K::kTuple: {
        // JavaScript joins nested arrays of runtime values with ",", printing each as text.
        r += js_string(x, &budget_);
        break;
      }
      default:
        r += "[object Map]";
        break;
    }
  }
  return r;
}

std::string Interpreter::indent(const std::string& s, int64_t width, bool first, bool blank) {
  // The pad is refused before it is allocated ('x'|indent(10**12)) and the result as it grows.
  need_room(uint64_t(std::max<int64_t>(0, width)), 0);
  const std::string pad(size_t(std::max<int64_t>(0, width)), ' ');
  std::string out;
  size_t i = 0;
  int line = 0;
  while (true) {
    const size_t j = s.find('\n', i);
    const std::string l = s.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if ((first || line > 0) && (blank || !l.empty())) out += pad;
    out += l;
    need_room(out.size(), 0);
    if (j == std::string::npos) break;
    out += '\n';
    i = j + 1;
    ++line;
  }
  return out;
}

void Interpreter::before_ns_write(const Object* ns, const std::string& key) {
  for (Watch* w : watches_)
    if (!w->hit && w->ns == ns && *w->key == key) {
      w->hit = true;
      if (const Value* v = ns->find(key)) w->old = *v;
    }
}

// `set ns.a = ns.a ~ x ~ y` (or `+`) appends to the namespace's string in place. Templates build
// the whole prompt this way, a message at a time, and copying the growing string at every step is
// quadratic in the conversation (the reference's JavaScript strings are ropes and copy nothing).
// The result is the general path's: x, y are evaluated (in order) before ns.a is read, which is
// the same unless evaluating them writes ns.a (a macro can), and then the append starts from the
// value before that write.
bool Interpreter::append_in_place(const Node& n, Env& env) {
  const Node& lhs = *n.x;
  if (!n.y || lhs.k != Node::K::kMember || lhs.flag || lhs.x->k != Node::K::kIdent ||
      lhs.y->k != Node::K::kIdent)
    return false;
  // The left spine of the concatenation: ((ns.a ~ x) ~ y) gives [y-node, x-node], ns.a.
  std::vector<const Node*> chain;
  const Node* left = n.y.get();
  while (left->k == Node::K::kBinary && (left->name == "~" || left->name == "+")) {
    chain.push_back(left);
    left = left->x.get();
  }
  if (chain.empty() || left->k != Node::K::kMember || left->flag || left->x->k != Node::K::kIdent ||
      left->y->k != Node::K::kIdent || left->x->name != lhs.x->name || left->y->name != lhs.y->name)
    return false;
  const Value ns = env.lookup(lhs.x->name);
  if (ns.k != Value::K::kNamespace) return false;
  const std::string& key = lhs.y->name;
  if (const Value* cur = ns.obj->find(key); !cur || cur->k != Value::K::kStr) return false;
  tick(n.line, chain.size() + 2);  // the binary, member and name nodes the general path evaluates
  Watch w{ns.obj.get(), &key, false, Value()};
  std::string tail;
  {
    watches_.push_back(&w);
    struct Pop {
      std::vector<Watch*>& v;
      ~Pop() { v.pop_back(); }
    } pop{watches_};
    for (size_t i = chain.size(); i-- > 0;) {
      const Node& op = *chain[i];
      const Value r = eval(*op.y, env);
      // A string concatenated with anything else is their texts joined, but none and undefined
      // are errors (as eval_binary).
      if (r.none_or_undefined())
        throw JinjaError(op.line, "cannot perform '" + op.name + "' on " +
                                      (r.k == Value::K::kNull ? "none" : "an undefined value"));
      const std::string piece = js_string(r, &budget_);
      need_room(uint64_t(tail.size()) + piece.size(), op.line);
      tail += piece;
    }
  }
  charge(tail.size(), n.line);
  tick(n.line, ns.obj->items.size() / kKeysPerStep);
  before_ns_write(ns.obj.get(), key);
  written_ns_.emplace(ns.obj.get(), ns.obj);
  if (w.hit) {  // start from the value before the write
    need_room(uint64_t(w.old.s.size()) + tail.size(), n.line);
    Value v = Value::str(w.old.s + tail);
    charge(v.s.size(), n.line);
    ns.obj->set(key, std::move(v));
  } else {
    ns.obj->find(key)->s += tail;  // unchanged since the check above
  }
  return true;
}

Value Interpreter::eval_set(const Node& n, Env& env) {
  if (append_in_place(n, env)) return Value::null();
  Value rhs = n.y ? eval(*n.y, env) : block(n.body, env);
  const Node& lhs = *n.x;
  if (lhs.k == Node::K::kIdent) {
    env.set(lhs.name, rhs);
  } else if (lhs.k == Node::K::kTuple) {
    if (!rhs.is_array())
      throw JinjaError(n.line, std::string("cannot unpack ") + rhs.type_name() + " in set");
    if (rhs.arr->size() != lhs.a.size())
      throw JinjaError(n.line, "wrong number of items to unpack in set");
    for (size_t i = 0; i < lhs.a.size(); ++i) {
      if (lhs.a[i]->k != Node::K::kIdent)
        throw JinjaError(n.line, "cannot unpack to a non-name in set");
      env.set(lhs.a[i]->name, (*rhs.arr)[i]);
    }
  } else if (lhs.k == Node::K::kMember) {
    Value obj = eval(*lhs.x, env);
    if (obj.k != Value::K::kNamespace)
      throw JinjaError(n.line, "cannot assign an attribute of something that is not a namespace");
    if (lhs.flag || lhs.y->k != Node::K::kIdent)
      throw JinjaError(n.line, "cannot assign to this member");
    written_ns_.emplace(obj.obj.get(), obj.obj);
    tick(n.line, obj.obj->items.size() / kKeysPerStep);
    before_ns_write(obj.obj.get(), lhs.y->name);
    obj.obj->set(lhs.y->name, rhs);
  } else {
    throw JinjaError(n.line, "invalid left side of an assignment");
  }
  return Value::null();
}

// Whether the body or else-block of a for loop can read `loop`: it names it, or calls something
// (a macro sees its caller's variables). Cached per node, as loops nest.
bool Interpreter::sees_loop(const Node& n) {
  if (auto it = sees_loop_.find(&n); it != sees_loop_.end()) return it->second;
  std::vector<const Node*> todo;
  for (const auto& c : n.body) todo.push_back(c.get());
  for (const auto& c : n.alt) todo.push_back(c.get());
  bool sees = false;
  while (!todo.empty() && !sees) {
    const Node* x = todo.back();
    todo.pop_back();
    if (!x) continue;
    if ((x->k == Node::K::kIdent && x->name == "loop") || x->k == Node::K::kCall ||
        x->k == Node::K::kCallBlock) {
      sees = true;
      break;
    }
    for (const auto* v : {&x->a, &x->body, &x->alt})
      for (const auto& c : *v) todo.push_back(c.get());
    for (const auto* c : {&x->x, &x->y, &x->z}) todo.push_back(c->get());
  }
  sees_loop_[&n] = sees;
  return sees;
}

Value Interpreter::eval_for(const Node& n, Env& env) {
  Env scope(&env);
  const Node* test = n.y->k == Node::K::kSelect ? n.y->y.get() : nullptr;
  const Node& source = test ? *n.y->x : *n.y;
  // `for i in range(...)` counts without building the list (templates scan the messages
  // backwards this way inside their loop over the messages); other lists are iterated in place
  // (lists are never changed in place, and `seq` keeps this one alive). Either way a loop costs
  // steps, not a copy.
  std::optional<RangeSpec> lazy;
  std::shared_ptr<std::vector<Value>> seq;
  if (source.k == Node::K::kCall && source.x->k == Node::K::kIdent && source.x->name == "range" &&
      range_fn_ && scope.lookup("range").fn == range_fn_) {
    tick(source.line, 2);  // the call and the name, as eval would
    auto args_kw = eval_args(source.a, scope);
    if (!args_kw.second.obj->items.empty()) args_kw.first.push_back(args_kw.second);
    try {
      lazy = range_spec(args_kw.first);
    } catch (JinjaError& e) {
      if (e.line == 0) e.line = source.line;
      throw;
    }
  } else {
    Value iterable = eval(source, scope);
    if (!iterable.is_array() && !iterable.is_object())
      throw JinjaError(n.line, std::string("cannot loop over ") + iterable.type_name());
    seq = iterable.arr;
    if (iterable.is_object()) {
      std::vector<Value> keys;
      for (auto& [k, v] : iterable.obj->items) keys.push_back(Value::str(k));
      charge_list(keys, n.line);
      seq = std::make_shared<std::vector<Value>>(std::move(keys));
    }
  }
  const uint64_t count = lazy ? lazy->n : seq->size();
  auto at = [&](uint64_t i) -> Value { return lazy ? Value::integer(lazy->at(i)) : (*seq)[i]; };
  auto bind = [&](Env& e, const Value& cur) {
    if (n.x->k == Node::K::kIdent) {
      e.set(n.x->name, cur);
      return;
    }
    // Only lists unpack in a for loop (the reference refuses tuples there).
    if (cur.k != Value::K::kArray)
      throw JinjaError(n.line, std::string("cannot unpack ") + cur.type_name());
    if (cur.arr->size() != n.x->a.size())
      throw JinjaError(n.line, "wrong number of items to unpack");
    for (size_t j = 0; j < n.x->a.size(); ++j) {
      if (n.x->a[j]->k != Node::K::kIdent) throw JinjaError(n.line, "cannot unpack to a non-name");
      e.set(n.x->a[j]->name, (*cur.arr)[j]);
    }
  };
  std::vector<uint64_t> picked;  // with a test: the indices of the items that pass it
  if (test) {
    for (uint64_t i = 0; i < count; ++i) {
      Env loop_scope(&scope);
      bind(loop_scope, at(i));
      if (eval(*test, loop_scope).truthy()) {
        charge(sizeof(uint64_t), n.line);
        picked.push_back(i);
      }
    }
  }
  auto item = [&](int64_t i) { return at(test ? picked[size_t(i)] : uint64_t(i)); };
  std::string out;
  bool none = true;
  const int64_t len = int64_t(test ? picked.size() : count);
  static const std::string kLoop = "loop";
  const bool with_loop = sees_loop(n);
  for (int64_t i = 0; i < len; ++i) {
    // An empty body evaluates no node, so its iterations are steps of their own. Copies of the
    // items are charged; the loop object's own size is fixed (bounded by the steps).
    if (n.body.empty()) tick(n.line);
    const Value cur = item(i);
    charge(cur.s.size(), n.line);
    // The loop object is most of the cost of an iteration, so it is built only for a loop that
    // can see it, and then directly (its keys are distinct).
    if (!with_loop) {
      bind(scope, cur);
    } else {
      Value prev = i > 0 ? item(i - 1) : Value::undefined();
      Value next = i < len - 1 ? item(i + 1) : Value::undefined();
      charge(prev.s.size() + next.s.size(), n.line);
      static const std::string kKeys[] = {"index", "index0", "revindex", "revindex0", "first",
                                          "last",  "length", "previtem", "nextitem"};
      Value loop = Value::object();
      auto& o = loop.obj->items;
      o.reserve(9);
      o.emplace_back(kKeys[0], Value::integer(i + 1));
      o.emplace_back(kKeys[1], Value::integer(i));
      o.emplace_back(kKeys[2], Value::integer(len - i));
      o.emplace_back(kKeys[3], Value::integer(len - i - 1));
      o.emplace_back(kKeys[4], Value::boolean(i == 0));
      o.emplace_back(kKeys[5], Value::boolean(i == len - 1));
      o.emplace_back(kKeys[6], Value::integer(len));
      o.emplace_back(kKeys[7], std::move(prev));
      o.emplace_back(kKeys[8], std::move(next));
      scope.set(kLoop, std::move(loop));
      bind(scope, cur);
    }
    try {
      out += block(n.body, scope).s;  // its pieces were charged
    } catch (ContinueSignal&) {
      continue;
    } catch (BreakSignal&) {
      break;
    }
    none = false;
  }
  if (none) out += block(n.alt, scope).s;
  return Value::str(std::move(out));
}

void Interpreter::bind_args(const std::string& display, const std::vector<NodeP>& params,
                            std::vector<Value> args, Env& scope) {
  Value kw = kwargs_of(args);
  std::vector<std::pair<std::string, const Node*>> pending;
  for (size_t i = 0; i < params.size(); ++i) {
    const Node& p = *params[i];
    const std::string name = p.k == Node::K::kIdent ? p.name : p.name;
    Value v;
    bool have = false;
    if (i < args.size()) {
      v = args[i];
      have = true;
    } else if (Value* x = kw.obj->find(name)) {
      v = *x;
      have = true;
      auto& it = kw.obj->items;
      it.erase(std::remove_if(it.begin(), it.end(), [&](auto& e) { return e.first == name; }),
               it.end());
    }
    if (!have && p.k == Node::K::kKwArg) pending.emplace_back(name, p.x.get());
    scope.set(name, have ? v : Value::undefined());
  }
  if (!kw.obj->items.empty())
    throw JinjaError(
        0, "macro " + display + " takes no keyword argument '" + kw.obj->items[0].first + "'");
  if (args.size() > params.size())
    throw JinjaError(0, "macro " + display + " takes not more than " +
                            std::to_string(params.size()) + " argument(s)");
  for (auto& [name, def] : pending) scope.set(name, eval(*def, scope));
}

Value Interpreter::eval_macro(const Node& n, Env& env) {
  const Node* node = &n;
  env.set(n.name, Value::function([this, node](std::vector<Value>& args, Env& caller) {
            Env scope(&caller);
            bind_args("'" + node->name + "'", node->a, args, scope);
            return block(node->body, scope);
          }));
  return Value::null();
}

Value Interpreter::eval_call_block(const Node& n, Env& env) {
  const Node* node = &n;
  Env* def_env = &env;
  Value caller = Value::function([this, node, def_env](std::vector<Value>& args, Env&) {
    Env scope(def_env);
    bind_args("None", node->alt, args, scope);
    return block(node->body, scope);
  });
  auto args_kw = eval_args(n.x->a, env);
  auto& args = args_kw.first;
  auto& kw = args_kw.second;
  args.push_back(kw);
  Value fn = eval(*n.x->x, env);
  if (fn.k != Value::K::kFunc)
    throw JinjaError(n.line, "cannot call something that is not a function");
  Env with_caller(&env);
  with_caller.set("caller", caller);
  return (*fn.fn)(args, with_caller);
}

}  // namespace hearth::templates::jinja
