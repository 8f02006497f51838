// grammar/grammar.h — context-free grammars over bytes, written in llama.cpp's GBNF, compiled to
// a flat table the matcher (matcher.h) walks.
//
// GBNF as llama.cpp documents it: `name ::= alternatives`, "literals" with \n \t \" \\ \xHH
// \uHHHH escapes, [character classes] with ranges and ^ negation, rule references, ( groups ),
// | alternation, * + ? and {m}, {m,}, {m,n} repetition, # comments; `root` is the start rule.
// Plus <[ID]>: exactly the vocabulary token ID (markers that are single special tokens).
//
// Matching is on bytes, not code points, so tokens that end inside a UTF-8 character (byte-level
// BPE) are checked as they are: classes and literals above U+007F are compiled to their UTF-8
// byte sequences.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace hearth::grammar {

// One element of a rule's flattened alternatives.
struct Elem {
  enum Kind : uint8_t {
    kEnd,    // end of the rule (closes its last alternative)
    kAlt,    // end of an alternative; another follows
    kRef,    // the rule `arg`
    kByte,   // one byte of the class `arg`
    kToken,  // the vocabulary token `arg`
  };
  Kind kind;
  uint32_t arg = 0;
};

struct Grammar {
  std::vector<Elem> elems;                           // all rules, back to back
  std::vector<uint32_t> rule_start;                  // rule -> index of its first element
  std::vector<std::vector<uint32_t>> alts;           // rule -> start index of each alternative
  std::vector<std::bitset<256>> classes;             // byte classes
  std::vector<std::array<uint64_t, 4>> class_words;  // the same as 4 words (bit b: byte b)
  std::vector<std::string> rule_names;
  uint32_t root = 0;

  // Parses GBNF text. Errors name the line and what is wrong (InvalidArgument).
  static Result<std::shared_ptr<const Grammar>> parse(std::string_view gbnf);
};

// GBNF helpers for code that writes grammars.
std::string gbnf_literal(std::string_view bytes);  // a quoted literal matching exactly `bytes`

}  // namespace hearth::grammar
