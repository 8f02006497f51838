#include "grammar/grammar.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <utility>

#include "base/utf8.h"

namespace hearth::grammar {
namespace {

// ---- UTF-8

using ByteRanges = std::vector<std::pair<uint8_t, uint8_t>>;  // one per byte of a sequence

// The code points [lo, hi] (same-length UTF-8, no surrogates) as byte-range sequences.
void utf8_split(uint32_t lo, uint32_t hi, std::vector<ByteRanges>& out) {
  if (lo > hi) return;
  for (uint32_t b : {0x7Fu, 0x7FFu, 0xFFFFu})
    if (lo <= b && hi > b) {
      utf8_split(lo, b, out);
      utf8_split(b + 1, hi, out);
      return;
    }
  if (hi < 0x80) {
    out.push_back({{uint8_t(lo), uint8_t(hi)}});
    return;
  }
  const int n = hi < 0x800 ? 2 : hi < 0x10000 ? 3 : 4;
  for (int i = 1; i < n; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        utf8_split(lo, lo | m, out);
        utf8_split((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        utf8_split(lo, (hi & ~m) - 1, out);
        utf8_split(hi & ~m, hi, out);
        return;
      }
    }
  }
  std::string a, b;
  append_utf8(a, lo);
  append_utf8(b, hi);
  ByteRanges r;
  for (size_t i = 0; i < a.size(); ++i) r.push_back({uint8_t(a[i]), uint8_t(b[i])});
  out.push_back(std::move(r));
}

// ---- AST

struct Alts;
struct Item {
  enum Kind { kLiteral, kClass, kRef, kGroup, kToken } kind;
  std::string bytes;                                  // literal
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // class (code points)
  bool negated = false;
  std::string name;  // ref
  std::shared_ptr<Alts> group;
  uint32_t token = 0;
  int min = 1, max = 1;  // repetition; max -1: unbounded
};
using Seq = std::vector<Item>;
struct Alts {
  std::vector<Seq> alts;
};

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Status parse(std::vector<std::pair<std::string, Alts>>& rules) {
    skip(true);
    while (i_ < s_.size()) {
      const size_t line = line_no();
      std::string name = ident();
      if (name.empty()) return err("expected a rule name");
      skip(false);
      if (s_.substr(i_, 3) != "::=") return err("expected ::= after '" + name + "'");
      i_ += 3;
      Alts a;
      HEARTH_RETURN_IF_ERROR(alternatives(a, 0));
      (void)line;
      rules.emplace_back(std::move(name), std::move(a));
      skip(true);
    }
    return Status::ok();
  }

