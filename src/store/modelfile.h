// store/modelfile.h — Ollama's Modelfile: FROM, PARAMETER, TEMPLATE, SYSTEM, ADAPTER, LICENSE,
// MESSAGE (+ REQUIRES). Instructions are case-insensitive, `#` lines are comments, arguments are
// bare to the end of the line, "quoted" or """triple-quoted""" (both may span lines). Errors
// name the line: "(line 3): unknown parameter 'foo'".
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace hearth::store {

struct Modelfile {
  std::string from;  // model name or GGUF path (required)
  nlohmann::ordered_json params = nlohmann::ordered_json::object();  // typed, Ollama's names
  std::optional<std::string> template_text, system;
  // PARSER / RENDERER: Ollama's names for a model's output format and prompt renderer.
  std::optional<std::string> parser, renderer;
  std::vector<std::string> licenses;
  std::optional<std::string> draft;  // DRAFT: a draft model (GGUF path) for speculative decoding
  // ADAPTER lines: LoRA adapters (GGUF, llama.cpp's format), each `ADAPTER <path> [<scale>]` (a
  // trailing number after the path is the scale, default 1: a hearth extension; Ollama takes
  // one adapter at scale 1).
  struct Adapter {
    std::string path;
    float scale = 1;
  };
  std::vector<Adapter> adapters;
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{role, content}]
  std::string requires_version;
  std::vector<std::string> warnings;  // deprecated parameters dropped, ...

  static Result<Modelfile> parse(std::string_view text);
  // A Modelfile that parses back to the same fields (what `hearth show --modelfile` prints).
  std::string to_text() const;
};

// Converts a PARAMETER / request option value to its JSON type (int, float, bool, string list
// for "stop"); errors name the option. `deprecated` is set for options that are accepted but
// ignored (Ollama removed them).
Result<nlohmann::ordered_json> parse_parameter(std::string_view name, std::string_view value,
                                               bool* deprecated = nullptr);

}  // namespace hearth::store
