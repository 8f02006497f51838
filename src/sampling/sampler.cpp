#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>

namespace hearth::sampling {

Sampler::Sampler(const SamplerParams& p, int n_vocab) : p_(p), n_vocab_(n_vocab) {
  cand_.reserve(size_t(n_vocab));
  ok_.reserve(size_t(n_vocab));
  superset_.reserve(size_t(n_vocab));
  scratch_.resize(size_t(n_vocab));
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

void Sampler::apply_penalties(float* logits) const {
  for (int32_t t : distinct_) {
    const int32_t n = counts_[size_t(t)];
    float& l = logits[t];
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

namespace {

// The candidate order of the whole chain: higher logit first, lower id on ties.
// (A function object, so the heap and sort calls inline it.)
struct ByLogit {
  bool operator()(const Sampler::Candidate& a, const Sampler::Candidate& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};
constexpr ByLogit by_logit;

}  // namespace

// The k best tokens of `l`, sorted, in one pass: a heap of k whose worst member is the bar a
// token must clear. Scanning ids upwards, a tie with the bar ranks below it (higher id), so only
// a strictly larger logit gets in. With a 150k vocabulary this is ~10x faster than selecting
// from a full candidate list, which costs more than the grammar it serves.
void Sampler::select_top(const float* l, size_t k) {
  cand_.clear();
  k = std::min(k, size_t(n_vocab_));
  if (k == 0) return;
  int32_t i = 0;
  for (; i < n_vocab_ && cand_.size() < k; ++i) cand_.push_back({i, l[i], 0.0f, 0.0f});
  std::make_heap(cand_.begin(), cand_.end(), by_logit);
  float bar = cand_.front().logit;
  for (; i < n_vocab_; ++i) {
    if (!(l[i] > bar)) continue;
    std::pop_heap(cand_.begin(), cand_.end(), by_logit);
    cand_.back() = {i, l[i], 0.0f, 0.0f};
    std::push_heap(cand_.begin(), cand_.end(), by_logit);
    bar = cand_.front().logit;
  }
  std::sort(cand_.begin(), cand_.end(), by_logit);
}

// The first `want` tokens the filter allows, in chain order, into cand_; false if none. The
// likeliest are asked first, in rounds 8x larger each time: where the grammar admits a fair
// share of the vocabulary, `want` allowed ones come in the first round and this is all.
bool Sampler::filter_top(const float* l, TokenFilter& f, size_t want) {
  ok_.clear();
  const size_t n = size_t(n_vocab_);
  size_t done = 0;
  size_t k = std::max<size_t>(64, 2 * want);
  int have_superset = -1;  // unknown yet
  for (int round = 0; round < 3 && done < n && ok_.size() < want; ++round, k *= 8) {
    select_top(l, k);
    for (size_t i = done; i < cand_.size() && ok_.size() < want; ++i)
      if (f.allowed(cand_[i].id)) ok_.push_back(cand_[i]);
    done = cand_.size();
    if (ok_.size() >= want) break;
    // Few allowed among the likeliest: if the filter can name a small set that holds them all
    // (a narrow point of a grammar), asking about that set beats selecting ever more candidates.
    if (have_superset < 0) have_superset = f.candidates(superset_) ? 1 : 0;
    if (have_superset == 1 && superset_.size() <= n / 8) break;
  }
  if (ok_.size() < want && done < n) {
    // A narrow point: one pass over the rest keeps the best `need` allowed tokens in a heap (exact:
    // they all rank below the `done` already asked about). A token that would not make the heap's
    // cut is not asked about, so the filter walks only tokens that could still be chosen, not
    // every one of the vocabulary. The filter may name a superset of what it allows (the tokens
    // whose first byte fits), which is all that is asked.
    const Candidate bar = cand_.back();  // the last one asked about
    const size_t first = ok_.size();
    const size_t need = want - first;
    // ok_[first..] is a heap whose front is the worst kept (by_logit orders better first).
    auto consider = [&](int32_t i) {
      const Candidate c{i, l[i], 0.0f, 0.0f};
      if (!by_logit(bar, c)) return;  // ranked at or above the bar: asked already
      const bool full = ok_.size() - first == need;
      if (full && !by_logit(c, ok_[first])) return;  // would not make the cut
      if (!f.allowed(i)) return;
      if (full) {
        std::pop_heap(ok_.begin() + long(first), ok_.end(), by_logit);
        ok_.back() = c;
      } else {
        ok_.push_back(c);
      }
      std::push_heap(ok_.begin() + long(first), ok_.end(), by_logit);
    };
    if (have_superset < 0) have_superset = f.candidates(superset_) ? 1 : 0;
    if (have_superset == 1) {
      for (int32_t i : superset_) consider(i);
    } else {
      for (int32_t i = 0; i < n_vocab_; ++i) consider(i);
    }
    std::sort(ok_.begin() + long(first), ok_.end(), by_logit);
  }
  cand_.swap(ok_);
  return !cand_.empty();
}

int32_t Sampler::sample(const float* logits, TokenFilter* filter) {
  // The penalised logits: the raw ones, or a copy with the penalties applied.
  const float* l = logits;
  if (!distinct_.empty() &&
      (p_.repeat_penalty != 1.0f || p_.frequency_penalty != 0.0f || p_.presence_penalty != 0.0f)) {
    std::copy(logits, logits + n_vocab_, scratch_.begin());
    apply_penalties(scratch_.data());
    l = scratch_.data();
  }
  const bool greedy = p_.temperature <= 0;
  const size_t n = size_t(n_vocab_);
  const size_t keep_min = size_t(std::max(1, p_.min_keep));
  // top-k (with a filter: of the allowed tokens); a filter has sorted them too.
  size_t k = p_.top_k > 0 ? std::min(size_t(p_.top_k), n) : n;
  k = std::max(k, std::min(keep_min, n));
  if (filter) {
    if (!filter_top(l, *filter, greedy ? 1 : k)) return -1;
  } else if (greedy) {  // argmax, lowest id on ties
    int32_t best = 0;
    for (int32_t i = 1; i < n_vocab_; ++i)
      if (l[i] > l[best]) best = i;
    cand_.assign(1, {best, l[best], 1.0f, 0.0f});
    return best;
  } else if (k < n) {
    select_top(l, k);
  } else {
    cand_.clear();
    for (int32_t i = 0; i < n_vocab_; ++i) cand_.push_back({i, l[i], 0.0f, 0.0f});
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  if (greedy) {
    cand_.front().p = 1.0f;
    cand_.resize(1);
    return cand_.front().id;
  }

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
