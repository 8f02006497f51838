#include "parsers/format.h"

#include <array>
#include <cctype>

namespace hearth::parsers {
namespace {

Format make(std::string name, std::string think_open, std::string think_close, CallSyntax syntax,
            std::string call_open, std::string call_close) {
  Format f;
  f.name = std::move(name);
  f.think_open = std::move(think_open);
  f.think_close = std::move(think_close);
  f.syntax = syntax;
  f.call_open = std::move(call_open);
  f.call_close = std::move(call_close);
  return f;
}

const std::vector<Format>& table() {
  static const std::vector<Format> formats = [] {
    std::vector<Format> v;
    Format hermes = make("qwen3", "<think>", "</think>", CallSyntax::kHermesJson, "<tool_call>",
                         "</tool_call>");
    hermes.call_ends_thinking = true;
    v.push_back(hermes);
    hermes.name = "qwen3-thinking";
    v.push_back(hermes);
    hermes.name = "hermes";
    v.push_back(hermes);
    Format qxml =
        make("qwen3.5", "<think>", "</think>", CallSyntax::kQwenXml, "<tool_call>", "</tool_call>");
    qxml.call_ends_thinking = true;
    v.push_back(qxml);
    qxml.name = "qwen3-coder";
    v.push_back(qxml);
    Format g4 = make("gemma4", "<|channel>", "<channel|>", CallSyntax::kGemma4, "<|tool_call>",
                     "<tool_call|>");
    g4.think_label = "thought";
    g4.call_ends_thinking = true;
    g4.after_call = {"<tool_call|>", "<|tool_response>"};
    g4.extra_stops = {"<|tool_response>"};
    v.push_back(g4);
    Format l3 = make("llama3", "", "", CallSyntax::kLlamaJson, "<|python_tag|>", "");
    l3.extra_stops = {"<|eom_id|>"};
    v.push_back(l3);
    l3.name = "llama3-json";
    v.push_back(l3);
    v.push_back(make("llama4", "", "", CallSyntax::kPythonic, "<|python_start|>", ""));
    v.push_back(make("pythonic", "", "", CallSyntax::kPythonic, "", ""));
    Format ds = make("deepseek", "<think>", "</think>", CallSyntax::kDeepSeek,
                     "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>");
    ds.call_ends_thinking = true;
    v.push_back(ds);
    v.push_back(make("mistral", "[THINK]", "[/THINK]", CallSyntax::kMistral, "[TOOL_CALLS]", ""));
    v.push_back(make("none", "", "", CallSyntax::kNone, "", ""));
    return v;
  }();
  return formats;
}

bool contains(std::string_view s, std::string_view x) {
  return s.find(x) != std::string_view::npos;
}

}  // namespace

std::vector<std::string> Format::markers() const {
  std::vector<std::string> m;
  for (const std::string* s : {&think_open, &think_close, &call_open, &call_close})
    if (!s->empty()) m.push_back(*s);
  for (const auto& s : after_call) m.push_back(s);
  return m;
}

const Format* format_by_name(std::string_view name) {
  std::string n(name);
  for (auto& c : n) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (n == "qwen3.6" || n == "qwen35") n = "qwen3.5";
  if (n == "llama3.1" || n == "llama3.2" || n == "llama3.3") n = "llama3";
  for (const auto& f : table())
    if (f.name == n) return &f;
  return nullptr;
}

Format select_format(std::string_view parser, std::string_view arch, std::string_view tmpl) {
  if (!parser.empty())
    if (const Format* f = format_by_name(parser)) return *f;
  // Templates that name a format by its markers win over the architecture: distills and
  // fine-tunes (DeepSeek-R1 on qwen2/llama, Mistral on llama) keep the base architecture.
  if (contains(tmpl, "<｜tool▁calls▁begin｜>") || contains(tmpl, "tool▁calls▁begin"))
    return *format_by_name("deepseek");
  if (contains(tmpl, "[TOOL_CALLS]")) return *format_by_name("mistral");
  if (contains(tmpl, "<|tool_call>") || contains(tmpl, "'<|tool_call>call:'"))
    return *format_by_name("gemma4");
  if (contains(tmpl, "<function=") && contains(tmpl, "<parameter="))
    return *format_by_name("qwen3.5");
  if (contains(tmpl, "<tool_call>")) return *format_by_name("qwen3");
  if (arch == "qwen35" || arch == "qwen35moe") return *format_by_name("qwen3.5");
  if (arch == "gemma4") return *format_by_name("gemma4");
  if (arch == "qwen3" || arch == "qwen3moe" || arch == "qwen2") {
    // A template without tool markup still thinks with <think> (Qwen3) or not at all.
    Format f = *format_by_name("qwen3");
    if (!tmpl.empty() && !contains(tmpl, "think")) f.think_open = f.think_close = "";
    return f;
  }
  if (arch == "llama4" || contains(tmpl, "<|python_start|>")) return *format_by_name("llama4");
  if (arch == "llama" && (contains(tmpl, "<|python_tag|>") || contains(tmpl, "\"parameters\"")))
    return *format_by_name("llama3");
  if (contains(tmpl, "<think>")) {
    Format f = *format_by_name("none");
    f.name = "think";
    f.think_open = "<think>";
    f.think_close = "</think>";
    return f;
  }
  // A template that shows tools in a syntax none of the above knows: the model most likely
  // answers with a bare JSON call, as Ollama's generic parser assumes.
  if (template_supports_tools(tmpl)) {
    Format f = *format_by_name("llama3-json");
    f.name = "json";
    return f;
  }
  return *format_by_name("none");
}

bool template_supports_tools(std::string_view tmpl) {
  return contains(tmpl, ".Tools") || contains(tmpl, "tools");
}

}  // namespace hearth::parsers
