// templates/jinja/jinja.h — a Jinja2 engine for chat templates (`tokenizer.chat_template`).
//
// Renders the language real chat templates use, byte-identical to @huggingface/jinja (what
// transformers' apply_chat_template is checked against): trim_blocks and lstrip_blocks on, as HF
// sets them. Data comes in as JSON (messages, tools, add_generation_prompt, bos_token, extra
// variables). A template that cannot be parsed or rendered is an error naming the line and the
// construct; nothing here may crash, hang or recurse without bound on hostile input: every render
// runs under a budget of steps and bytes (templates/budget.h) and a recursion limit.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"
#include "templates/budget.h"

namespace hearth::templates::jinja {

struct Options {
  bool trim_blocks = true;    // drop the first newline after a block tag
  bool lstrip_blocks = true;  // strip whitespace before a block tag at the start of a line
  // Budget limits of render(context); 0 takes Budget::for_input(the context's size).
  int64_t max_steps = 0;
  int64_t max_bytes = 0;
  int max_depth = 400;  // nested evaluation: macro recursion, deeply nested expressions
};

class Template {
 public:
  // Parses once; render may be called many times (thread-safe: rendering does not mutate).
  static Result<Template> parse(std::string_view source, const Options& opt = {});
  // `context` is a JSON object whose members become the template's global variables.
  Result<std::string> render(const nlohmann::ordered_json& context) const;
  // Renders spending from `budget` (left holding what was spent) instead of one made from
  // max_steps / max_bytes.
  Result<std::string> render(const nlohmann::ordered_json& context, Budget& budget) const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace hearth::templates::jinja
