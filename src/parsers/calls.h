// parsers/calls.h — the body of a tool call, per syntax, to a name and JSON arguments.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/format.h"

namespace hearth::parsers {

struct ToolCall {
  std::string name;
  nlohmann::ordered_json arguments = nlohmann::ordered_json::object();
};

// Parses one call body (what lies between the format's call markers, or the rest of the reply for
// the untagged syntaxes, markers excluded). `tools` is the request's tools array (or null): Qwen's
// XML values are typed from their parameter's schema. Appends the calls (some syntaxes carry
// several) and returns true, or returns false with a reason in *error; `out` is then unchanged.
bool parse_calls(CallSyntax syntax, std::string_view body, const nlohmann::ordered_json& tools,
                 std::vector<ToolCall>& out, std::string* error);

// A Qwen XML parameter's raw text typed by its JSON schema (Ollama's rules): one leading and one
// trailing newline stripped; "null" is null; then, within the schema's types, boolean, integer,
// number, array, object, string in that order; a parameter without a known type is a string.
nlohmann::ordered_json qwen_typed_value(std::string_view raw, const nlohmann::ordered_json& schema);

}  // namespace hearth::parsers
