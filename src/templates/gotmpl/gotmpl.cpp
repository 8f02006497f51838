// The Go text/template subset Ollama's Modelfile TEMPLATEs use: text and {{ actions }} with trim
// markers, comments, if / else if / else, range (with $i, $v :=, else, break, continue), with,
// variables ($x := / $x =, $ for the root), pipelines, field chains, parenthesised pipelines and
// the functions and, or, not, eq, ne, lt, le, gt, ge, len, index, slice, print, printf, println,
// json, html, urlquery, currentDate, yesterdayDate. Data is JSON; a missing field is nil
// (missingkey=zero), which prints "<no value>". Objects carrying "__json__" print as that JSON
// (Ollama's tool and argument types print themselves as JSON).
#include "templates/gotmpl/gotmpl.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <new>
#include <stdexcept>

namespace hearth::templates::gotmpl {

namespace {

using ojson = nlohmann::ordered_json;

struct Error : std::runtime_error {
  Error(int l, const std::string& m) : std::runtime_error(m), line(l) {}
  int line;
};

// ---- values

struct GValue {
  enum class K { kNil, kBool, kInt, kFloat, kStr, kList, kMap };
  K k = K::kNil;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  // kList: the elements [off, off + len) of `list`; `slice` shares its operand's elements, as a
  // Go slice does (templates slice .Messages once per message: copying would be quadratic).
  std::shared_ptr<std::vector<GValue>> list;
  size_t off = 0, len = 0;
  std::shared_ptr<std::vector<std::pair<std::string, GValue>>> map;
  std::shared_ptr<ojson> json;  // printed form for Ollama's JSON-printing types

  static GValue str(std::string x) {
    GValue v;
    v.k = K::kStr;
    v.s = std::move(x);
    return v;
  }
  static GValue boolean(bool x) {
    GValue v;
    v.k = K::kBool;
    v.b = x;
    return v;
  }
  static GValue integer(int64_t x) {
    GValue v;
    v.k = K::kInt;
    v.i = x;
    return v;
  }
  const GValue& at(size_t i) const { return (*list)[off + i]; }
  const GValue* field(const std::string& name) const {
    if (k != K::kMap) return nullptr;
    for (const auto& [key, v] : *map)
      if (key == name) return &v;
    return nullptr;
  }
  bool truthy() const {
    switch (k) {
      case K::kNil:
        return false;
      case K::kBool:
        return b;
      case K::kInt:
        return i != 0;
      case K::kFloat:
        return f != 0;
      case K::kStr:
        return !s.empty();
      case K::kList:
        return len != 0;
      case K::kMap:
        return !map->empty();
    }
    return false;
  }
};

GValue from_json(const ojson& j) {
  GValue v;
  switch (j.type()) {
    case ojson::value_t::boolean:
      return GValue::boolean(j.get<bool>());
    case ojson::value_t::number_integer:
      return GValue::integer(j.get<int64_t>());
    case ojson::value_t::number_unsigned:
      return GValue::integer(int64_t(j.get<uint64_t>()));
    case ojson::value_t::number_float:
      v.k = GValue::K::kFloat;
      v.f = j.get<double>();
      return v;
    case ojson::value_t::string:
      return GValue::str(j.get<std::string>());
    case ojson::value_t::array:
      v.k = GValue::K::kList;
      v.list = std::make_shared<std::vector<GValue>>();
      for (const auto& x : j) v.list->push_back(from_json(x));
      v.len = v.list->size();
      return v;
    case ojson::value_t::object:
      v.k = GValue::K::kMap;
      v.map = std::make_shared<std::vector<std::pair<std::string, GValue>>>();
      for (const auto& [key, x] : j.items()) {
        if (key == "__json__")
          v.json = std::make_shared<ojson>(x);
        else
          v.map->emplace_back(key, from_json(x));
      }
      return v;
    default:
      return v;
  }
}

// Go's strconv.FormatFloat(f, 'g', -1, 64), what fmt's %v prints for a float64.
std::string go_float(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "+Inf" : "-Inf";
  if (f == 0) return std::signbit(f) ? "-0" : "0";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", f);
  // Shortest representation that round-trips.
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*e", p - 1, f);
    if (std::strtod(buf, nullptr) == f) break;
  }
  std::string e(buf);  // d.ddde±XX
  const size_t epos = e.find('e');
  std::string mant = e.substr(0, epos);
  const int exp = std::stoi(e.substr(epos + 1));
  std::string sign;
  if (mant[0] == '-') {
    sign = "-";
    mant.erase(0, 1);
  }
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  if (exp < -4 || exp >= 21) {
    std::string r = sign + digits.substr(0, 1);
    if (digits.size() > 1) r += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return r + eb;
  }
  const int dp = exp + 1;  // digits before the point
  std::string r;
  if (dp <= 0) {
    r = "0." + std::string(size_t(-dp), '0') + digits;
  } else if (size_t(dp) >= digits.size()) {
    r = digits + std::string(size_t(dp) - digits.size(), '0');
  } else {
    r = digits.substr(0, size_t(dp)) + "." + digits.substr(size_t(dp));
  }
  return sign + r;
}

// encoding/json's Marshal: compact, <, > and & escaped as \u003c \u003e \u0026 (HTML-safe).
void go_json(const ojson& j, std::string& out) {
  switch (j.type()) {
    case ojson::value_t::null:
      out += "null";
      return;
    case ojson::value_t::boolean:
      out += j.get<bool>() ? "true" : "false";
      return;
    case ojson::value_t::number_integer:
      out += std::to_string(j.get<int64_t>());
      return;
    case ojson::value_t::number_unsigned:
      out += std::to_string(j.get<uint64_t>());
      return;
    case ojson::value_t::number_float: {
      const double f = j.get<double>();
      const double a = std::fabs(f);
      std::string s = go_float(f);
      if (a != 0 && (a < 1e-6 || a >= 1e21)) {  // Go uses exponent form only outside this range
        out += s;
      } else if (s.find('e') != std::string::npos) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", f);
        out += buf;
      } else {
        out += s;
      }
      return;
    }
    case ojson::value_t::string: {
      out += '"';
      const std::string s = j.get<std::string>();
      for (size_t i = 0; i < s.size(); ++i) {
        const unsigned char c = uint8_t(s[i]);
        char buf[8];
        if (c == '"')
          out += "\\\"";
        else if (c == '\\')
          out += "\\\\";
        else if (c == '\n')
          out += "\\n";
        else if (c == '\r')
          out += "\\r";
        else if (c == '\t')
          out += "\\t";
        else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else if (c == 0xE2 && i + 2 < s.size() && uint8_t(s[i + 1]) == 0x80 &&
                   (uint8_t(s[i + 2]) == 0xA8 || uint8_t(s[i + 2]) == 0xA9)) {
          out += uint8_t(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
          i += 2;
        } else {
          out += char(c);
        }
      }
      out += '"';
      return;
    }
    case ojson::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& x : j) {
        if (!first) out += ',';
        first = false;
        go_json(x, out);
      }
      out += ']';
      return;
    }
    case ojson::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, x] : j.items()) {
        if (!first) out += ',';
        first = false;
        go_json(ojson(k), out);
        out += ':';
        go_json(x, out);
      }
      out += '}';
      return;
    }
    default:
      out += "null";
  }
}

