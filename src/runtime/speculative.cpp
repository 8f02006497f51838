#include "runtime/speculative.h"

#include <algorithm>

namespace hearth::runtime {

int lookup_draft(std::span<const int32_t> seq, int k, int ngram_min, int ngram_max, int32_t* out) {
  const size_t L = seq.size();
  if (k <= 0) return 0;
  for (int n = ngram_max; n >= std::max(1, ngram_min); --n) {
    if (L < size_t(n) + 1) continue;
    const int32_t* tail = seq.data() + (L - size_t(n));
    // Latest first: the most recent context is the likeliest to continue the same way.
    for (size_t i = L - size_t(n); i-- > 0;) {
      if (seq[i] != tail[0] || !std::equal(tail, tail + n, seq.data() + i)) continue;
      const size_t from = i + size_t(n);  // < L: the match ends before the tail does
      const int m = int(std::min(size_t(k), L - from));
      std::copy(seq.data() + from, seq.data() + from + m, out);
      return m;
    }
  }
  return 0;
}

Result<std::unique_ptr<DraftModel>> DraftModel::load(const std::string& path, ThreadPool& pool,
                                                     int n_seq, int n_batch, int64_t n_vocab) {
  auto d = std::unique_ptr<DraftModel>(new DraftModel());
  d->path_ = path;
  HEARTH_ASSIGN_OR_RETURN(d->file_, gguf::GgufFile::open(path));
  HEARTH_ASSIGN_OR_RETURN(d->model_, models::load_model(d->file_, pool));
  const auto& cfg = d->model_->config();
  if (!cfg.causal) return invalid_argument("draft model " + path + " does not generate");
  if (cfg.n_vocab != n_vocab)
    return invalid_argument("draft model " + path + " has a vocabulary of " +
                            std::to_string(cfg.n_vocab) + " tokens, the model " +
                            std::to_string(n_vocab));
  models::ContextParams cp;
  cp.n_ctx = 16;  // each sequence grows to its request's window when first used
  cp.n_seq = n_seq;
  cp.n_batch = std::max(n_batch, n_seq);
  HEARTH_ASSIGN_OR_RETURN(d->ctx_, d->model_->new_context(cp, pool));
  // Drafts are rolled back after every verification; recurrent state cannot be.
  if (d->ctx_->reusable_prefix(0, 2, 1) != 1)
    return invalid_argument("draft model " + path +
                            " has recurrent layers, whose state cannot be rolled back");
  d->n_vocab_ = n_vocab;
  d->cached_.resize(size_t(n_seq));
  d->batch_.reserve(size_t(cp.n_batch));
  d->logits_.resize(size_t(n_seq) * size_t(n_vocab));
  return d;
}

// Evaluates batch_ and appends each request's greedy token where it asked for one (row >= 0).
Status DraftModel::forward(std::span<Request> reqs) {
  HEARTH_RETURN_IF_ERROR(model_->forward(*ctx_, batch_, logits_.data()));
  for (auto& r : reqs)
    if (r.row >= 0) {
      const float* l = logits_.data() + int64_t(r.row) * n_vocab_;
      r.out[r.n_out++] = int32_t(std::max_element(l, l + n_vocab_) - l);  // lowest id on ties
      r.row = -1;
    }
  return Status::ok();
}

Status DraftModel::draft(std::span<Request> reqs) {
  const int n_batch = ctx_->params().n_batch;
  // Catch up: roll each sequence back to what it shares with its history, then feed the rest
  // (at least the last token, whose logits give the first draft token), in chunks of n_batch.
  for (auto& r : reqs) {
    r.n_out = 0;
    r.row = -1;
    auto& c = cached_[size_t(r.seq)];
    if (r.k <= 0 || r.history.empty()) {
      r.fed = r.history.size();
      continue;
    }
    if (ctx_->seq_capacity(r.seq) < r.n_ctx) {
      HEARTH_RETURN_IF_ERROR(ctx_->reserve_sequence(r.seq, r.n_ctx));
      c.clear();
    }
    size_t keep = 0;
    const size_t n = std::min(c.size(), r.history.size() - 1);
    while (keep < n && c[keep] == r.history[keep]) ++keep;
    keep = size_t(ctx_->reusable_prefix(r.seq, int64_t(c.size()), int64_t(keep)));
    c.resize(keep);
    r.fed = keep;
  }
  for (;;) {
    batch_.clear();
    int rows = 0;
    for (auto& r : reqs) {
      if (r.fed >= r.history.size()) continue;
      const size_t take =
          std::min(size_t(std::max(0, n_batch - int(batch_.size()))), r.history.size() - r.fed);
      if (take == 0) break;
      auto& c = cached_[size_t(r.seq)];
      for (size_t i = 0; i < take; ++i) {
        const size_t p = r.fed + i;
        const bool last = p + 1 == r.history.size();
        batch_.push_back({r.history[p], int32_t(p), int32_t(r.seq), last});
        c.push_back(r.history[p]);
        if (last) r.row = rows++;
      }
      r.fed += take;
    }
    if (batch_.empty()) break;
    HEARTH_RETURN_IF_ERROR(forward(reqs));
  }
  // Then one token per step for every sequence that wants more.
  for (;;) {
    batch_.clear();
    int rows = 0;
    for (auto& r : reqs) {
      if (r.n_out == 0 || r.n_out >= r.k) continue;
      auto& c = cached_[size_t(r.seq)];
      if (int(c.size()) + 1 >= ctx_->seq_capacity(r.seq)) continue;  // the window is full
      const int32_t t = r.out[r.n_out - 1];
      batch_.push_back({t, int32_t(c.size()), int32_t(r.seq), true});
      c.push_back(t);
      r.row = rows++;
    }
    if (batch_.empty()) break;
    HEARTH_RETURN_IF_ERROR(forward(reqs));
  }
  return Status::ok();
}

}  // namespace hearth::runtime
