#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>

namespace hearth::sampling {

Sampler::Sampler(const SamplerParams& p, int n_vocab) : p_(p), n_vocab_(n_vocab) {
  cand_.reserve(size_t(n_vocab));
  counts_.assign(size_t(n_vocab), 0);
  // repeat_last_n comes from a request: the window grows with the tokens seen (accept), and
  // distinct_ never holds more than n_vocab tokens.
  distinct_.reserve(size_t(p_.repeat_last_n > 0 ? std::min(p_.repeat_last_n, n_vocab) : n_vocab));
  reset();
}

void Sampler::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  distinct_.clear();
  window_pos_ = window_len_ = 0;
  seed_ = p_.seed >= 0 ? uint64_t(p_.seed) : std::random_device{}();
  rng_.seed(seed_);
}

void Sampler::accept(int32_t token) {
  if (token < 0 || token >= n_vocab_ || p_.repeat_last_n == 0) return;
  if (p_.repeat_last_n > 0) {
    if (window_len_ == size_t(p_.repeat_last_n)) {  // evict the oldest
      const int32_t old = window_[window_pos_];
      if (--counts_[size_t(old)] == 0)
        distinct_.erase(std::find(distinct_.begin(), distinct_.end(), old));
    } else if (++window_len_ > window_.size()) {
      window_.push_back(0);
    }
    window_[window_pos_] = token;
    window_pos_ = (window_pos_ + 1) % size_t(p_.repeat_last_n);
  }
  if (counts_[size_t(token)]++ == 0) distinct_.push_back(token);
}

// Deterministic across standard libraries: 53 random bits -> [0, 1).
double Sampler::uniform() {
  return double(rng_() >> 11) * (1.0 / 9007199254740992.0);
}

void Sampler::apply_penalties(std::vector<Candidate>& c) const {
  // c is still indexed by token id here.
  for (int32_t t : distinct_) {
    const int32_t n = counts_[size_t(t)];
    float& l = c[size_t(t)].logit;
    if (p_.repeat_penalty != 1.0f) l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    l -= float(n) * p_.frequency_penalty + (n > 0 ? p_.presence_penalty : 0.0f);
  }
}

void Sampler::softmax_sorted(std::vector<Candidate>& c) const {
  const float mx = c.front().logit;
  double sum = 0;
  for (auto& x : c) {
    x.p = std::exp(x.logit - mx);
    sum += x.p;
  }
  for (auto& x : c) x.p = float(x.p / sum);
}

bool Sampler::filter_top(TokenFilter& f, size_t k) {
  const auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  // The likeliest candidates first, in logit order, in chunks 8x larger each time: where the
  // grammar admits a fair share of the vocabulary, k allowed ones come early and this is all.
  const size_t n = cand_.size();
  size_t done = 0, n_ok = 0, chunk = std::max<size_t>(64, 2 * k);
  for (int round = 0; round < 3 && done < n && n_ok < k; ++round, chunk *= 8) {
    const size_t end = std::min(n, done + chunk);
    if (end < n)
      std::nth_element(cand_.begin() + long(done), cand_.begin() + long(end), cand_.end(),
                       by_logit);
    std::sort(cand_.begin() + long(done), cand_.begin() + long(end), by_logit);
    for (size_t i = done; i < end && n_ok < k; ++i)
      if (f.allowed(cand_[i].id)) std::swap(cand_[n_ok++], cand_[i]);
    done = end;
  }
  if (n_ok < k && done < n) {
    // A narrow point: one pass over the rest collects every allowed token, then the top k of
    // those (exact: top-k of the allowed set), instead of sorting the whole vocabulary.
    for (size_t i = done; i < n; ++i)
      if (f.allowed(cand_[i].id)) std::swap(cand_[n_ok++], cand_[i]);
    if (n_ok > k) {
      std::nth_element(cand_.begin(), cand_.begin() + long(k), cand_.begin() + long(n_ok),
                       by_logit);
      n_ok = k;
    }
    std::sort(cand_.begin(), cand_.begin() + long(n_ok), by_logit);
  }
  cand_.resize(n_ok);
  return n_ok > 0;
}

