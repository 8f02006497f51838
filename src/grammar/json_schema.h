// grammar/json_schema.h — JSON Schema to GBNF, for `format` (Ollama), `response_format`
// (OpenAI) and tool arguments.
//
// Covered: type (and unions), properties / required / additionalProperties, enum, const, nested
// objects and arrays, items / minItems / maxItems, minLength / maxLength / pattern (a regex subset:
// literals, classes, \d \w \s, groups, |, * + ? {m,n}), integer minimum / maximum (exclusive too),
// number bounds with integral endpoints, anyOf / oneOf, $ref into $defs / definitions, and the
// string formats date, time, date-time, uuid. Annotations (title, description, default, examples,
// ...) are ignored. Anything else is refused with InvalidArgument naming the keyword, so a client
// never gets output that silently ignores part of its schema.
//
// Required properties come first in the schema's order, then the optional ones in order; objects
// with `properties` admit no other keys unless additionalProperties says so (as llama.cpp does).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "base/status.h"

namespace hearth::grammar {

class SchemaCompiler {
 public:
  // Rule names get this prefix, so several schemas can share one grammar.
  explicit SchemaCompiler(std::string prefix = "");

  // A rule matching JSON values valid under `schema` (whose $defs resolve $refs); its name.
  Result<std::string> value(const nlohmann::ordered_json& schema);
  // Any JSON value / any JSON object.
  std::string any_value();
  std::string any_object();
  // The rules written so far (without a root rule).
  std::string rules() const;
  // Shared pieces other grammars use too: optional whitespace, a JSON string.
  std::string ws();
  std::string string_rule();

 private:
  Result<std::string> visit(const nlohmann::ordered_json& s, int depth);
  Result<std::string> object(const nlohmann::ordered_json& s, int depth);
  Result<std::string> array(const nlohmann::ordered_json& s, int depth);
  Result<std::string> string(const nlohmann::ordered_json& s);
  Result<std::string> number(const nlohmann::ordered_json& s, bool integer);
  std::string add(const std::string& hint, const std::string& body);
  std::string common(const std::string& name, const std::string& body);

  std::string prefix_;
  std::map<std::string, std::string> rules_;  // name -> body
  std::map<std::string, std::string> refs_;   // "$ref" target -> rule name
  std::set<std::string> common_done_;
  const nlohmann::ordered_json* root_ = nullptr;
  int counter_ = 0;
};

// A whole grammar (root rule included) for values matching `schema`, or any JSON object if
// `schema` is the string "json".
Result<std::string> json_schema_grammar(const nlohmann::ordered_json& schema);

// A regex (ECMAScript subset) as a GBNF expression over the characters of a JSON string's
// content (escaped as JSON needs). InvalidArgument for constructs outside the subset.
Result<std::string> regex_to_gbnf(const std::string& pattern);

}  // namespace hearth::grammar