ojson to_ojson(const GValue& v) {
  if (v.json) return *v.json;
  switch (v.k) {
    case GValue::K::kNil:
      return nullptr;
    case GValue::K::kBool:
      return v.b;
    case GValue::K::kInt:
      return v.i;
    case GValue::K::kFloat:
      return v.f;
    case GValue::K::kStr:
      return v.s;
    case GValue::K::kList: {
      ojson a = ojson::array();
      for (size_t i = 0; i < v.len; ++i) a.push_back(to_ojson(v.at(i)));
      return a;
    }
    case GValue::K::kMap: {
      ojson o = ojson::object();
      for (const auto& [k, x] : *v.map) o[k] = to_ojson(x);
      return o;
    }
  }
  return nullptr;
}

std::string json_of(const GValue& v) {
  std::string out;
  go_json(to_ojson(v), out);
  return out;
}

// fmt's %v.
std::string go_print(const GValue& v) {
  if (v.json) return json_of(v);
  switch (v.k) {
    case GValue::K::kNil:
      return "<no value>";
    case GValue::K::kBool:
      return v.b ? "true" : "false";
    case GValue::K::kInt:
      return std::to_string(v.i);
    case GValue::K::kFloat:
      return go_float(v.f);
    case GValue::K::kStr:
      return v.s;
    case GValue::K::kList: {
      std::string r = "[";
      for (size_t i = 0; i < v.len; ++i) r += (i ? " " : "") + go_print(v.at(i));
      return r + "]";
    }
    case GValue::K::kMap: {
      auto items = *v.map;
      std::sort(items.begin(), items.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      std::string r = "map[";
      for (size_t i = 0; i < items.size(); ++i)
        r += (i ? " " : "") + items[i].first + ":" + go_print(items[i].second);
      return r + "]";
    }
  }
  return "";
}

// ---- syntax tree

struct Node;
using NodeP = std::shared_ptr<Node>;

struct Arg {
  enum class K { kDot, kNil, kBool, kNumber, kString, kField, kVariable, kFunc, kPipe };
  K k = K::kNil;
  GValue lit;
  std::string name;                 // variable or function name
  std::vector<std::string> fields;  // field chain after the base
  NodeP pipe;                       // kPipe
  int line = 0;
};

struct Command {
  std::vector<Arg> args;
};

struct Node {
  enum class K { kText, kAction, kIf, kRange, kWith, kBreak, kContinue, kList, kPipe };
  K k = K::kList;
  int line = 0;
  std::string text;
  // kPipe: declarations and commands
  std::vector<std::string> decl;
  bool assign = false;  // "=" rather than ":="
  std::vector<Command> cmds;
  NodeP pipe;               // action / if / range / with
  std::vector<NodeP> list;  // kList children; branch bodies below
  NodeP body, else_body;    // kIf / kRange / kWith (each a kList)
};

// ---- lexer + parser (one pass over the source)

class Parser {
 public:
  explicit Parser(std::string_view src) : s_(src) {}

  NodeP parse() {
    auto root = std::make_shared<Node>();
    root->k = Node::K::kList;
    root->line = 1;  // every node has a line, for errors raised while running it
    std::string end = parse_list(*root, 0);
    if (!end.empty()) throw Error(line_, "unexpected {{" + end + "}}");
    return root;
  }

 private:
  // Parses nodes into `into` until {{end}}/{{else ...}} (returned) or the end of input ("").
  std::string parse_list(Node& into, int depth) {
    if (depth > 100) throw Error(line_, "nesting too deep");
    while (pos_ < s_.size()) {
      size_t open = s_.find("{{", pos_);
      std::string text(
          s_.substr(pos_, open == std::string_view::npos ? std::string_view::npos : open - pos_));
      if (open == std::string_view::npos) {
        add_text(into, text);
        pos_ = s_.size();
        break;
      }
      size_t p = open + 2;
      bool trim_left = false;
      if (p + 1 < s_.size() && s_[p] == '-' && is_blank(s_[p + 1])) {
        trim_left = true;
        p += 2;
      }
      if (trim_left)
        while (!text.empty() && is_blank(text.back())) text.pop_back();
      add_text(into, text);
      count_lines(pos_, open);
      pos_ = p;
      // Comment?
      skip_blanks();
      if (s_.compare(pos_, 2, "/*") == 0) {
        const size_t end = s_.find("*/", pos_ + 2);
        if (end == std::string_view::npos) throw Error(line_, "unclosed comment");
        count_lines(pos_, end);
        pos_ = end + 2;
        skip_blanks();
        close_action();
        continue;
      }
      const int l = line_;
      std::string word = peek_word();
      if (word == "end") {
        pos_ += 3;
        close_action();
        return "end";
      }
      if (word == "else") {
        pos_ += 4;
        skip_blanks();
        std::string next = peek_word();
        if (next == "if" || next == "with") {
          pos_ += next.size();
          return "else " + next;
        }
        close_action();
        return "else";
      }
      if (word == "if" || word == "with" || word == "range") {
        pos_ += word.size();
        into.list.push_back(parse_branch(word, l, depth));
        continue;
      }
      if (word == "break" || word == "continue") {
        pos_ += word.size();
        close_action();
        if (range_depth_ == 0) throw Error(l, "{{" + word + "}} outside {{range}}");
        auto n = std::make_shared<Node>();
        n->k = word == "break" ? Node::K::kBreak : Node::K::kContinue;
        n->line = l;
        into.list.push_back(n);
        continue;
      }
      if (word == "define" || word == "template" || word == "block")
        throw Error(l, "{{" + word + "}} is not supported");
      auto n = std::make_shared<Node>();
      n->k = Node::K::kAction;
      n->line = l;
      n->pipe = parse_pipeline(true, 0);
      close_action();
      into.list.push_back(n);
    }
    return "";
  }

  // if/with/range: the pipeline, the body, an optional else (or else if/else with chain), end.
  NodeP parse_branch(const std::string& kind, int l, int depth) {
    auto n = std::make_shared<Node>();
    n->k = kind == "if" ? Node::K::kIf : kind == "with" ? Node::K::kWith : Node::K::kRange;
    n->line = l;
    n->pipe = parse_pipeline(true, 0);
    close_action();
    n->body = std::make_shared<Node>();
    n->body->line = l;
    if (kind == "range") ++range_depth_;
    std::string end = parse_list(*n->body, depth + 1);
    if (kind == "range") --range_depth_;
    if (end.empty()) throw Error(l, "unclosed {{" + kind + "}} (missing {{end}})");
    if (end == "else") {
      n->else_body = std::make_shared<Node>();
      n->else_body->line = l;
      end = parse_list(*n->else_body, depth + 1);
      if (end != "end")
        throw Error(l, "unclosed {{" + kind + "}}: expected {{end}} after {{else}}");
    } else if (end == "else if" || end == "else with") {
      // {{else if x}} ... is {{else}}{{if x}} ... {{end}}{{end}} sharing one {{end}}.
      n->else_body = std::make_shared<Node>();
      n->else_body->line = l;
      n->else_body->list.push_back(parse_branch(end.substr(5), line_, depth + 1));
    } else if (end != "end") {
      throw Error(l, "unexpected {{" + end + "}}");
    }
    return n;
  }

  void add_text(Node& into, const std::string& text) {
    if (text.empty()) return;
    auto t = std::make_shared<Node>();
    t->k = Node::K::kText;
    t->line = line_;
    t->text = text;
    into.list.push_back(t);
  }
  static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  void count_lines(size_t from, size_t to) {
    for (size_t i = from; i < to && i < s_.size(); ++i) line_ += s_[i] == '\n';
  }
  void skip_blanks() {
    while (pos_ < s_.size() && is_blank(s_[pos_])) {
      line_ += s_[pos_] == '\n';
      ++pos_;
    }
  }
  std::string peek_word() const {
    size_t p = pos_;
    std::string w;
    while (p < s_.size() && (std::isalnum(uint8_t(s_[p])) || s_[p] == '_')) w += s_[p++];
    return w;
  }
  // Expects the end of the action: "}}" or " -}}" (which trims the whitespace after it).
  void close_action() {
    skip_blanks();
    if (s_.compare(pos_, 3, "-}}") == 0 && pos_ > 0 && is_blank(s_[pos_ - 1])) {
      pos_ += 3;
      skip_blanks();
      return;
    }
    if (s_.compare(pos_, 2, "}}") == 0) {
      pos_ += 2;
      return;
    }
    throw Error(line_, pos_ >= s_.size()
                           ? "unclosed action (missing }})"
                           : std::string("unexpected '") + s_[pos_] + "' in an action");
  }
  bool at_action_end() const {
    return s_.compare(pos_, 2, "}}") == 0 ||
           (s_.compare(pos_, 3, "-}}") == 0 && pos_ > 0 && is_blank(s_[pos_ - 1]));
  }

  // pipeline := [decl (":=" | "=")] command ("|" command)*
  NodeP parse_pipeline(bool allow_decl, int depth) {
    if (depth > 50) throw Error(line_, "expression nested too deeply");
    auto p = std::make_shared<Node>();
    p->k = Node::K::kPipe;
    p->line = line_;
    skip_blanks();
    if (allow_decl && pos_ < s_.size() && s_[pos_] == '$') {
      // Look ahead for $a[, $b] := / =
      size_t save = pos_;
      int save_line = line_;
      std::vector<std::string> vars;
      while (true) {
        skip_blanks();
        if (pos_ >= s_.size() || s_[pos_] != '$') break;
        std::string v = "$";
        ++pos_;
        while (pos_ < s_.size() && (std::isalnum(uint8_t(s_[pos_])) || s_[pos_] == '_'))
          v += s_[pos_++];
        vars.push_back(v);
        skip_blanks();
        if (pos_ < s_.size() && s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        break;
      }
      skip_blanks();
      if (s_.compare(pos_, 2, ":=") == 0 ||
          (pos_ < s_.size() && s_[pos_] == '=' && s_.compare(pos_, 2, "==") != 0)) {
        p->assign = s_[pos_] == '=';
        pos_ += p->assign ? 1 : 2;
        p->decl = vars;
      } else {
        pos_ = save;
        line_ = save_line;
      }
    }
    while (true) {
      Command c;
      while (true) {
        skip_blanks();
        if (pos_ >= s_.size()) throw Error(line_, "unclosed action");
        if (at_action_end() || s_[pos_] == '|' || s_[pos_] == ')') break;
        c.args.push_back(parse_arg(depth));
      }
      if (c.args.empty()) throw Error(line_, "missing value for command");
      p->cmds.push_back(std::move(c));
      skip_blanks();
      if (pos_ < s_.size() && s_[pos_] == '|') {
        ++pos_;
        continue;
      }
      break;
    }
    return p;
  }

  std::vector<std::string> parse_fields() {
    std::vector<std::string> f;
    while (pos_ + 1 < s_.size() && s_[pos_] == '.' &&
           (std::isalpha(uint8_t(s_[pos_ + 1])) || s_[pos_ + 1] == '_')) {
      ++pos_;
      std::string name;
      while (pos_ < s_.size() && (std::isalnum(uint8_t(s_[pos_])) || s_[pos_] == '_'))
        name += s_[pos_++];
      f.push_back(name);
    }
    return f;
  }

  Arg parse_arg(int depth) {
    Arg a;
    a.line = line_;
    const char c = s_[pos_];
    if (c == '(') {
      ++pos_;
      a.k = Arg::K::kPipe;
      a.pipe = parse_pipeline(false, depth + 1);
      skip_blanks();
      if (pos_ >= s_.size() || s_[pos_] != ')') throw Error(line_, "unclosed '('");
      ++pos_;
      a.fields = parse_fields();
      return a;
    }
    if (c == '.') {
      if (pos_ + 1 < s_.size() && (std::isalpha(uint8_t(s_[pos_ + 1])) || s_[pos_ + 1] == '_')) {
        a.k = Arg::K::kField;
        a.fields = parse_fields();
      } else {
        ++pos_;
        a.k = Arg::K::kDot;
      }
      return a;
    }
    if (c == '$') {
      a.k = Arg::K::kVariable;
      a.name = "$";
      ++pos_;
      while (pos_ < s_.size() && (std::isalnum(uint8_t(s_[pos_])) || s_[pos_] == '_'))
        a.name += s_[pos_++];
      a.fields = parse_fields();
      return a;
    }
    if (c == '"' || c == '`') {
      a.k = Arg::K::kString;
      a.lit = GValue::str(parse_string(c));
      return a;
    }
    if (c == '\'') {
      ++pos_;
      if (pos_ + 1 >= s_.size()) throw Error(line_, "unclosed character constant");
      int64_t v = uint8_t(s_[pos_]);
      if (s_[pos_] == '\\') {
        ++pos_;
        const char e = s_[pos_];
        v = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == '0' ? 0 : uint8_t(e);
      }
      ++pos_;
      if (pos_ >= s_.size() || s_[pos_] != '\'') throw Error(line_, "unclosed character constant");
      ++pos_;
      a.k = Arg::K::kNumber;
      a.lit = GValue::integer(v);
      return a;
    }
    if (std::isdigit(uint8_t(c)) ||
        ((c == '-' || c == '+') && pos_ + 1 < s_.size() && std::isdigit(uint8_t(s_[pos_ + 1])))) {
      size_t start = pos_;
      ++pos_;
      while (pos_ < s_.size() &&
             (std::isalnum(uint8_t(s_[pos_])) || s_[pos_] == '.' || s_[pos_] == '_'))
        ++pos_;
      const std::string num(s_.substr(start, pos_ - start));
      a.k = Arg::K::kNumber;
      char* end = nullptr;
      const long long iv = std::strtoll(num.c_str(), &end, 0);
      if (*end == '\0') {
        a.lit = GValue::integer(iv);
      } else {
        const double dv = std::strtod(num.c_str(), &end);
        if (*end != '\0') throw Error(line_, "bad number syntax: " + num);
        a.lit.k = GValue::K::kFloat;
        a.lit.f = dv;
      }
      return a;
    }
    if (std::isalpha(uint8_t(c)) || c == '_') {
      std::string w = peek_word();
      pos_ += w.size();
      if (w == "true" || w == "false") {
        a.k = Arg::K::kBool;
        a.lit = GValue::boolean(w == "true");
      } else if (w == "nil") {
        a.k = Arg::K::kNil;
      } else {
        a.k = Arg::K::kFunc;
        a.name = w;
      }
      return a;
    }
    throw Error(line_, std::string("unexpected '") + c + "' in an action");
  }

  std::string parse_string(char q) {
    ++pos_;
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) throw Error(line_, "unterminated string");
      const char c = s_[pos_++];
      if (c == q) break;
      if (q == '`') {
        line_ += c == '\n';
        out += c;
        continue;
      }
      if (c == '\n') throw Error(line_, "newline in a string");
      if (c == '\\') {
        if (pos_ >= s_.size()) throw Error(line_, "unterminated string");
        const char e = s_[pos_++];
        switch (e) {
          case 'n':
            out += '\n';
            break;
          case 't':
            out += '\t';
            break;
          case 'r':
            out += '\r';
            break;
          case '\\':
            out += '\\';
            break;
          case '"':
            out += '"';
            break;
          case '\'':
            out += '\'';
            break;
          case 'a':
            out += '\a';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'v':
            out += '\v';
            break;
          case 'u': {
            if (pos_ + 4 > s_.size()) throw Error(line_, "bad \\u escape");
            const uint32_t cp = uint32_t(std::stoul(std::string(s_.substr(pos_, 4)), nullptr, 16));
            pos_ += 4;
            if (cp < 0x80)
              out += char(cp);
            else if (cp < 0x800) {
              out += char(0xC0 | (cp >> 6));
              out += char(0x80 | (cp & 63));
            } else {
              out += char(0xE0 | (cp >> 12));
              out += char(0x80 | ((cp >> 6) & 63));
              out += char(0x80 | (cp & 63));
            }
            break;
          }
          default:
            throw Error(line_, std::string("unknown escape \\") + e);
        }
        continue;
      }
      out += c;
    }
    return out;
  }

  std::string_view s_;
  size_t pos_ = 0;
  int line_ = 1;
  int range_depth_ = 0;
};