int32_t Sampler::sample(const float* logits, TokenFilter* filter) {
  cand_.clear();
  for (int32_t i = 0; i < n_vocab_; ++i) cand_.push_back({i, logits[i], 0.0f, 0.0f});
  apply_penalties(cand_);

  if (filter) {
    // The allowed candidates in logit order: one when greedy, else top-k of them (all if off).
    const size_t k = p_.temperature <= 0 ? 1
                     : p_.top_k > 0      ? size_t(std::max(p_.top_k, p_.min_keep))
                                         : cand_.size();
    if (!filter_top(*filter, k)) return -1;
    if (p_.temperature <= 0) {
      cand_.front().p = 1.0f;
      cand_.resize(1);
      return cand_.front().id;
    }
  }

  if (p_.temperature <= 0) {  // greedy: lowest id wins ties
    int32_t best = 0;
    for (int32_t i = 1; i < n_vocab_; ++i)
      if (cand_[size_t(i)].logit > cand_[size_t(best)].logit) best = i;
    const Candidate b = cand_[size_t(best)];
    cand_.assign(1, {b.id, b.logit, 1.0f, 0.0f});
    return best;
  }

  const auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  const size_t keep_min = size_t(std::max(1, p_.min_keep));

  // top-k: partial selection, then sort the survivors (a filter has done both).
  size_t k = p_.top_k > 0 ? std::min(size_t(p_.top_k), cand_.size()) : cand_.size();
  if (filter) k = cand_.size();
  k = std::max(k, std::min(keep_min, cand_.size()));
  if (k < cand_.size()) {
    std::nth_element(cand_.begin(), cand_.begin() + long(k), cand_.end(), by_logit);
    cand_.resize(k);
  }
  std::sort(cand_.begin(), cand_.end(), by_logit);

  // typical-p: keep the tokens whose surprise is closest to the entropy.
  if (p_.typical_p < 1.0f && cand_.size() > keep_min) {
    softmax_sorted(cand_);
    double H = 0;
    for (const auto& x : cand_)
      if (x.p > 0) H -= double(x.p) * std::log(double(x.p));
    std::vector<Candidate>& c = cand_;
    for (auto& x : c) x.key = float(std::fabs(-std::log(double(x.p)) - H));
    std::sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
      return a.key < b.key || (a.key == b.key && a.id < b.id);
    });
    double cum = 0;
    size_t last = c.size();
    for (size_t i = 0; i < c.size(); ++i) {
      cum += c[i].p;
      if (cum > p_.typical_p && i + 1 >= keep_min) {
        last = i + 1;
        break;
      }
    }
    c.resize(last);
    std::sort(c.begin(), c.end(), by_logit);
  }

  // top-p: the smallest prefix whose probability reaches p.
  if (p_.top_p < 1.0f && cand_.size() > keep_min) {
    softmax_sorted(cand_);
    double cum = 0;
    size_t last = cand_.size();
    for (size_t i = 0; i < cand_.size(); ++i) {
      cum += cand_[i].p;
      if (cum >= p_.top_p && i + 1 >= keep_min) {
        last = i + 1;
        break;
      }
    }
    cand_.resize(last);
  }

  // min-p: drop tokens less likely than min_p times the most likely one.
  if (p_.min_p > 0.0f && cand_.size() > keep_min) {
    const float threshold = cand_.front().logit + std::log(p_.min_p);
    size_t last = cand_.size();
    for (size_t i = keep_min; i < cand_.size(); ++i)
      if (cand_[i].logit < threshold) {
        last = i;
        break;
      }
    cand_.resize(last);
  }

  for (auto& x : cand_) x.logit /= p_.temperature;
  softmax_sorted(cand_);
  const double u = uniform();
  double cum = 0;
  for (const auto& x : cand_) {
    cum += x.p;
    if (u < cum) return x.id;
  }
  return cand_.back().id;  // rounding left u beyond the last cumulative sum
}

}  // namespace hearth::sampling
