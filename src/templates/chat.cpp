#include "templates/chat.h"

#include "templates/jinja/jinja.h"

namespace hearth::templates {

Result<JinjaChatTemplate> jinja_chat_template(const gguf::GgufFile& f) {
  JinjaChatTemplate t;
  if (!f.find("tokenizer.chat_template"))
    return Status(StatusCode::kNotFound,
                  "the model has no chat template (tokenizer.chat_template)");
  HEARTH_ASSIGN_OR_RETURN(t.source, f.get_string("tokenizer.chat_template"));
  if (f.find("tokenizer.ggml.tokens")) {
    HEARTH_ASSIGN_OR_RETURN(auto tokens, f.get_string_array("tokenizer.ggml.tokens"));
    auto text_of = [&](const char* key) -> Result<std::string> {
      HEARTH_ASSIGN_OR_RETURN(int64_t id, f.get_int_or(key, -1));
      if (id < 0 || size_t(id) >= tokens.size()) return std::string();
      return std::string(tokens[size_t(id)]);
    };
    HEARTH_ASSIGN_OR_RETURN(t.bos_token, text_of("tokenizer.ggml.bos_token_id"));
    HEARTH_ASSIGN_OR_RETURN(t.eos_token, text_of("tokenizer.ggml.eos_token_id"));
  }
  return t;
}

Result<std::string> render_jinja_chat(const JinjaChatTemplate& t, const ChatInput& in) {
  HEARTH_ASSIGN_OR_RETURN(auto tmpl, jinja::Template::parse(t.source));
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  if (in.vars.is_object())
    for (const auto& [k, v] : in.vars.items()) ctx[k] = v;
  ctx["messages"] = in.messages;
  if (in.tools) ctx["tools"] = *in.tools;
  ctx["add_generation_prompt"] = in.add_generation_prompt;
  ctx["bos_token"] = t.bos_token;
  ctx["eos_token"] = t.eos_token;
  return tmpl.render(ctx);
}

Result<std::string> render_chat_prompt(const ModelTemplates& t, const ChatInput& in) {
  if (t.go_template || !t.jinja) {
    HEARTH_ASSIGN_OR_RETURN(auto gt,
                            parse_ollama_template(t.go_template.value_or("{{ .Prompt }}")));
    OllamaPromptInput oi;
    oi.messages = in.messages;
    if (in.tools) oi.tools = *in.tools;
    if (in.vars.is_object() && in.vars.contains("enable_thinking") &&
        in.vars["enable_thinking"].is_boolean())
      oi.think = in.vars["enable_thinking"].get<bool>();
    return render_ollama(gt, oi);
  }
  return render_jinja_chat(*t.jinja, in);
}

}  // namespace hearth::templates
