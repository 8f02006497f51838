// runtime/prompt.h — a request (chat, generate, fill-in-the-middle, raw) to prompt tokens, the
// way Ollama builds them: Modelfile MESSAGEs and SYSTEM prepended, the model's TEMPLATE (Go) or
// else its GGUF Jinja template, FIM through the template's .Suffix or the model's FIM tokens, and
// an over-long prompt shortened from the middle.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/scheduler.h"
#include "templates/chat.h"
#include "tokenizer/tokenizer.h"

namespace hearth::runtime {

struct BuiltPrompt {
  std::string text;  // rendered (empty when built from FIM tokens)
  std::vector<int32_t> tokens;
};

// `gguf_jinja`: the GGUF's chat template, if any. Errors: InvalidArgument for requests the model
// cannot serve, Corrupt for templates that fail.
Result<BuiltPrompt> build_prompt(const PromptSpec& spec, const store::ModelRecord& model,
                                 const std::optional<templates::JinjaChatTemplate>& gguf_jinja,
                                 const tokenizer::Tokenizer& tok);

// Keeps the first `num_keep` tokens and the most recent ones so that the prompt fills at most
// half of n_ctx after the kept head (llama.cpp's and Ollama's rule); returns how many tokens were
// dropped (0 if the prompt fits).
int shorten_prompt(std::vector<int32_t>& tokens, int n_ctx, int num_keep);

}  // namespace hearth::runtime