// ---- identifiers used (what Ollama's Vars() collects): field and variable names, lower-cased.

void collect_idents(const Node& n, std::vector<std::string>& out);
void collect_pipe(const Node& p, std::vector<std::string>& out) {
  for (const auto& c : p.cmds)
    for (const auto& a : c.args) {
      for (const auto& f : a.fields) out.push_back(f);
      if (a.k == Arg::K::kVariable) out.push_back(a.name);
      if (a.pipe) collect_pipe(*a.pipe, out);
    }
}
void collect_idents(const Node& n, std::vector<std::string>& out) {
  if (n.pipe) collect_pipe(*n.pipe, out);
  for (const auto& c : n.list) collect_idents(*c, out);
  if (n.body) collect_idents(*n.body, out);
  if (n.else_body) collect_idents(*n.else_body, out);
}

// ---- Ollama's legacy-mode cut: everything after the first {{ .Response }} field, in tree
// order, is removed (conditions of if/range/with stay; the Response field itself stays).

NodeP cut_after_response(const NodeP& n, bool& cut) {
  auto c = std::make_shared<Node>(*n);
  switch (n->k) {
    case Node::K::kList: {
      c->list.clear();
      for (const auto& x : n->list)
        if (auto y = cut_after_response(x, cut)) c->list.push_back(y);
      return c;
    }
    case Node::K::kText:
    case Node::K::kBreak:
    case Node::K::kContinue:
      return cut ? nullptr : c;
    case Node::K::kIf:
    case Node::K::kWith:
    case Node::K::kRange:
      if (cut) return nullptr;
      c->body = cut_after_response(n->body, cut);
      if (n->else_body) c->else_body = cut_after_response(n->else_body, cut);
      return c;
    case Node::K::kAction: {
      if (cut) return nullptr;
      auto p = std::make_shared<Node>(*n->pipe);
      p->cmds.clear();
      for (const auto& cmd : n->pipe->cmds) {
        Command nc;
        for (const auto& a : cmd.args) {
          if (a.k == Arg::K::kField &&
              std::find(a.fields.begin(), a.fields.end(), "Response") != a.fields.end() && !cut) {
            cut = true;
            nc.args.push_back(a);
          } else if (!cut) {
            nc.args.push_back(a);
          }
        }
        if (!nc.args.empty()) p->cmds.push_back(std::move(nc));
      }
      if (p->cmds.empty()) return nullptr;
      c->pipe = p;
      return c;
    }
    default:
      return c;
  }
}