 private:
  size_t line_no() const {
    size_t n = 1;
    for (size_t k = 0; k < i_ && k < s_.size(); ++k) n += s_[k] == '\n';
    return n;
  }
  Status err(const std::string& m) const {
    return invalid_argument("grammar line " + std::to_string(line_no()) + ": " + m);
  }
  // Spaces and comments; newlines too when `nl` (inside groups, between rules).
  void skip(bool nl) {
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == '#') {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      } else if (c == ' ' || c == '\t' || c == '\r' || (nl && c == '\n')) {
        ++i_;
      } else {
        break;
      }
    }
  }
  static bool ident_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  }
  std::string ident() {
    const size_t b = i_;
    while (i_ < s_.size() && ident_char(s_[i_])) ++i_;
    return std::string(s_.substr(b, i_ - b));
  }
  // After a newline at depth 0: does the rule go on (a line starting with |)?
  bool continues() {
    size_t k = i_;
    while (k < s_.size()) {
      const char c = s_[k];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        ++k;
      } else if (c == '#') {
        while (k < s_.size() && s_[k] != '\n') ++k;
      } else {
        break;
      }
    }
    if (k < s_.size() && s_[k] == '|') {
      i_ = k;
      return true;
    }
    return false;
  }

  Status alternatives(Alts& a, int depth) {
    for (;;) {
      Seq seq;
      HEARTH_RETURN_IF_ERROR(sequence(seq, depth));
      a.alts.push_back(std::move(seq));
      skip(depth > 0);
      if (i_ < s_.size() && s_[i_] == '|') {
        ++i_;
        continue;
      }
      if (depth == 0 && i_ < s_.size() && s_[i_] == '\n' && continues()) {
        ++i_;
        continue;
      }
      return Status::ok();
    }
  }

  Status sequence(Seq& seq, int depth) {
    for (;;) {
      skip(depth > 0);
      if (i_ >= s_.size()) return Status::ok();
      const char c = s_[i_];
      Item it;
      if (c == '"') {
        ++i_;
        it.kind = Item::kLiteral;
        while (i_ < s_.size() && s_[i_] != '"') {
          if (s_.substr(i_, 2) == "\\x") {  // in a literal, \xHH is a raw byte
            i_ += 2;
            if (i_ + 2 > s_.size()) return err("short \\x escape");
            const std::string h(s_.substr(i_, 2));
            char* end = nullptr;
            const long v = std::strtol(h.c_str(), &end, 16);
            if (end != h.c_str() + 2) return err("bad hex digit in escape");
            it.bytes += char(v);
            i_ += 2;
            continue;
          }
          uint32_t cp;
          HEARTH_RETURN_IF_ERROR(char_or_escape(cp, true));
          append_utf8(it.bytes, cp);
        }
        if (i_ >= s_.size()) return err("unterminated literal");
        ++i_;
      } else if (c == '[') {
        ++i_;
        it.kind = Item::kClass;
        if (i_ < s_.size() && s_[i_] == '^') {
          it.negated = true;
          ++i_;
        }
        while (i_ < s_.size() && s_[i_] != ']') {
          uint32_t a, b;
          HEARTH_RETURN_IF_ERROR(char_or_escape(a, false));
          b = a;
          if (i_ + 1 < s_.size() && s_[i_] == '-' && s_[i_ + 1] != ']') {
            ++i_;
            HEARTH_RETURN_IF_ERROR(char_or_escape(b, false));
          }
          if (b < a) return err("character range out of order");
          it.ranges.push_back({a, b});
        }
        if (i_ >= s_.size()) return err("unterminated character class");
        ++i_;
      } else if (c == '(') {
        ++i_;
        it.kind = Item::kGroup;
        it.group = std::make_shared<Alts>();
        HEARTH_RETURN_IF_ERROR(alternatives(*it.group, depth + 1));
        skip(true);
        if (i_ >= s_.size() || s_[i_] != ')') return err("expected )");
        ++i_;
      } else if (c == '<' && s_.substr(i_, 2) == "<[") {
        i_ += 2;
        const size_t b = i_;
        while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
        if (b == i_ || s_.substr(i_, 2) != "]>") return err("expected <[TOKEN_ID]>");
        it.kind = Item::kToken;
        it.token = uint32_t(std::stoul(std::string(s_.substr(b, i_ - b))));
        i_ += 2;
      } else if (ident_char(c)) {
        // A name followed by ::= starts the next rule.
        const size_t save = i_;
        std::string name = ident();
        size_t k = i_;
        while (k < s_.size() && (s_[k] == ' ' || s_[k] == '\t')) ++k;
        if (s_.substr(k, 3) == "::=") {
          i_ = save;
          return Status::ok();
        }
        it.kind = Item::kRef;
        it.name = std::move(name);
      } else {
        return Status::ok();  // | ) newline or the end: the caller decides
      }
      HEARTH_RETURN_IF_ERROR(repetition(it));
      seq.push_back(std::move(it));
    }
  }

  Status repetition(Item& it) {
    if (i_ >= s_.size()) return Status::ok();
    const char c = s_[i_];
    if (c == '*' || c == '+' || c == '?') {
      ++i_;
      it.min = c == '+' ? 1 : 0;
      it.max = c == '?' ? 1 : -1;
    } else if (c == '{') {
      ++i_;
      auto num = [&]() -> std::optional<int> {
        skip(false);
        const size_t b = i_;
        while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
        if (b == i_ || i_ - b > 6) return std::nullopt;
        return std::stoi(std::string(s_.substr(b, i_ - b)));
      };
      auto lo = num();
      if (!lo) return err("expected a repetition count");
      it.min = *lo;
      it.max = *lo;
      skip(false);
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        skip(false);
        if (i_ < s_.size() && s_[i_] == '}') {
          it.max = -1;
        } else {
          auto hi = num();
          if (!hi || *hi < *lo) return err("bad repetition bounds");
          it.max = *hi;
        }
      }
      skip(false);
      if (i_ >= s_.size() || s_[i_] != '}') return err("expected }");
      ++i_;
    }
    if (it.max > 10000 || it.min > 10000) return err("repetition bound above 10000");
    return Status::ok();
  }

  Status char_or_escape(uint32_t& cp, bool in_literal) {
    if (i_ >= s_.size()) return err("unexpected end");
    unsigned char c = static_cast<unsigned char>(s_[i_]);
    if (c == '\\') {
      if (++i_ >= s_.size()) return err("unexpected end after \\");
      const char e = s_[i_++];
      auto hex = [&](int n) -> Status {
        if (i_ + size_t(n) > s_.size()) return err("short \\x / \\u escape");
        cp = 0;
        for (int k = 0; k < n; ++k) {
          const char h = s_[i_++];
          int v = (h >= '0' && h <= '9')   ? h - '0'
                  : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                  : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                           : -1;
          if (v < 0) return err("bad hex digit in escape");
          cp = cp * 16 + uint32_t(v);
        }
        return Status::ok();
      };
      switch (e) {
        case 'n':
          cp = '\n';
          return Status::ok();
        case 'r':
          cp = '\r';
          return Status::ok();
        case 't':
          cp = '\t';
          return Status::ok();
        case 'x':
          return hex(2);
        case 'u':
          return hex(4);
        case 'U':
          return hex(8);
        default:
          cp = uint32_t(static_cast<unsigned char>(e));
          return Status::ok();
      }
    }
    (void)in_literal;
    // A UTF-8 character of the source.
    const int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i_ + size_t(n) > s_.size()) return err("invalid UTF-8 in the grammar");
    cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s_[i_ + size_t(k)]);
      if ((d >> 6) != 2) return err("invalid UTF-8 in the grammar");
      cp = (cp << 6) | (d & 0x3F);
    }
    i_ += size_t(n);
    return Status::ok();
  }

  std::string_view s_;
  size_t i_ = 0;
};

