// libFuzzer target: the Jinja engine on arbitrary templates. Whatever parses is rendered with a
// small chat context; errors are fine, crashes, hangs and unbounded memory are not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "templates/jinja/jinja.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view src(reinterpret_cast<const char*>(data), size);
  // Small budgets keep every input fast (hostile seeds in corpus/jinja would otherwise run to the
  // server's limits, seconds each); what is checked is that overrunning them is a clean error.
  hearth::templates::jinja::Options opt;
  opt.max_steps = 200'000;
  opt.max_bytes = int64_t(4) << 20;
  auto t = hearth::templates::jinja::Template::parse(src, opt);
  if (!t.is_ok()) return 0;
  static const auto ctx = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
                 {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
                  "function": {"name": "f", "arguments": {"a": 1}}}]},
                 {"role": "tool", "content": "42"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "enable_thinking": false})");
  auto r = t->render(ctx);
  (void)r;
  return 0;
}