// ---- execution

struct BreakSig {};
struct ContinueSig {};

class Exec {
 public:
  Exec(const GValue& root, Budget& budget) : root_(root), budget_(budget) {
    vars_.push_back({"$", root});
  }

  void run(const Node& n, const GValue& dot, std::string& out) {
    if (++depth_ > kMaxDepth) throw Error(n.line, recursion_message(kMaxDepth));
    struct G {
      int& d;
      ~G() { --d; }
    } g{depth_};
    step(n.line);
    switch (n.k) {
      case Node::K::kList:
        for (const auto& c : n.list) run(*c, dot, out);
        return;
      case Node::K::kText:
        emit(out, n.text, n.line);
        return;
      case Node::K::kAction: {
        GValue v = pipeline(*n.pipe, dot);
        if (n.pipe->decl.empty()) emit(out, go_print(v), n.line);
        return;
      }
      case Node::K::kBreak:
        throw BreakSig{};
      case Node::K::kContinue:
        throw ContinueSig{};
      case Node::K::kIf:
      case Node::K::kWith: {
        const size_t mark = vars_.size();
        GValue v = pipeline(*n.pipe, dot);
        if (v.truthy())
          run(*n.body, n.k == Node::K::kWith ? v : dot, out);
        else if (n.else_body)
          run(*n.else_body, dot, out);
        vars_.resize(mark);
        return;
      }
      case Node::K::kRange:
        range(n, dot, out);
        return;
      case Node::K::kPipe:
        return;
    }
  }

