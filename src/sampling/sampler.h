// sampling/sampler.h — turning logits into the next token.
//
// The chain follows llama.cpp's order: repetition penalties -> top-k -> typical-p -> top-p ->
// min-p -> temperature -> seeded draw from the softmax. A temperature <= 0 is greedy (argmax of
// the penalised logits, lowest id on ties). Defaults are Ollama's (api/types.go). All buffers are
// sized at construction; sample() does not allocate.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace hearth::sampling {

struct SamplerParams {
  float temperature = 0.8f;     // Ollama default
  int top_k = 40;               // <= 0: whole vocabulary
  float top_p = 0.9f;           // Ollama default (llama.cpp: 0.95); >= 1: off
  float min_p = 0.0f;           // Ollama default; 0: off
  float typical_p = 1.0f;       // >= 1: off
  float repeat_penalty = 1.1f;  // Ollama default; 1: off
  int repeat_last_n = 64;       // window of accepted tokens; 0: off; -1: everything accepted
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int64_t seed = -1;  // < 0: a random seed per sampler
  int min_keep = 1;   // truncating samplers keep at least this many candidates
};

// A constraint on the next token (a grammar). The sampler asks only about candidates in logit
// order, after the penalties, until it has top_k allowed ones (or one, when greedy): exact for the
// chain, because top-k comes first, and cheap, because the likeliest tokens are asked first.
class TokenFilter {
 public:
  virtual ~TokenFilter() = default;
  virtual bool allowed(int32_t token) = 0;
  // Optionally, every token allowed() might accept (a superset, each id once), so a pass over
  // "all the rest" need not ask about the whole vocabulary; false if not known.
  virtual bool candidates(std::vector<int32_t>& out) {
    (void)out;
    return false;
  }
};

class Sampler {
 public:
  Sampler(const SamplerParams& p, int n_vocab);

  // Picks the next token from raw logits (n_vocab floats; not modified). With a filter, only
  // tokens it allows; -1 if it allows none.
  int32_t sample(const float* logits, TokenFilter* filter = nullptr);
  // Records a token as part of the sequence (for penalties).
  void accept(int32_t token);
  // Forgets the accepted history and reseeds.
  void reset();

  const SamplerParams& params() const { return p_; }
  uint64_t seed() const { return seed_; }

  // The candidates left after the last sample(), with probabilities (debugging, logprobs).
  struct Candidate {
    int32_t id;
    float logit;
    float p;
    float key = 0;  // scratch for typical-p
  };
  const std::vector<Candidate>& last_candidates() const { return cand_; }

 private:
  void apply_penalties(float* logits) const;
  void softmax_sorted(std::vector<Candidate>& c) const;  // c sorted by logit desc
  // cand_ = the k best of `logits` in chain order.
  void select_top(const float* logits, size_t k);
  // cand_ = the first `want` tokens the filter allows, in chain order; false if none.
  bool filter_top(const float* logits, TokenFilter& f, size_t want);
  double uniform();

  SamplerParams p_;
  int n_vocab_;
  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  std::vector<Candidate> cand_, ok_;
  std::vector<float> scratch_;     // penalised logits
  std::vector<int32_t> superset_;  // a filter's candidate tokens
  std::vector<int32_t> counts_;    // occurrences of each token in the window
  std::vector<int32_t> window_;    // ring buffer of the last repeat_last_n tokens
  size_t window_pos_ = 0, window_len_ = 0;
  std::vector<int32_t> distinct_;  // tokens with counts_ > 0 (penalty loop)
};

}  // namespace hearth::sampling
