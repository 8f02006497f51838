// runtime/options.h — Ollama's request options (`options` in /api/generate and /api/chat,
// PARAMETER in Modelfiles) and keep_alive, turned into what a generation needs.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "sampling/sampler.h"

namespace hearth::runtime {

struct GenOptions {
  int num_ctx = 0;       // 0: the server's default
  int num_predict = -1;  // -1: until the context is full; -2: fill the context
  int num_keep = 4;      // tokens kept at the start when a prompt is shortened
  std::vector<std::string> stop;
  // Tokens a model may think before its thinking block is closed for it (with the format's own
  // closing marker), so it still answers. -1: automatic — half of num_predict when that is set,
  // 1024 when the answer is constrained (format, grammar, forced tool call), else unlimited.
  int thinking_budget = -1;
  // Per-token log probabilities of the model's distribution (log-softmax of the raw logits) for
  // the chosen token and the top_logprobs likeliest (0-20). Request fields, not options.
  bool logprobs = false;
  int top_logprobs = 0;
  // Speculative decoding (runtime/speculative.h): tokens drafted per step (Ollama's
  // draft_num_predict; -1: 4 when a drafter is on), and prompt-lookup drafting (hearth's
  // `lookup_decoding`; unset: the HEARTH_LOOKUP_DECODING environment variable, else off).
  int draft_num_predict = -1;
  std::optional<bool> lookup_decoding;
  sampling::SamplerParams sampler;  // Ollama's defaults (repeat_penalty 1.0 since 2026-08)
};

// Ollama's defaults, then the model's Modelfile parameters, then the request's options (each key
// replaces; `stop` lists are replaced, not merged). Unknown keys are ignored, as Ollama does;
// a known key with the wrong JSON type is an error naming it.
Result<GenOptions> merge_options(const nlohmann::ordered_json& model_params,
                                 const nlohmann::ordered_json& request_options);

// keep_alive as Ollama accepts it: a number of seconds or a Go duration string ("5m", "1h30m",
// "-1m", "0"). Negative means forever.
Result<std::chrono::nanoseconds> parse_keep_alive(const nlohmann::ordered_json& v);

}  // namespace hearth::runtime
