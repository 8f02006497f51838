// templates/jinja/ast.h — tokens and the syntax tree of the Jinja engine (internal).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "templates/jinja/value.h"

namespace hearth::templates::jinja {

// An error inside the engine; `line` is 1-based in the template source (0: unknown).
struct JinjaError : std::runtime_error {
  JinjaError(int l, const std::string& m) : std::runtime_error(m), line(l) {}
  int line;
};

enum class Tok {
  kText,
  kNumber,
  kString,
  kIdent,
  kEquals,
  kOpenParen,
  kCloseParen,
  kOpenStmt,
  kCloseStmt,
  kOpenExpr,
  kCloseExpr,
  kOpenSquare,
  kCloseSquare,
  kOpenCurly,
  kCloseCurly,
  kComma,
  kDot,
  kColon,
  kPipe,
  kAdditive,
  kMultiplicative,
  kPow,
  kCompare,
  kUnary,
  kComment,
};

struct Token {
  Tok type;
  std::string value;
  int line;
};

// Lexes with the reference's preprocessing (trim_blocks, lstrip_blocks, one trailing newline
// dropped, generation tags removed) and whitespace control.
std::vector<Token> tokenize(const std::string& source);

struct Node;
using NodeP = std::shared_ptr<Node>;

struct Node {
  enum class K {
    // statements
    kProgram,
    kIf,
    kFor,
    kSet,
    kMacro,
    kCallBlock,
    kFilterBlock,
    kBreak,
    kContinue,
    kComment,
    // expressions
    kLiteral,
    kIdent,
    kArray,
    kTuple,
    kObject,
    kMember,
    kSlice,
    kCall,
    kKwArg,
    kSpread,
    kKwSpread,
    kBinary,
    kUnary,
    kFilter,
    kTest,
    kSelect,
    kTernary,
  };
  K k;
  int line = 0;
  Value lit;                // kLiteral
  std::string name;         // identifier, operator, test/filter name, keyword name
  bool flag = false;        // kMember: computed; kTest: negated
  std::vector<NodeP> a;     // children (operands, args, items, key/value pairs, ...)
  std::vector<NodeP> body;  // statement bodies
  std::vector<NodeP> alt;   // else / elif branch, for-else block
  NodeP x, y, z;            // named operands (see the parser)
};

NodeP parse(const std::vector<Token>& tokens);

}  // namespace hearth::templates::jinja
