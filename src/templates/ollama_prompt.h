// templates/ollama_prompt.h — a chat as Ollama renders it with a Modelfile TEMPLATE (Go
// text/template): messages mode when the template uses .Messages, otherwise the legacy per-turn
// mode (System/Prompt/Response per exchange, the last one cut after {{ .Response }}), and the
// fill-in-the-middle mode for /api/generate with a suffix.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/status.h"
#include "templates/gotmpl/gotmpl.h"

namespace hearth::templates {

// Parses a TEMPLATE as Ollama does: one that uses neither .Messages nor .Response gets
// {{ .Response }} appended.
Result<gotmpl::Template> parse_ollama_template(const std::string& source);

struct OllamaPromptInput {
  // Ollama API messages: role, content, thinking, images, tool_calls [{function: {name,
  // arguments}}], tool_name, tool_call_id.
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();
  std::optional<bool> think;
  std::string prompt, suffix;  // /api/generate fill-in-the-middle (both set)
};

// Every execution of the template spends from one budget (templates/budget.h): `budget` if given
// (left holding what was spent), else Budget::for_input(the size of the messages and tools).
Result<std::string> render_ollama(const gotmpl::Template& t, const OllamaPromptInput& in,
                                  Budget* budget = nullptr);

}  // namespace hearth::templates