 private:
  // A safety net above what the parser's nesting limit (100 blocks, two levels each) produces:
  // there is no {{template}}, so nothing else recurses.
  static constexpr int kMaxDepth = 256;

  void step(int line, uint64_t n = 1) {
    if (!budget_.spend_steps(n)) throw Error(line, budget_.steps_message());
  }
  // Strings produced while executing (copies of fields and variables included: a large string
  // looked up in a long loop costs its size every time).
  void charge(uint64_t bytes, int line) {
    if (!budget_.spend_bytes(bytes)) throw Error(line, budget_.bytes_message());
  }
  const GValue& charged(const GValue& v, int line) {
    if (v.k == GValue::K::kStr) charge(v.s.size(), line);
    return v;
  }
  void emit(std::string& out, const std::string& s, int line) {
    charge(s.size(), line);
    out += s;
  }

  // Iterates without first copying the elements (or, for an integer, materialising 0..n-1), so
  // `range 1000000000` costs steps, not memory; each iteration is a step even if the body is
  // empty.
  void range(const Node& n, const GValue& dot, std::string& out) {
    const size_t mark = vars_.size();
    // Range declarations bind per element, not to the pipeline's value.
    Node p = *n.pipe;
    const std::vector<std::string> decl = p.decl;
    p.decl.clear();
    const GValue v = pipeline(p, dot);
    size_t count = 0;
    std::vector<size_t> order;  // maps: element indices in key order (Go ranges over maps so)
    if (v.k == GValue::K::kList) {
      count = v.len;
    } else if (v.k == GValue::K::kMap) {
      count = v.map->size();
      step(n.line, count);
      order.resize(count);
      for (size_t i = 0; i < count; ++i) order[i] = i;
      std::sort(order.begin(), order.end(),
                [&](size_t a, size_t b) { return (*v.map)[a].first < (*v.map)[b].first; });
    } else if (v.k == GValue::K::kInt) {
      count = v.i > 0 ? size_t(v.i) : 0;
    } else if (v.k != GValue::K::kNil) {
      throw Error(n.line, "range can't iterate over " + go_print(v));
    }
    if (count == 0) {
      if (n.else_body) run(*n.else_body, dot, out);
      vars_.resize(mark);
      return;
    }
    for (size_t i = 0; i < count; ++i) {
      step(n.line);
      GValue key, elem;
      if (v.k == GValue::K::kList) {
        key = GValue::integer(int64_t(i));
        elem = charged(v.at(i), n.line);
      } else if (v.k == GValue::K::kMap) {
        const auto& [k, x] = (*v.map)[order[i]];
        key = charged(GValue::str(k), n.line);
        elem = charged(x, n.line);
      } else {
        key = elem = GValue::integer(int64_t(i));
      }
      vars_.resize(mark);
      if (decl.size() == 1) vars_.push_back({decl[0], elem});
      if (decl.size() >= 2) {
        vars_.push_back({decl[0], key});
        vars_.push_back({decl[1], elem});
      }
      try {
        run(*n.body, elem, out);
      } catch (ContinueSig&) {
        continue;
      } catch (BreakSig&) {
        break;
      }
    }
    vars_.resize(mark);
  }

