// templates/chat.h — turning a conversation into a prompt with a model's chat template.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/status.h"
#include "gguf/gguf.h"
#include "templates/ollama_prompt.h"

namespace hearth::templates {

struct ChatInput {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  std::optional<nlohmann::ordered_json> tools;  // passed only when given, as HF does
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();  // e.g. enable_thinking
  bool add_generation_prompt = true;
};

struct JinjaChatTemplate {
  std::string source;
  std::string bos_token, eos_token;  // token texts the template may print
};

// The GGUF's tokenizer.chat_template with the texts of its BOS/EOS tokens; NotFound if the file
// has no template.
Result<JinjaChatTemplate> jinja_chat_template(const gguf::GgufFile& f);

// Renders with the Jinja engine. The context is what transformers' apply_chat_template passes:
// the extra variables, then messages, tools (if any), add_generation_prompt, bos_token,
// eos_token.
Result<std::string> render_jinja_chat(const JinjaChatTemplate& t, const ChatInput& in);

// What a model has to turn chats into prompts: an Ollama Modelfile TEMPLATE (Go) if it has one,
// else the GGUF's Jinja chat template; with neither, Ollama's default "{{ .Prompt }}" applies.
struct ModelTemplates {
  std::optional<std::string> go_template;
  std::optional<JinjaChatTemplate> jinja;
};

// Renders with the model's TEMPLATE when present, otherwise with its Jinja template.
// `in.vars["enable_thinking"]` becomes Ollama's .Think for Go templates.
Result<std::string> render_chat_prompt(const ModelTemplates& t, const ChatInput& in);

}  // namespace hearth::templates