// ---- Lowering to the flat table

class Lowerer {
 public:
  explicit Lowerer(Grammar& g) : g_(g) {}

  Status lower(std::vector<std::pair<std::string, Alts>>& rules) {
    for (auto& [name, a] : rules) {
      if (ids_.count(name)) return invalid_argument("grammar: rule '" + name + "' defined twice");
      ids_[name] = new_rule(name);
    }
    if (!ids_.count("root")) return invalid_argument("grammar: no 'root' rule");
    g_.root = ids_["root"];
    for (auto& [name, a] : rules) HEARTH_RETURN_IF_ERROR(define(ids_[name], a));
    // Flatten.
    g_.rule_start.resize(bodies_.size());
    g_.alts.resize(bodies_.size());
    for (size_t r = 0; r < bodies_.size(); ++r) {
      g_.rule_start[r] = uint32_t(g_.elems.size());
      for (size_t k = 0; k < bodies_[r].size(); ++k) {
        g_.alts[r].push_back(uint32_t(g_.elems.size()));
        for (const Elem& e : bodies_[r][k]) g_.elems.push_back(e);
        g_.elems.push_back({k + 1 < bodies_[r].size() ? Elem::kAlt : Elem::kEnd, 0});
      }
    }
    return Status::ok();
  }

 private:
  uint32_t new_rule(const std::string& name) {
    bodies_.emplace_back();
    g_.rule_names.push_back(name);
    return uint32_t(bodies_.size() - 1);
  }
  uint32_t byte_class(const std::bitset<256>& b) {
    const std::string key = b.to_string();
    auto it = class_ids_.find(key);
    if (it != class_ids_.end()) return it->second;
    g_.classes.push_back(b);
    return class_ids_[key] = uint32_t(g_.classes.size() - 1);
  }

  Status define(uint32_t rule, const Alts& a) {
    for (const Seq& seq : a.alts) {
      std::vector<Elem> out;
      for (const Item& it : seq) HEARTH_RETURN_IF_ERROR(item(it, out));
      bodies_[rule].push_back(std::move(out));
    }
    return Status::ok();
  }

  // One repetition of the item as elements.
  Status once(const Item& it, std::vector<Elem>& out) {
    switch (it.kind) {
      case Item::kLiteral:
        for (unsigned char c : it.bytes) {
          std::bitset<256> b;
          b.set(c);
          out.push_back({Elem::kByte, byte_class(b)});
        }
        return Status::ok();
      case Item::kToken:
        out.push_back({Elem::kToken, it.token});
        return Status::ok();
      case Item::kRef: {
        auto r = ids_.find(it.name);
        if (r == ids_.end()) return invalid_argument("grammar: undefined rule '" + it.name + "'");
        out.push_back({Elem::kRef, r->second});
        return Status::ok();
      }
      case Item::kGroup: {
        const uint32_t r = new_rule("(group)");
        HEARTH_RETURN_IF_ERROR(define(r, *it.group));
        out.push_back({Elem::kRef, r});
        return Status::ok();
      }
      case Item::kClass:
        return char_class(it, out);
    }
    return Status::ok();
  }

