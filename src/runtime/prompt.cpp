#include "runtime/prompt.h"

#include <algorithm>

#include "templates/ollama_prompt.h"

namespace hearth::runtime {
namespace {

using ojson = nlohmann::ordered_json;

// Ollama's message normalisation: lower-case roles, null content as "".
ojson normalise_messages(const ojson& in) {
  ojson out = ojson::array();
  for (const auto& m : in) {
    ojson x = m;
    if (x.contains("role") && x["role"].is_string()) {
      std::string r = x["role"].get<std::string>();
      std::transform(r.begin(), r.end(), r.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      x["role"] = r;
    }
    if (!x.contains("content") || x["content"].is_null()) x["content"] = "";
    // OpenAI's developer role is the system role to every template.
    if (x.value("role", "") == "developer") x["role"] = "system";
    // Tool calls in the shape templates read (Hugging Face's): type "function", an id.
    if (x.contains("tool_calls") && x["tool_calls"].is_array())
      for (auto& tc : x["tool_calls"])
        if (tc.is_object() && tc.contains("function") && !tc.contains("type"))
          tc["type"] = "function";
    // A tool result carries its tool's name as `name` (Hugging Face) whether the client sent
    // Ollama's tool_name or only OpenAI's tool_call_id (resolved from the earlier call).
    if (x.value("role", "") == "tool" && !(x.contains("name") && x["name"].is_string())) {
      if (x.contains("tool_name") && x["tool_name"].is_string()) {
        x["name"] = x["tool_name"];
      } else if (x.contains("tool_call_id") && x["tool_call_id"].is_string()) {
        for (const auto& prev : out)
          if (prev.contains("tool_calls") && prev["tool_calls"].is_array())
            for (const auto& tc : prev["tool_calls"])
              if (tc.is_object() && tc.value("id", "") == x["tool_call_id"] &&
                  tc.contains("function") && tc["function"].is_object() &&
                  tc["function"].contains("name"))
                x["name"] = tc["function"]["name"];
      }
    }
    out.push_back(std::move(x));
  }
  return out;
}

std::vector<int32_t> tokenize(const tokenizer::Tokenizer& tok, std::string text) {
  // Templates usually print the BOS text themselves; the tokenizer adds BOS as well, so drop
  // the printed one (llama.cpp does the same) rather than feed two.
  if (tok.add_bos() && tok.special().bos >= 0) {
    const std::string_view bos = tok.token_text(tok.special().bos);
    if (!bos.empty() && text.compare(0, bos.size(), bos) == 0) text.erase(0, bos.size());
  }
  return tok.encode(text, /*add_special=*/true, /*parse_special=*/true);
}

// A template that cannot render is the model's fault, not the request's: 500, as Ollama answers.
template <typename T>
Result<T> template_error(Result<T> r) {
  if (r.is_ok()) return r;
  return Status(StatusCode::kCorrupt, "template: " + r.status().message());
}

}  // namespace

Result<BuiltPrompt> build_prompt(const PromptSpec& spec, const store::ModelRecord& model,
                                 const std::optional<templates::JinjaChatTemplate>& gguf_jinja,
                                 const tokenizer::Tokenizer& tok) {
  BuiltPrompt out;
  std::optional<std::string> go =
      spec.template_override ? spec.template_override : model.template_text;
  templates::ModelTemplates mt;
  mt.go_template = go;
  if (gguf_jinja) mt.jinja = *gguf_jinja;

  if (spec.kind == PromptSpec::Kind::kGenerate && spec.raw) {
    out.text = spec.prompt;
    out.tokens = tokenize(tok, out.text);
    return out;
  }

  if (spec.kind == PromptSpec::Kind::kGenerate && !spec.suffix.empty()) {
    // Fill-in-the-middle: the TEMPLATE's own FIM form if it has one, else the model's tokens.
    if (go && go->find(".Suffix") != std::string::npos) {
      HEARTH_ASSIGN_OR_RETURN(auto t, template_error(templates::parse_ollama_template(*go)));
      templates::OllamaPromptInput in;
      in.prompt = spec.prompt;
      in.suffix = spec.suffix;
      HEARTH_ASSIGN_OR_RETURN(out.text, template_error(templates::render_ollama(t, in)));
      out.tokens = tokenize(tok, out.text);
      return out;
    }
    const auto& sp = tok.special();
    if (sp.fim_pre < 0 || sp.fim_suf < 0 || sp.fim_mid < 0) {
      return invalid_argument("\"" + model.name.display() + "\" does not support insert");
    }
    if (tok.add_bos() && sp.bos >= 0) out.tokens.push_back(sp.bos);
    out.tokens.push_back(sp.fim_pre);
    auto p = tok.encode(spec.prompt, false, false);
    out.tokens.insert(out.tokens.end(), p.begin(), p.end());
    out.tokens.push_back(sp.fim_suf);
    auto s = tok.encode(spec.suffix, false, false);
    out.tokens.insert(out.tokens.end(), s.begin(), s.end());
    out.tokens.push_back(sp.fim_mid);
    return out;
  }

  templates::ChatInput in;
  if (spec.kind == PromptSpec::Kind::kChat) {
    ojson msgs = normalise_messages(spec.messages);
    ojson all = ojson::array();
    // Modelfile SYSTEM, unless the conversation brings its own; then Modelfile MESSAGEs.
    const bool has_system = !msgs.empty() && msgs[0].value("role", "") == "system";
    if (model.system && !has_system)
      all.push_back({{"role", "system"}, {"content", *model.system}});
    for (const auto& m : model.messages) all.push_back(m);
    for (auto& m : msgs) all.push_back(std::move(m));
    in.messages = std::move(all);
    if (spec.tools && spec.tools->is_array() && !spec.tools->empty()) in.tools = spec.tools;
  } else {
    const std::optional<std::string>& sys = spec.system ? spec.system : model.system;
    if (sys && !sys->empty()) in.messages.push_back({{"role", "system"}, {"content", *sys}});
    in.messages.push_back({{"role", "user"}, {"content", spec.prompt}});
  }
  if (spec.think) in.vars["enable_thinking"] = *spec.think;
  in.add_generation_prompt = true;
  HEARTH_ASSIGN_OR_RETURN(out.text, template_error(templates::render_chat_prompt(mt, in)));
  std::string text = out.text;
  if (!spec.context.empty()) text = tok.decode(spec.context) + text;
  out.tokens = tokenize(tok, text);
  return out;
}

int shorten_prompt(std::vector<int32_t>& tokens, int n_ctx, int num_keep) {
  const int n = int(tokens.size());
  if (n < n_ctx) return 0;
  const int keep = std::clamp(num_keep, 0, n_ctx / 2);
  const int tail = std::max(1, (n_ctx - keep) / 2);
  std::vector<int32_t> out(tokens.begin(), tokens.begin() + keep);
  out.insert(out.end(), tokens.end() - tail, tokens.end());
  const int dropped = n - int(out.size());
  tokens = std::move(out);
  return dropped;
}

}  // namespace hearth::runtime