  GValue var(const std::string& name, int line) {
    for (size_t i = vars_.size(); i-- > 0;)
      if (vars_[i].first == name) return vars_[i].second;
    throw Error(line, "undefined variable: " + name);
  }
  void set_var(const std::string& name, const GValue& v, bool assign, int line) {
    if (assign) {
      for (size_t i = vars_.size(); i-- > 0;)
        if (vars_[i].first == name) {
          vars_[i].second = v;
          return;
        }
      throw Error(line, "undefined variable: " + name);
    }
    vars_.push_back({name, v});
  }

  // Maps keep their keys in a list, searched linearly: a lookup in a map of n keys costs
  // n / kKeysPerStep steps, so that repeated lookups in a huge one are bounded too.
  static constexpr size_t kKeysPerStep = 32;

  GValue walk_fields(GValue v, const std::vector<std::string>& fields, int line) {
    for (const auto& f : fields) {
      if (v.k == GValue::K::kNil) return GValue();  // missingkey=zero: nil stays nil
      if (v.k != GValue::K::kMap)
        throw Error(line, "can't evaluate field " + f + " in a non-object value");
      step(line, v.map->size() / kKeysPerStep);
      const GValue* x = v.field(f);
      GValue next = x ? *x : GValue();  // x points into v: copy before v lets go of it
      v = std::move(next);
    }
    return v;
  }

  GValue pipeline(const Node& p, const GValue& dot) {
    GValue v;
    bool have = false;
    for (const auto& c : p.cmds) {
      v = command(c, dot, have ? &v : nullptr);
      have = true;
    }
    for (const auto& name : p.decl) set_var(name, v, p.assign, p.line);
    return v;
  }

  GValue arg_value(const Arg& a, const GValue& dot) {
    step(a.line);
    GValue v = arg_value_inner(a, dot);
    charged(v, a.line);
    return v;
  }
  GValue arg_value_inner(const Arg& a, const GValue& dot) {
    switch (a.k) {
      case Arg::K::kDot:
        return dot;
      case Arg::K::kNil:
        return GValue();
      case Arg::K::kBool:
      case Arg::K::kNumber:
      case Arg::K::kString:
        return a.lit;
      case Arg::K::kField:
        return walk_fields(dot, a.fields, a.line);
      case Arg::K::kVariable:
        return walk_fields(var(a.name, a.line), a.fields, a.line);
      case Arg::K::kPipe:
        return walk_fields(pipeline(*a.pipe, dot), a.fields, a.line);
      case Arg::K::kFunc:
        return call(a.name, {}, dot, nullptr, a.line);
    }
    return GValue();
  }

  GValue command(const Command& c, const GValue& dot, const GValue* piped) {
    const Arg& first = c.args[0];
    step(first.line);
    if (first.k == Arg::K::kFunc) {
      std::vector<const Arg*> rest;
      for (size_t i = 1; i < c.args.size(); ++i) rest.push_back(&c.args[i]);
      GValue v = call(first.name, rest, dot, piped, first.line);
      charged(v, first.line);
      return v;
    }
    if (c.args.size() > 1 || piped)
      throw Error(first.line, "can't give an argument to a non-function");
    return arg_value(first, dot);
  }

