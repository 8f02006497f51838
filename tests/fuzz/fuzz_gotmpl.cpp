// libFuzzer target: the Go template engine and Ollama's prompt rendering on arbitrary templates.
#include <cstddef>
#include <cstdint>
#include <string>

#include "templates/ollama_prompt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string src(reinterpret_cast<const char*>(data), size);
  auto t = hearth::templates::parse_ollama_template(src);
  if (!t.is_ok()) return 0;
  static const auto msgs = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
    {"role": "tool", "content": "42"}, {"role": "user", "content": "more"}])");
  static const auto tools = nlohmann::ordered_json::parse(
      R"([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}}}])");
  hearth::templates::OllamaPromptInput in;
  in.messages = msgs;
  in.tools = tools;
  // Small budgets keep every input fast (hostile seeds in corpus/gotmpl would otherwise run to
  // the server's limits, seconds each); what is checked is that overrunning them is a clean error.
  auto small = [] {
    hearth::templates::Budget b;
    b.max_steps = 200'000;
    b.max_bytes = int64_t(4) << 20;
    return b;
  };
  auto b = small();
  auto r = hearth::templates::render_ollama(*t, in, &b);
  (void)r;
  in.prompt = "p";
  in.suffix = "s";
  b = small();
  r = hearth::templates::render_ollama(*t, in, &b);
  (void)r;
  return 0;
}
