// runtime/speculative.h — draft tokens for speculative decoding.
//
// A generating sequence can put its pending token plus k guessed ("draft") tokens into one forward
// pass of the target model and keep the guesses the target agrees with: several tokens for about
// the cost of one pass where decoding is bound by reading the weights. The guesses come from
//  * prompt lookup: the tokens that followed the latest earlier occurrence of the sequence's last
//    n tokens (input-grounded tasks — editing a file, answering from a document — copy spans of
//    their input), or
//  * a draft model: a smaller model with the same vocabulary, run greedily, one sequence per slot
//    of the target, its cache kept in step with the accepted tokens.
// Both drafters are deterministic (a draft token is a point mass q = 1), so the runner verifies by
// sampling each position from the target exactly as without speculation and accepting the draft
// token when the draw equals it: that accepts x with probability p(x) and, on rejection, leaves a
// draw from p without x renormalised — the speculative-sampling rule for a one-hot q. The output
// is therefore the same as without speculation, token for token with the same seed (given the
// same logits; see runner.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "gguf/gguf.h"
#include "models/model.h"

namespace hearth::runtime {

// Prompt lookup: finds the latest earlier occurrence of the last n tokens of `seq` (n from
// ngram_max down to ngram_min) and writes up to k of the tokens that followed it to `out`.
// Returns how many (0: no match). No allocation.
int lookup_draft(std::span<const int32_t> seq, int k, int ngram_min, int ngram_max, int32_t* out);

// A draft model: its own weights (on the target's thread pool) and context, one sequence per
// target slot. Greedy (argmax of its logits), so its proposals are deterministic.
class DraftModel {
 public:
  // `n_vocab` is the target's: the draft must have the same vocabulary size.
  static Result<std::unique_ptr<DraftModel>> load(const std::string& path, ThreadPool& pool,
                                                  int n_seq, int n_batch, int64_t n_vocab);

  struct Request {
    int seq = 0;                       // the slot
    std::span<const int32_t> history;  // the sequence so far (prompt + output, pending token)
    int n_ctx = 0;                     // the slot's window (the draft reserves as much)
    int k = 0;                         // tokens wanted
    int32_t* out = nullptr;            // k tokens
    int n_out = 0;                     // written
    size_t fed = 0;                    // scratch
    int row = -1;                      // scratch
  };
  // Brings each sequence's cache to its history (rolling back what is no longer there: positions
  // are simply overwritten) and proposes k tokens for each, all sequences batched together.
  Status draft(std::span<Request> reqs);
  // Forgets what slot `seq` holds (a new request starts there).
  void reset(int seq) { cached_[size_t(seq)].clear(); }
  int64_t file_bytes() const { return int64_t(file_->file_size()); }
  const std::string& path() const { return path_; }

 private:
  DraftModel() = default;
  Status forward(std::span<Request> reqs);

  std::string path_;
  std::shared_ptr<gguf::GgufFile> file_;
  std::unique_ptr<models::Model> model_;
  std::unique_ptr<models::Context> ctx_;
  std::vector<std::vector<int32_t>> cached_;  // per sequence: tokens whose K/V the cache holds
  std::vector<models::BatchToken> batch_;
  std::vector<float> logits_;
  int64_t n_vocab_ = 0;
};

}  // namespace hearth::runtime