  static int compare_basic(const GValue& a, const GValue& b, int line, bool order) {
    auto num = [](const GValue& x) { return x.k == GValue::K::kInt ? double(x.i) : x.f; };
    const bool an = a.k == GValue::K::kInt || a.k == GValue::K::kFloat;
    const bool bn = b.k == GValue::K::kInt || b.k == GValue::K::kFloat;
    if (an && bn) {
      if (a.k != b.k) throw Error(line, "incompatible types for comparison");
      return num(a) < num(b) ? -1 : num(a) > num(b) ? 1 : 0;
    }
    if (a.k == GValue::K::kStr && b.k == GValue::K::kStr) return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
    if (!order && a.k == GValue::K::kBool && b.k == GValue::K::kBool) return a.b == b.b ? 0 : 1;
    if (!order && a.k == GValue::K::kNil && b.k == GValue::K::kNil) return 0;
    if (a.k != b.k) throw Error(line, "incompatible types for comparison");
    throw Error(line, "invalid type for comparison");
  }

  GValue call(const std::string& name, const std::vector<const Arg*>& argn, const GValue& dot,
              const GValue* piped, int line) {
    // and/or evaluate lazily, left to right, and return the deciding argument.
    if (name == "and" || name == "or") {
      std::vector<std::function<GValue()>> thunks;
      for (const Arg* a : argn) thunks.push_back([this, a, &dot] { return arg_value(*a, dot); });
      if (piped) thunks.push_back([piped] { return *piped; });
      if (thunks.empty()) throw Error(line, name + " needs arguments");
      GValue v;
      for (auto& t : thunks) {
        v = t();
        if (name == "and" ? !v.truthy() : v.truthy()) return v;
      }
      return v;
    }
    std::vector<GValue> a;
    for (const Arg* x : argn) a.push_back(arg_value(*x, dot));
    if (piped) a.push_back(*piped);
    auto need = [&](size_t n) {
      if (a.size() != n)
        throw Error(line, "wrong number of args for " + name + ": want " + std::to_string(n) +
                              " got " + std::to_string(a.size()));
    };
    if (name == "not") {
      need(1);
      return GValue::boolean(!a[0].truthy());
    }
    if (name == "len") {
      need(1);
      switch (a[0].k) {
        case GValue::K::kStr:
          return GValue::integer(int64_t(a[0].s.size()));
        case GValue::K::kList:
          return GValue::integer(int64_t(a[0].len));
        case GValue::K::kMap:
          return GValue::integer(int64_t(a[0].map->size()));
        default:
          throw Error(line, "len of " + go_print(a[0]));
      }
    }
    if (name == "eq") {
      if (a.size() < 2) throw Error(line, "eq needs at least two arguments");
      for (size_t i = 1; i < a.size(); ++i)
        if (compare_basic(a[0], a[i], line, false) == 0) return GValue::boolean(true);
      return GValue::boolean(false);
    }
    if (name == "ne" || name == "lt" || name == "le" || name == "gt" || name == "ge") {
      need(2);
      const int c = compare_basic(a[0], a[1], line, name != "ne");
      if (name == "ne") return GValue::boolean(c != 0);
      if (name == "lt") return GValue::boolean(c < 0);
      if (name == "le") return GValue::boolean(c <= 0);
      if (name == "gt") return GValue::boolean(c > 0);
      return GValue::boolean(c >= 0);
    }
    if (name == "index") {
      if (a.empty()) throw Error(line, "index needs arguments");
      GValue v = a[0];
      for (size_t i = 1; i < a.size(); ++i) {
        if (v.k == GValue::K::kList) {
          if (a[i].k != GValue::K::kInt)
            throw Error(line, "cannot index a list with " + go_print(a[i]));
          if (a[i].i < 0 || a[i].i >= int64_t(v.len))
            throw Error(line, "index out of range: " + std::to_string(a[i].i));
          GValue x = v.at(size_t(a[i].i));
          v = std::move(x);
        } else if (v.k == GValue::K::kMap) {
          step(line, v.map->size() / kKeysPerStep);
          const GValue* x = a[i].k == GValue::K::kStr ? v.field(a[i].s) : nullptr;
          GValue next = x ? *x : GValue();
          v = std::move(next);
        } else if (v.k == GValue::K::kStr) {
          if (a[i].k != GValue::K::kInt || a[i].i < 0 || a[i].i >= int64_t(v.s.size()))
            throw Error(line, "index out of range");
          v = GValue::integer(uint8_t(v.s[size_t(a[i].i)]));
        } else {
          throw Error(line, "can't index item of type " + go_print(v));
        }
      }
      return v;
    }
    if (name == "slice") {
      if (a.empty()) throw Error(line, "slice needs arguments");
      const GValue& x = a[0];
      const int64_t len = x.k == GValue::K::kStr    ? int64_t(x.s.size())
                          : x.k == GValue::K::kList ? int64_t(x.len)
                                                    : -1;
      if (len < 0) throw Error(line, "can't slice item of type " + go_print(x));
      int64_t lo = 0, hi = len;
      for (size_t i = 1; i < a.size(); ++i)
        if (a[i].k != GValue::K::kInt) throw Error(line, "cannot slice with " + go_print(a[i]));
      if (a.size() > 1) lo = a[1].i;
      if (a.size() > 2) hi = a[2].i;
      if (lo < 0 || hi < lo || hi > len) throw Error(line, "slice index out of range");
      if (x.k == GValue::K::kStr) return GValue::str(x.s.substr(size_t(lo), size_t(hi - lo)));
      GValue r = x;
      r.off = x.off + size_t(lo);
      r.len = size_t(hi - lo);
      return r;
    }
    if (name == "json") {
      need(1);
      return GValue::str(json_of(a[0]));
    }
    if (name == "print" || name == "println") {
      // Sprint adds spaces between operands when neither is a string; Sprintln always does.
      std::string r;
      for (size_t i = 0; i < a.size(); ++i) {
        if (i > 0 &&
            (name == "println" || (a[i - 1].k != GValue::K::kStr && a[i].k != GValue::K::kStr)))
          r += ' ';
        r += go_print(a[i]);
      }
      if (name == "println") r += '\n';
      return GValue::str(r);
    }
    if (name == "printf") {
      if (a.empty() || a[0].k != GValue::K::kStr) throw Error(line, "printf needs a format string");
      const std::string& f = a[0].s;
      std::string r;
      size_t ai = 1;
      for (size_t i = 0; i < f.size(); ++i) {
        if (f[i] != '%' || i + 1 >= f.size()) {
          r += f[i];
          continue;
        }
        const char v = f[++i];
        if (v == '%') {
          r += '%';
          continue;
        }
        if (ai >= a.size()) {
          r += std::string("%!") + v + "(MISSING)";
          continue;
        }
        const GValue& x = a[ai++];
        if (v == 'q')
          r += json_of(x.k == GValue::K::kStr ? x : GValue::str(go_print(x)));
        else
          r += go_print(x);  // %s %v %d
      }
      return GValue::str(r);
    }
    if (name == "html" || name == "urlquery") {
      std::string in;
      for (const auto& x : a) in += go_print(x);
      std::string r;
      for (char c : in) {
        if (name == "html") {
          if (c == '<')
            r += "&lt;";
          else if (c == '>')
            r += "&gt;";
          else if (c == '&')
            r += "&amp;";
          else if (c == '"')
            r += "&#34;";
          else if (c == '\'')
            r += "&#39;";
          else
            r += c;
        } else {
          if (std::isalnum(uint8_t(c)) || c == '-' || c == '_' || c == '.' || c == '~')
            r += c;
          else if (c == ' ')
            r += '+';
          else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", uint8_t(c));
            r += buf;
          }
        }
      }
      return GValue::str(r);
    }
    if (name == "currentDate" || name == "yesterdayDate") {
      time_t t = std::time(nullptr);
      if (name == "yesterdayDate") t -= 24 * 3600;
      struct tm tm {};
      localtime_r(&t, &tm);
      char buf[32];
      std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
      return GValue::str(buf);
    }
    throw Error(line, "function \"" + name + "\" not defined");
  }

  const GValue& root_;
  Budget& budget_;
  std::vector<std::pair<std::string, GValue>> vars_;
  int depth_ = 0;
};