  Status char_class(const Item& it, std::vector<Elem>& out) {
    // The code points as sorted, merged ranges; complemented if negated.
    std::vector<std::pair<uint32_t, uint32_t>> r = it.ranges;
    std::sort(r.begin(), r.end());
    std::vector<std::pair<uint32_t, uint32_t>> m;
    for (auto x : r) {
      if (!m.empty() && x.first <= m.back().second + 1)
        m.back().second = std::max(m.back().second, x.second);
      else
        m.push_back(x);
    }
    if (it.negated) {
      std::vector<std::pair<uint32_t, uint32_t>> c;
      uint32_t next = 0;
      for (auto x : m) {
        if (x.first > next) c.push_back({next, x.first - 1});
        next = x.second + 1;
      }
      if (next <= 0x10FFFF) c.push_back({next, 0x10FFFF});
      m = std::move(c);
    }
    // Surrogates are not characters.
    std::vector<std::pair<uint32_t, uint32_t>> cps;
    for (auto x : m) {
      if (x.second < 0xD800 || x.first > 0xDFFF) {
        cps.push_back(x);
      } else {
        if (x.first < 0xD800) cps.push_back({x.first, 0xD7FF});
        if (x.second > 0xDFFF) cps.push_back({0xE000, x.second});
      }
    }
    std::vector<ByteRanges> seqs;
    for (auto x : cps) utf8_split(x.first, std::min<uint32_t>(x.second, 0x10FFFF), seqs);
    // ASCII ranges fold into one byte class; longer sequences become alternatives of a rule.
    std::bitset<256> ascii;
    std::vector<ByteRanges> multi;
    for (auto& s : seqs) {
      if (s.size() == 1)
        for (int b = s[0].first; b <= s[0].second; ++b) ascii.set(size_t(b));
      else
        multi.push_back(std::move(s));
    }
    if (multi.empty()) {
      if (ascii.none()) return invalid_argument("grammar: empty character class");
      out.push_back({Elem::kByte, byte_class(ascii)});
      return Status::ok();
    }
    const uint32_t rule = new_rule("[class]");
    if (ascii.any()) bodies_[rule].push_back({{Elem::kByte, byte_class(ascii)}});
    for (const auto& s : multi) {
      std::vector<Elem> e;
      for (auto [lo, hi] : s) {
        std::bitset<256> b;
        for (int x = lo; x <= hi; ++x) b.set(size_t(x));
        e.push_back({Elem::kByte, byte_class(b)});
      }
      bodies_[rule].push_back(std::move(e));
    }
    out.push_back({Elem::kRef, rule});
    return Status::ok();
  }

  Status item(const Item& it, std::vector<Elem>& out) {
    if (it.min == 1 && it.max == 1) return once(it, out);
    // One element standing for a single repetition, then the repetition as rules.
    std::vector<Elem> one;
    HEARTH_RETURN_IF_ERROR(once(it, one));
    if (one.size() != 1) {
      const uint32_t r = new_rule("(rep)");
      bodies_[r].push_back(one);
      one = {{Elem::kRef, r}};
    }
    const Elem x = one[0];
    for (int k = 0; k < it.min; ++k) out.push_back(x);
    if (it.max < 0) {  // x*: star ::= x star | ()
      const uint32_t star = new_rule("(star)");
      bodies_[star].push_back({x, {Elem::kRef, star}});
      bodies_[star].push_back({});
      out.push_back({Elem::kRef, star});
    } else if (it.max > it.min) {  // opt_k ::= x opt_(k-1) | ()
      uint32_t prev = 0;
      for (int k = 1; k <= it.max - it.min; ++k) {
        const uint32_t r = new_rule("(opt)");
        if (k == 1)
          bodies_[r].push_back({x});
        else
          bodies_[r].push_back({x, {Elem::kRef, prev}});
        bodies_[r].push_back({});
        prev = r;
      }
      out.push_back({Elem::kRef, prev});
    }
    return Status::ok();
  }

  Grammar& g_;
  std::map<std::string, uint32_t> ids_;
  std::map<std::string, uint32_t> class_ids_;
  std::vector<std::vector<std::vector<Elem>>> bodies_;  // rule -> alternatives -> elements
};

}  // namespace

Result<std::shared_ptr<const Grammar>> Grammar::parse(std::string_view gbnf) {
  std::vector<std::pair<std::string, Alts>> rules;
  Parser p(gbnf);
  HEARTH_RETURN_IF_ERROR(p.parse(rules));
  auto g = std::make_shared<Grammar>();
  Lowerer l(*g);
  HEARTH_RETURN_IF_ERROR(l.lower(rules));
  for (const auto& c : g->classes) {
    std::array<uint64_t, 4> w{};
    for (size_t b = 0; b < 256; ++b)
      if (c[b]) w[b >> 6] |= uint64_t(1) << (b & 63);
    g->class_words.push_back(w);
  }
  return std::shared_ptr<const Grammar>(std::move(g));
}

std::string gbnf_literal(std::string_view bytes) {
  std::string r = "\"";
  static const char* hex = "0123456789ABCDEF";
  for (unsigned char c : bytes) {
    if (c == '"' || c == '\\') {
      r += '\\';
      r += char(c);
    } else if (c == '\n') {
      r += "\\n";
    } else if (c == '\r') {
      r += "\\r";
    } else if (c == '\t') {
      r += "\\t";
    } else if (c < 0x20 || c >= 0x7F) {  // control bytes and anything not ASCII, raw
      r += "\\x";
      r += hex[c >> 4];
      r += hex[c & 15];
    } else {
      r += char(c);
    }
  }
  return r + "\"";
}

}  // namespace hearth::grammar
