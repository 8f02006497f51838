// runtime/perplexity.h — how well a model predicts a text (llama-perplexity's method), and how
// far a model's predictions are from a reference model's (KL divergence), for quant-loss tables.
//
// The text is cut into chunks of n_ctx tokens (the first becomes BOS when the tokenizer adds
// one); each chunk is evaluated from an empty cache and only its second half is scored, so every
// scored token has at least n_ctx/2 tokens of context — the numbers are comparable with
// llama.cpp's `llama-perplexity -c n_ctx`.
#pragma once

#include <functional>
#include <string>

#include "base/status.h"
#include "runtime/session.h"
#include "tokenizer/tokenizer.h"

namespace hearth::runtime {

struct PerplexityOptions {
  int n_ctx = 512;
  int max_chunks = 0;  // 0: all
  DType kv_type = DType::F16;
  // Writes the scored positions' log-probabilities here (the reference for a later KL run).
  std::string save_base;
  // Compares against a file written by save_base (same text, n_ctx and vocabulary).
  std::string kl_base;
};

struct PerplexityResult {
  int chunks = 0;
  int64_t scored = 0;
  double nll = 0, nll_stderr = 0;  // mean negative log-likelihood (nats) and its standard error
  double ppl = 0, ppl_stderr = 0;
  bool has_kl = false;
  double kl = 0, kl_stderr = 0, kl_max = 0;  // KL(reference || this model), nats per token
  double same_top = 0;  // share of positions whose most likely token equals the reference's
};

Result<PerplexityResult> perplexity(Engine& e, const tokenizer::Tokenizer& tok,
                                    const std::string& text, const PerplexityOptions& o,
                                    const std::function<void(int, int, double)>& progress = {});

}  // namespace hearth::runtime