Status as_status(const Error& e) {
  return invalid_argument("[gotmpl] line " + std::to_string(e.line) + ": " + e.what());
}

}  // namespace

struct Template::Impl {
  NodeP root;
  std::vector<std::string> idents;  // as written
};

Result<Template> Template::parse(std::string_view source) {
  try {
    auto impl = std::make_shared<Impl>();
    impl->root = Parser(source).parse();
    collect_idents(*impl->root, impl->idents);
    Template t;
    t.impl_ = impl;
    return t;
  } catch (const Error& e) {
    return as_status(e);
  } catch (const std::bad_alloc&) {
    return invalid_argument("[gotmpl] out of memory while parsing the template");
  } catch (const std::exception& e) {
    return invalid_argument(std::string("[gotmpl] ") + e.what());
  }
}

Result<std::string> Template::render(const nlohmann::ordered_json& data) const {
  Budget b = Budget::for_input(json_size(data));
  return render_impl(data, false, b);
}

Result<std::string> Template::render(const nlohmann::ordered_json& data, Budget& budget) const {
  return render_impl(data, false, budget);
}

Result<std::string> Template::render_cut_after_response(const nlohmann::ordered_json& data) const {
  Budget b = Budget::for_input(json_size(data));
  return render_impl(data, true, b);
}

Result<std::string> Template::render_cut_after_response(const nlohmann::ordered_json& data,
                                                        Budget& budget) const {
  return render_impl(data, true, budget);
}

Result<std::string> Template::render_impl(const nlohmann::ordered_json& data, bool cut,
                                          Budget& budget) const {
  if (!impl_) return invalid_argument("[gotmpl] template not parsed");
  try {
    GValue root = from_json(data);
    NodeP tree = impl_->root;
    if (cut) {
      bool c = false;
      tree = cut_after_response(tree, c);
    }
    std::string out;
    Exec ex(root, budget);
    ex.run(*tree, root, out);
    return out;
  } catch (const Error& e) {
    return as_status(e);
  } catch (const BreakSig&) {
    return invalid_argument("[gotmpl] {{break}} outside {{range}}");
  } catch (const ContinueSig&) {
    return invalid_argument("[gotmpl] {{continue}} outside {{range}}");
  } catch (const std::bad_alloc&) {
    // The budget should stop a template long before this; if memory runs out anyway (a budget
    // larger than the machine), the render fails rather than the process.
    return invalid_argument("[gotmpl] out of memory while rendering the template");
  } catch (const std::length_error&) {
    return invalid_argument("[gotmpl] a value grew past the largest possible size");
  } catch (const std::exception& e) {
    return invalid_argument(std::string("[gotmpl] ") + e.what());
  }
}

bool Template::uses(std::string_view field) const {
  if (!impl_) return false;
  std::string want(field);
  for (auto& c : want) c = char(std::tolower(uint8_t(c)));
  for (const auto& id : impl_->idents) {
    std::string l = id;
    for (auto& c : l) c = char(std::tolower(uint8_t(c)));
    if (l == want) return true;
  }
  return false;
}

}  // namespace hearth::templates::gotmpl
