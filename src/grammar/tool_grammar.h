// grammar/tool_grammar.h — grammars for tool calls in a model family's own syntax, with each
// tool's arguments held to its JSON schema (tool_choice "required" / a named function, and the
// body of a call a model opens by itself under "auto").
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "parsers/format.h"

namespace hearth::grammar {

struct ToolGrammarOptions {
  // The tools a call may name (the request's tools, or the one named by tool_choice).
  nlohmann::ordered_json tools;
  // true: the whole output is calls, markers included ("required"); false: only the body of one
  // call and its closing marker (the parser saw the opening one).
  bool whole = true;
  bool parallel = true;  // several calls in a row (whole only)
  // Token id of a marker that is one vocabulary token, or -1: spelled as text.
  std::function<int32_t(const std::string&)> marker_token;
};

// GBNF for calls in `format`'s syntax. InvalidArgument if the syntax cannot be constrained or a
// tool's parameter schema is not supported.
Result<std::string> tool_call_grammar(const parsers::Format& format, const ToolGrammarOptions& o);

}  // namespace hearth::grammar
