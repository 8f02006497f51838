// Lexer and parser, following the reference renderer's grammar and precedence:
// ternary < or < and < not < comparison (== != < > <= >= in, not in) < + - ~ < * / // % < ** <
// is-tests < |filters < unary sign < call/member access.
#include <cstring>

#include "templates/jinja/ast.h"

namespace hearth::templates::jinja {

namespace {

bool is_word(char c) {
  return std::isalnum(uint8_t(c)) || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// The preprocessed text plus the source line of every byte.
struct Src {
  std::string s;
  std::vector<int> line;
  void put(char c, int l) {
    s += c;
    line.push_back(l);
  }
};

Src preprocess(const std::string& in) {
  Src a;
  int l = 1;
  std::string text = in;
  if (!text.empty() && text.back() == '\n') text.pop_back();
  for (char c : text) {
    a.put(c, l);
    if (c == '\n') ++l;
  }
  // lstrip_blocks: blanks at the start of a line before "{%", "{#" (or "{-") go.
  Src b;
  for (size_t i = 0; i < a.s.size();) {
    const bool line_start = i == 0 || a.s[i - 1] == '\n' || a.s[i - 1] == '\r';
    if (line_start) {
      size_t j = i;
      while (j < a.s.size() && (a.s[j] == ' ' || a.s[j] == '\t')) ++j;
      if (j > i && j + 1 < a.s.size() && a.s[j] == '{' &&
          (a.s[j + 1] == '#' || a.s[j + 1] == '%' || a.s[j + 1] == '-'))
        i = j;
    }
    // Copy up to the next line start.
    do {
      b.put(a.s[i], a.line[i]);
      ++i;
    } while (i < a.s.size() && a.s[i - 1] != '\n' && a.s[i - 1] != '\r');
  }
  // trim_blocks: the newline right after "%}", "#}" or "-}" goes.
  Src c;
  for (size_t i = 0; i < b.s.size(); ++i) {
    c.put(b.s[i], b.line[i]);
    if (b.s[i] == '}' && i > 0 && (b.s[i - 1] == '%' || b.s[i - 1] == '#' || b.s[i - 1] == '-') &&
        i + 1 < b.s.size() && b.s[i + 1] == '\n')
      ++i;
  }
  // {% generation %} / {% endgeneration %} markers are dropped (with their whitespace control).
  Src d;
  for (size_t i = 0; i < c.s.size();) {
    if (c.s.compare(i, 2, "{%") == 0) {
      size_t j = i + 2;
      const bool lstrip = j < c.s.size() && c.s[j] == '-';
      if (lstrip) ++j;
      while (j < c.s.size() && is_space(c.s[j])) ++j;
      if (c.s.compare(j, 3, "end") == 0) j += 3;
      if (c.s.compare(j, 10, "generation") == 0) {
        j += 10;
        while (j < c.s.size() && is_space(c.s[j])) ++j;
        const bool rstrip = j < c.s.size() && c.s[j] == '-';
        if (rstrip) ++j;
        if (c.s.compare(j, 2, "%}") == 0) {
          j += 2;
          if (lstrip)
            while (!d.s.empty() && is_space(d.s.back())) {
              d.s.pop_back();
              d.line.pop_back();
            }
          if (rstrip)
            while (j < c.s.size() && is_space(c.s[j])) ++j;
          i = j;
          continue;
        }
      }
    }
    d.put(c.s[i], c.line[i]);
    ++i;
  }
  return d;
}

}  // namespace

std::vector<Token> tokenize(const std::string& source) {
  const Src src = preprocess(source);
  const std::string& s = src.s;
  std::vector<Token> toks;
  size_t pos = 0;
  int curly = 0;
  auto line_at = [&](size_t p) {
    return src.line.empty() ? 1 : src.line[std::min(p, src.line.size() - 1)];
  };
  auto err = [&](const std::string& m) { return JinjaError(line_at(pos), m); };
  auto push = [&](Tok t, std::string v, size_t at) {
    toks.push_back({t, std::move(v), line_at(at)});
  };
  auto strip_trailing = [&] {
    if (!toks.empty() && toks.back().type == Tok::kText) {
      std::string& v = toks.back().value;
      while (!v.empty() && is_space(v.back())) v.pop_back();
      if (v.empty()) toks.pop_back();
    }
  };
  auto skip_leading = [&] {
    while (pos < s.size() && is_space(s[pos])) ++pos;
  };
  // Reads until `stop` returns true, resolving backslash escapes (string literals).
  auto consume_string = [&](char quote) {
    std::string out;
    while (true) {
      if (pos >= s.size()) throw err("unterminated string literal");
      const char c = s[pos];
      if (c == quote) break;
      if (c == '\\') {
        if (++pos >= s.size()) throw err("unexpected end of input in a string literal");
        const char e = s[pos++];
        if (e == 'x' || e == 'u') {
          const size_t n = e == 'x' ? 2 : 4;
          if (pos + n > s.size()) throw err("invalid escape sequence");
          uint32_t cp = 0;
          for (size_t k = 0; k < n; ++k) {
            const char h = s[pos + k];
            if (!std::isxdigit(uint8_t(h))) throw err("invalid escape sequence");
            cp = cp * 16 +
                 uint32_t(std::isdigit(uint8_t(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
          }
          pos += n;
          if (cp < 0x80) {
            out += char(cp);
          } else if (cp < 0x800) {
            out += char(0xC0 | (cp >> 6));
            out += char(0x80 | (cp & 63));
          } else {
            out += char(0xE0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 63));
            out += char(0x80 | (cp & 63));
          }
          continue;
        }
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
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'v':
            out += '\v';
            break;
          case '\'':
            out += '\'';
            break;
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          default:
            throw err(std::string("unexpected escaped character: ") + e);
        }
        continue;
      }
      out += c;
      ++pos;
    }
    ++pos;  // closing quote
    return out;
  };
  auto digits = [&] {
    std::string d;
    while (pos < s.size() && is_digit(s[pos])) d += s[pos++];
    return d;
  };

  static const std::pair<const char*, Tok> kTable[] = {
      {"{%", Tok::kOpenStmt},      {"%}", Tok::kCloseStmt},
      {"{{", Tok::kOpenExpr},      {"}}", Tok::kCloseExpr},
      {"(", Tok::kOpenParen},      {")", Tok::kCloseParen},
      {"{", Tok::kOpenCurly},      {"}", Tok::kCloseCurly},
      {"[", Tok::kOpenSquare},     {"]", Tok::kCloseSquare},
      {",", Tok::kComma},          {".", Tok::kDot},
      {":", Tok::kColon},          {"|", Tok::kPipe},
      {"<=", Tok::kCompare},       {">=", Tok::kCompare},
      {"==", Tok::kCompare},       {"!=", Tok::kCompare},
      {"<", Tok::kCompare},        {">", Tok::kCompare},
      {"+", Tok::kAdditive},       {"-", Tok::kAdditive},
      {"~", Tok::kAdditive},       {"**", Tok::kPow},
      {"*", Tok::kMultiplicative}, {"//", Tok::kMultiplicative},
      {"/", Tok::kMultiplicative}, {"%", Tok::kMultiplicative},
      {"=", Tok::kEquals},
  };

  while (pos < s.size()) {
    const Tok last = toks.empty() ? Tok::kText : toks.back().type;
    if (toks.empty() || last == Tok::kCloseStmt || last == Tok::kCloseExpr ||
        last == Tok::kComment) {
      const size_t start = pos;
      std::string text;
      while (pos < s.size() && !(s[pos] == '{' && pos + 1 < s.size() &&
                                 (s[pos + 1] == '%' || s[pos + 1] == '{' || s[pos + 1] == '#')))
        text += s[pos++];
      if (!text.empty()) {
        push(Tok::kText, std::move(text), start);
        continue;
      }
    }
    if (s.compare(pos, 2, "{#") == 0) {
      const size_t start = pos;
      pos += 2;
      const bool strip_before = pos < s.size() && s[pos] == '-';
      if (strip_before) ++pos;
      const size_t end = s.find("#}", pos);
      if (end == std::string::npos) throw err("missing end of comment tag");
      std::string comment = s.substr(pos, end - pos);
      const bool strip_after = !comment.empty() && comment.back() == '-';
      if (strip_before) strip_trailing();
      push(Tok::kComment, comment, start);
      pos = end + 2;
      if (strip_after) skip_leading();
      continue;
    }
    if (s.compare(pos, 3, "{%-") == 0) {
      strip_trailing();
      push(Tok::kOpenStmt, "{%", pos);
      pos += 3;
      continue;
    }
    if (s.compare(pos, 3, "{{-") == 0) {
      strip_trailing();
      push(Tok::kOpenExpr, "{{", pos);
      curly = 0;
      pos += 3;
      continue;
    }
    while (pos < s.size() && is_space(s[pos])) ++pos;
    if (pos >= s.size()) break;
    if (s.compare(pos, 3, "-%}") == 0) {
      push(Tok::kCloseStmt, "%}", pos);
      pos += 3;
      skip_leading();
      continue;
    }
    if (s.compare(pos, 3, "-}}") == 0) {
      push(Tok::kCloseExpr, "}}", pos);
      pos += 3;
      skip_leading();
      continue;
    }
    const char ch = s[pos];
    if (ch == '-' || ch == '+') {
      if (toks.empty() || toks.back().type == Tok::kText)
        throw err(std::string("unexpected character: ") + ch);
      const Tok lt = toks.back().type;
      if (lt != Tok::kIdent && lt != Tok::kNumber && lt != Tok::kString && lt != Tok::kCloseParen &&
          lt != Tok::kCloseSquare) {
        const size_t start = pos++;
        std::string num = digits();
        if (!num.empty() && pos + 1 < s.size() && s[pos] == '.' && is_digit(s[pos + 1])) {
          ++pos;
          num += "." + digits();
        }
        push(num.empty() ? Tok::kUnary : Tok::kNumber, std::string(1, ch) + num, start);
        continue;
      }
    }
    bool matched = false;
    for (const auto& [seq, type] : kTable) {
      if (type == Tok::kCloseExpr && curly > 0) continue;
      const size_t n = std::strlen(seq);
      if (s.compare(pos, n, seq) == 0) {
        push(type, seq, pos);
        if (type == Tok::kOpenExpr)
          curly = 0;
        else if (type == Tok::kOpenCurly)
          ++curly;
        else if (type == Tok::kCloseCurly)
          --curly;
        pos += n;
        matched = true;
        break;
      }
    }
    if (matched) continue;
    if (ch == '\'' || ch == '"') {
      const size_t start = pos++;
      push(Tok::kString, consume_string(ch), start);
      continue;
    }
    if (is_digit(ch)) {
      const size_t start = pos;
      std::string num = digits();
      if ((toks.empty() || toks.back().type != Tok::kDot) && pos + 1 < s.size() && s[pos] == '.' &&
          is_digit(s[pos + 1])) {
        ++pos;
        num += "." + digits();
      }
      push(Tok::kNumber, num, start);
      continue;
    }
    if (is_word(ch)) {
      const size_t start = pos;
      std::string w;
      while (pos < s.size() && is_word(s[pos])) w += s[pos++];
      push(Tok::kIdent, w, start);
      continue;
    }
    throw err(std::string("unexpected character '") + ch + "'");
  }
  return toks;
}

namespace {

class Parser {
 public:
  explicit Parser(const std::vector<Token>& t) : t_(t) {}

  NodeP program() {
    auto p = node(Node::K::kProgram);
    while (cur_ < t_.size()) p->body.push_back(any());
    return p;
  }

 private:
  const Token& tok() const {
    if (cur_ >= t_.size())
      throw JinjaError(t_.empty() ? 0 : t_.back().line, "unexpected end of template");
    return t_[cur_];
  }
  int line() const { return cur_ < t_.size() ? t_[cur_].line : (t_.empty() ? 0 : t_.back().line); }
  NodeP node(Node::K k) {
    auto n = std::make_shared<Node>();
    n->k = k;
    n->line = line();
    return n;
  }
  bool is(Tok a) const { return cur_ < t_.size() && t_[cur_].type == a; }
  bool is_ident(const char* n, size_t off = 0) const {
    return cur_ + off < t_.size() && t_[cur_ + off].type == Tok::kIdent &&
           t_[cur_ + off].value == n;
  }
  bool is_stmt(std::initializer_list<const char*> names) const {
    if (!(is(Tok::kOpenStmt) && cur_ + 1 < t_.size() && t_[cur_ + 1].type == Tok::kIdent))
      return false;
    for (const char* n : names)
      if (t_[cur_ + 1].value == n) return true;
    return false;
  }
  const Token& expect(Tok type, const char* what) {
    const Token& x = tok();
    if (x.type != type)
      throw JinjaError(x.line, std::string("expected ") + what + ", got '" + x.value + "'");
    ++cur_;
    return x;
  }
  void expect_ident(const char* name) {
    if (!is_ident(name)) throw JinjaError(line(), std::string("expected '") + name + "'");
    ++cur_;
  }
  // A statement body runs until one of `ends` opens; running out of tokens names the opener.
  std::vector<NodeP> block_until(std::initializer_list<const char*> ends, const char* opener,
                                 int open_line) {
    std::vector<NodeP> body;
    while (!is_stmt(ends)) {
      if (cur_ >= t_.size())
        throw JinjaError(open_line,
                         std::string("unclosed '") + opener + "' block (missing end tag)");
      body.push_back(any());
    }
    return body;
  }

  NodeP any() {
    const Token& x = tok();
    switch (x.type) {
      case Tok::kComment: {
        auto n = node(Node::K::kComment);
        ++cur_;
        return n;
      }
      case Tok::kText: {
        auto n = node(Node::K::kLiteral);
        n->lit = Value::str(x.value);
        ++cur_;
        return n;
      }
      case Tok::kOpenStmt:
        return statement();
      case Tok::kOpenExpr: {
        ++cur_;
        auto e = expression();
        expect(Tok::kCloseExpr, "'}}'");
        return e;
      }
      default:
        throw JinjaError(x.line, "unexpected '" + x.value + "'");
    }
  }

  NodeP statement() {
    expect(Tok::kOpenStmt, "'{%'");
    const Token& nm = tok();
    if (nm.type != Tok::kIdent)
      throw JinjaError(nm.line, "expected a statement name, got '" + nm.value + "'");
    const std::string name = nm.value;
    const int l = nm.line;
    ++cur_;
    auto end = [&](const char* e) {
      expect(Tok::kOpenStmt, "'{%'");
      expect_ident(e);
      expect(Tok::kCloseStmt, "'%}'");
    };
    if (name == "set") return set_stmt(l);
    if (name == "if") {
      auto n = if_stmt(l);
      end("endif");
      return n;
    }
    if (name == "for") {
      auto n = node(Node::K::kFor);
      n->line = l;
      n->x = expression_sequence(true);
      if (n->x->k != Node::K::kIdent && n->x->k != Node::K::kTuple)
        throw JinjaError(l, "expected a name or names for the loop variable");
      if (!is_ident("in")) throw JinjaError(line(), "expected 'in' after the loop variable");
      ++cur_;
      n->y = expression();
      expect(Tok::kCloseStmt, "'%}'");
      n->body = block_until({"endfor", "else"}, "for", l);
      if (is_stmt({"else"})) {
        cur_ += 2;
        expect(Tok::kCloseStmt, "'%}'");
        n->alt = block_until({"endfor"}, "for", l);
      }
      end("endfor");
      return n;
    }
    if (name == "macro") {
      auto n = node(Node::K::kMacro);
      n->line = l;
      auto id = primary();
      if (id->k != Node::K::kIdent) throw JinjaError(l, "expected a macro name");
      n->name = id->name;
      n->a = args(true);
      expect(Tok::kCloseStmt, "'%}'");
      n->body = block_until({"endmacro"}, "macro", l);
      end("endmacro");
      return n;
    }
    if (name == "call") {
      auto n = node(Node::K::kCallBlock);
      n->line = l;
      if (is(Tok::kOpenParen)) n->alt = args(true);  // caller parameters
      auto callee = primary();
      if (callee->k != Node::K::kIdent) throw JinjaError(l, "expected a macro name after 'call'");
      auto call = node(Node::K::kCall);
      call->x = callee;
      call->a = args(false);
      n->x = call;
      expect(Tok::kCloseStmt, "'%}'");
      n->body = block_until({"endcall"}, "call", l);
      end("endcall");
      return n;
    }
    if (name == "break" || name == "continue") {
      auto n = node(name == "break" ? Node::K::kBreak : Node::K::kContinue);
      n->line = l;
      expect(Tok::kCloseStmt, "'%}'");
      return n;
    }
    if (name == "filter") {
      auto n = node(Node::K::kFilterBlock);
      n->line = l;
      auto f = primary();
      if (f->k == Node::K::kIdent && is(Tok::kOpenParen)) f = call_expr(f);
      n->x = f;
      expect(Tok::kCloseStmt, "'%}'");
      n->body = block_until({"endfilter"}, "filter", l);
      end("endfilter");
      return n;
    }
    throw JinjaError(l, "unknown statement '" + name + "'");
  }

  NodeP set_stmt(int l) {
    auto n = node(Node::K::kSet);
    n->line = l;
    n->x = expression_sequence(false);
    if (is(Tok::kEquals)) {
      ++cur_;
      n->y = expression_sequence(false);
    } else {
      expect(Tok::kCloseStmt, "'%}'");
      n->body = block_until({"endset"}, "set", l);
      expect(Tok::kOpenStmt, "'{%'");
      expect_ident("endset");
    }
    expect(Tok::kCloseStmt, "'%}'");
    return n;
  }

  NodeP if_stmt(int l) {
    auto n = node(Node::K::kIf);
    n->line = l;
    n->x = expression();
    expect(Tok::kCloseStmt, "'%}'");
    n->body = block_until({"elif", "else", "endif"}, "if", l);
    if (is_stmt({"elif"})) {
      const int el = t_[cur_ + 1].line;
      cur_ += 2;
      n->alt.push_back(if_stmt(el));
    } else if (is_stmt({"else"})) {
      cur_ += 2;
      expect(Tok::kCloseStmt, "'%}'");
      n->alt = block_until({"endif"}, "if", l);
    }
    return n;
  }

  NodeP expression_sequence(bool primary_only) {
    std::vector<NodeP> v{primary_only ? primary() : expression()};
    const bool tuple = is(Tok::kComma);
    while (tuple) {
      ++cur_;
      v.push_back(primary_only ? primary() : expression());
      if (!is(Tok::kComma)) break;
    }
    if (!tuple) return v[0];
    auto t = node(Node::K::kTuple);
    t->a = std::move(v);
    return t;
  }

  NodeP expression() {
    if (++depth_ > 200) throw JinjaError(line(), "expression nested too deeply");
    auto r = if_expr();
    --depth_;
    return r;
  }

  NodeP if_expr() {
    auto a = or_expr();
    if (is_ident("if")) {
      const int l = line();
      ++cur_;
      auto test = or_expr();
      if (is_ident("else")) {
        ++cur_;
        auto n = node(Node::K::kTernary);
        n->line = l;
        n->x = test;
        n->y = a;
        n->z = if_expr();
        return n;
      }
      auto n = node(Node::K::kSelect);
      n->line = l;
      n->x = a;
      n->y = test;
      return n;
    }
    return a;
  }

  NodeP binary(const std::string& op, NodeP l, NodeP r, int line_no) {
    auto n = node(Node::K::kBinary);
    n->line = line_no;
    n->name = op;
    n->x = std::move(l);
    n->y = std::move(r);
    return n;
  }

  NodeP or_expr() {
    auto l = and_expr();
    while (is_ident("or")) {
      const int ln = line();
      ++cur_;
      l = binary("or", l, and_expr(), ln);
    }
    return l;
  }
  NodeP and_expr() {
    auto l = not_expr();
    while (is_ident("and")) {
      const int ln = line();
      ++cur_;
      l = binary("and", l, not_expr(), ln);
    }
    return l;
  }
  NodeP not_expr() {
    if (is_ident("not")) {
      auto n = node(Node::K::kUnary);
      n->name = "not";
      ++cur_;
      if (++depth_ > 200) throw JinjaError(line(), "expression nested too deeply");
      n->x = not_expr();
      --depth_;
      return n;
    }
    return compare_expr();
  }
  NodeP compare_expr() {
    auto l = additive();
    while (true) {
      std::string op;
      const int ln = line();
      if (is_ident("not") && is_ident("in", 1)) {
        op = "not in";
        cur_ += 2;
      } else if (is_ident("in")) {
        op = "in";
        ++cur_;
      } else if (is(Tok::kCompare)) {
        op = t_[cur_++].value;
      } else {
        break;
      }
      l = binary(op, l, additive(), ln);
    }
    return l;
  }
  NodeP additive() {
    auto l = multiplicative();
    while (is(Tok::kAdditive)) {
      const int ln = line();
      const std::string op = t_[cur_++].value;
      l = binary(op, l, multiplicative(), ln);
    }
    return l;
  }
  NodeP multiplicative() {
    auto l = power();
    while (is(Tok::kMultiplicative)) {
      const int ln = line();
      const std::string op = t_[cur_++].value;
      l = binary(op, l, power(), ln);
    }
    return l;
  }
  NodeP power() {
    auto l = test_expr();
    while (is(Tok::kPow)) {
      const int ln = line();
      ++cur_;
      l = binary("**", l, test_expr(), ln);
    }
    return l;
  }
  NodeP test_expr() {
    auto operand = filter_expr();
    while (is_ident("is")) {
      const int ln = line();
      ++cur_;
      const bool negate = is_ident("not");
      if (negate) ++cur_;
      auto t = primary();
      if (t->k != Node::K::kIdent) throw JinjaError(ln, "expected a test name after 'is'");
      auto n = node(Node::K::kTest);
      n->line = ln;
      n->flag = negate;
      n->name = t->name;
      n->x = operand;
      operand = n;
    }
    return operand;
  }
  NodeP filter_expr() {
    auto operand = unary_sign();
    while (is(Tok::kPipe)) {
      const int ln = line();
      ++cur_;
      auto f = primary();
      if (f->k != Node::K::kIdent) throw JinjaError(ln, "expected a filter name after '|'");
      if (is(Tok::kOpenParen)) f = call_expr(f);
      auto n = node(Node::K::kFilter);
      n->line = ln;
      n->x = operand;
      n->y = f;
      operand = n;
    }
    return operand;
  }
  NodeP unary_sign() {
    if ((is(Tok::kUnary) || is(Tok::kAdditive)) && (tok().value == "-" || tok().value == "+")) {
      auto n = node(Node::K::kUnary);
      n->name = t_[cur_++].value;
      if (++depth_ > 200) throw JinjaError(line(), "expression nested too deeply");
      n->x = unary_sign();
      --depth_;
      return n;
    }
    auto m = member(primary());
    if (is(Tok::kOpenParen)) return call_expr(m);
    return m;
  }
  NodeP call_expr(NodeP callee) {
    auto n = node(Node::K::kCall);
    n->x = callee;
    n->a = args(false);
    NodeP e = member(n);
    if (is(Tok::kOpenParen)) e = call_expr(e);
    return e;
  }
  std::vector<NodeP> args(bool params) {
    expect(Tok::kOpenParen, "'('");
    std::vector<NodeP> out;
    while (!is(Tok::kCloseParen)) {
      if (cur_ >= t_.size()) throw JinjaError(line(), "unclosed '(' in an argument list");
      if (is(Tok::kPow) && !params) {
        ++cur_;
        auto n = node(Node::K::kKwSpread);
        n->x = expression();
        out.push_back(n);
        if (is(Tok::kComma)) ++cur_;
        break;
      }
      if (is(Tok::kMultiplicative) && tok().value == "*" && !params) {
        ++cur_;
        auto n = node(Node::K::kSpread);
        n->x = expression();
        out.push_back(n);
      } else {
        auto e = expression();
        if (is(Tok::kEquals)) {
          ++cur_;
          if (e->k != Node::K::kIdent)
            throw JinjaError(line(), "expected a name before '=' in arguments");
          auto kw = node(Node::K::kKwArg);
          kw->name = e->name;
          kw->x = expression();
          e = kw;
        }
        if (params && e->k != Node::K::kIdent && e->k != Node::K::kKwArg)
          throw JinjaError(line(), "expected a parameter name");
        out.push_back(e);
      }
      if (is(Tok::kComma)) ++cur_;
    }
    expect(Tok::kCloseParen, "')'");
    return out;
  }
  NodeP member(NodeP object) {
    while (is(Tok::kDot) || is(Tok::kOpenSquare)) {
      const bool computed = is(Tok::kOpenSquare);
      const int ln = line();
      ++cur_;
      auto n = node(Node::K::kMember);
      n->line = ln;
      n->x = object;
      n->flag = computed;
      if (computed) {
        std::vector<NodeP> parts;
        bool slice = false;
        while (!is(Tok::kCloseSquare)) {
          if (cur_ >= t_.size()) throw JinjaError(ln, "unclosed '['");
          if (is(Tok::kColon)) {
            parts.push_back(nullptr);
            ++cur_;
            slice = true;
          } else {
            parts.push_back(expression());
            if (is(Tok::kColon)) {
              ++cur_;
              slice = true;
            }
          }
        }
        if (parts.empty()) throw JinjaError(ln, "empty subscript '[]'");
        if (slice) {
          if (parts.size() > 3) throw JinjaError(ln, "a slice takes at most 3 parts");
          auto sl = node(Node::K::kSlice);
          sl->x = parts.size() > 0 ? parts[0] : nullptr;
          sl->y = parts.size() > 1 ? parts[1] : nullptr;
          sl->z = parts.size() > 2 ? parts[2] : nullptr;
          n->y = sl;
        } else {
          n->y = parts[0];
        }
        expect(Tok::kCloseSquare, "']'");
      } else {
        auto p = primary();
        if (p->k != Node::K::kIdent && !(p->k == Node::K::kLiteral && p->lit.k == Value::K::kInt))
          throw JinjaError(ln, "expected a name after '.'");
        n->y = p;
      }
      object = n;
    }
    return object;
  }
  NodeP primary() {
    const Token& x = tok();
    ++cur_;
    switch (x.type) {
      case Tok::kNumber: {
        auto n = node(Node::K::kLiteral);
        n->line = x.line;
        if (x.value.find('.') != std::string::npos)
          n->lit = Value::number(std::strtod(x.value.c_str(), nullptr));
        else
          n->lit = Value::integer(std::strtoll(x.value.c_str(), nullptr, 10));
        return n;
      }
      case Tok::kString: {
        auto n = node(Node::K::kLiteral);
        n->line = x.line;
        std::string v = x.value;
        while (is(Tok::kString)) v += t_[cur_++].value;  // adjacent literals concatenate
        n->lit = Value::str(v);
        return n;
      }
      case Tok::kIdent: {
        auto n = node(Node::K::kIdent);
        n->line = x.line;
        n->name = x.value;
        return n;
      }
      case Tok::kOpenParen: {
        auto e = expression_sequence(false);
        expect(Tok::kCloseParen, "')'");
        return e;
      }
      case Tok::kOpenSquare: {
        auto n = node(Node::K::kArray);
        n->line = x.line;
        while (!is(Tok::kCloseSquare)) {
          if (cur_ >= t_.size()) throw JinjaError(x.line, "unclosed '['");
          n->a.push_back(expression());
          if (is(Tok::kComma)) ++cur_;
        }
        ++cur_;
        return n;
      }
      case Tok::kOpenCurly: {
        auto n = node(Node::K::kObject);
        n->line = x.line;
        while (!is(Tok::kCloseCurly)) {
          if (cur_ >= t_.size()) throw JinjaError(x.line, "unclosed '{'");
          n->a.push_back(expression());
          expect(Tok::kColon, "':' in a dict literal");
          n->a.push_back(expression());
          if (is(Tok::kComma)) ++cur_;
        }
        ++cur_;
        return n;
      }
      default:
        throw JinjaError(x.line, "unexpected '" + x.value + "' in an expression");
    }
  }

  const std::vector<Token>& t_;
  size_t cur_ = 0;
  int depth_ = 0;
};

}  // namespace

NodeP parse(const std::vector<Token>& tokens) {
  return Parser(tokens).program();
}

}  // namespace hearth::templates::jinja
