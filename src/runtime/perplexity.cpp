#include "runtime/perplexity.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

namespace hearth::runtime {
namespace {

constexpr char kMagic[8] = {'H', 'P', 'P', 'L', 'B', 'A', 'S', 'E'};

struct BaseHeader {
  char magic[8];
  uint64_t n_vocab, n_ctx, n_scored, text_hash;
};

uint64_t hash_tokens(const std::vector<int32_t>& t) {  // FNV-1a over the token ids
  uint64_t h = 1469598103934665603ull;
  for (int32_t x : t) {
    h ^= uint64_t(uint32_t(x));
    h *= 1099511628211ull;
  }
  return h;
}

// log-softmax of one row, in place; returns the index of the largest logit.
int64_t log_softmax(float* row, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (row[i] > row[best]) best = i;
  const double mx = row[best];
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(double(row[i]) - mx);
  const float lse = float(mx + std::log(sum));
  for (int64_t i = 0; i < n; ++i) row[i] -= lse;
  return best;
}

}  // namespace

Result<PerplexityResult> perplexity(Engine& e, const tokenizer::Tokenizer& tok,
                                    const std::string& text, const PerplexityOptions& o,
                                    const std::function<void(int, int, double)>& progress) {
  if (o.n_ctx < 8) return invalid_argument("[perplexity] the context must be at least 8 tokens");
  if (!o.save_base.empty() && !o.kl_base.empty())
    return invalid_argument("[perplexity] save a reference or compare with one, not both");
  const std::vector<int32_t> all = tok.encode(text, false, false);
  int chunks = int(all.size() / size_t(o.n_ctx));
  if (o.max_chunks > 0) chunks = std::min(chunks, o.max_chunks);
  if (chunks <= 0)
    return invalid_argument("[perplexity] the text has " + std::to_string(all.size()) +
                            " tokens, fewer than one chunk of " + std::to_string(o.n_ctx));
  const std::vector<int32_t> used(all.begin(), all.begin() + long(chunks) * o.n_ctx);
  const int64_t nv = e.model().config().n_vocab;
  const int first = o.n_ctx / 2;
  const int64_t per_chunk = o.n_ctx - 1 - first;
  BaseHeader h{};
  std::memcpy(h.magic, kMagic, 8);
  h.n_vocab = uint64_t(nv);
  h.n_ctx = uint64_t(o.n_ctx);
  h.n_scored = uint64_t(chunks) * uint64_t(per_chunk);
  h.text_hash = hash_tokens(used);

  std::ofstream save;
  std::ifstream base;
  if (!o.save_base.empty()) {
    save.open(o.save_base, std::ios::binary | std::ios::trunc);
    if (!save) return invalid_argument("[perplexity] cannot write " + o.save_base);
    save.write(reinterpret_cast<const char*>(&h), sizeof h);
  }
  if (!o.kl_base.empty()) {
    base.open(o.kl_base, std::ios::binary);
    BaseHeader b{};
    if (!base || !base.read(reinterpret_cast<char*>(&b), sizeof b) ||
        std::memcmp(b.magic, kMagic, 8) != 0)
      return invalid_argument("[perplexity] " + o.kl_base +
                              " is not a reference written by "
                              "--save-base");
    if (b.n_vocab != h.n_vocab || b.n_ctx != h.n_ctx || b.text_hash != h.text_hash ||
        b.n_scored != h.n_scored)
      return invalid_argument("[perplexity] the reference " + o.kl_base +
                              " was made for another text, context size or vocabulary");
  }

  models::ContextParams cp;
  cp.n_ctx = o.n_ctx;
  cp.n_batch = std::min(o.n_ctx, 512);
  cp.kv_type = o.kv_type;
  HEARTH_ASSIGN_OR_RETURN(auto sess, Session::create(e, cp));
  std::vector<float> logits(size_t(o.n_ctx) * size_t(nv));
  std::vector<float> ref(static_cast<size_t>(nv));
  PerplexityResult r;
  double nll = 0, nll2 = 0, kl = 0, kl2 = 0;
  int64_t same = 0;
  std::vector<int32_t> chunk(size_t(o.n_ctx));
  for (int c = 0; c < chunks; ++c) {
    std::copy(used.begin() + long(c) * o.n_ctx, used.begin() + long(c + 1) * o.n_ctx,
              chunk.begin());
    if (tok.add_bos() && tok.special().bos >= 0) chunk[0] = tok.special().bos;
    sess->truncate(0);
    HEARTH_RETURN_IF_ERROR(sess->eval(chunk, true, logits.data()));
    for (int j = first; j < o.n_ctx - 1; ++j) {
      float* row = logits.data() + size_t(j) * size_t(nv);
      const int64_t top = log_softmax(row, nv);
      const double lp = row[chunk[size_t(j) + 1]];
      nll -= lp;
      nll2 += lp * lp;
      if (save) save.write(reinterpret_cast<const char*>(row), std::streamsize(nv * 4));
      if (base.is_open()) {
        if (!base.read(reinterpret_cast<char*>(ref.data()), std::streamsize(nv * 4)))
          return corrupt("[perplexity] the reference " + o.kl_base + " is truncated");
        double d = 0;
        int64_t ref_top = 0;
        for (int64_t i = 0; i < nv; ++i) {
          d += std::exp(double(ref[size_t(i)])) * (double(ref[size_t(i)]) - row[i]);
          if (ref[size_t(i)] > ref[size_t(ref_top)]) ref_top = i;
        }
        kl += d;
        kl2 += d * d;
        r.kl_max = std::max(r.kl_max, d);
        same += ref_top == top;
      }
      ++r.scored;
    }
    r.chunks = c + 1;
    if (progress) progress(c + 1, chunks, std::exp(nll / double(r.scored)));
  }
  const double n = double(r.scored);
  r.nll = nll / n;
  r.nll_stderr = std::sqrt(std::max(0.0, nll2 / n - r.nll * r.nll) / std::max(1.0, n - 1));
  r.ppl = std::exp(r.nll);
  r.ppl_stderr = r.ppl * r.nll_stderr;
  if (base.is_open()) {
    r.has_kl = true;
    r.kl = kl / n;
    r.kl_stderr = std::sqrt(std::max(0.0, kl2 / n - r.kl * r.kl) / std::max(1.0, n - 1));
    r.same_top = double(same) / n;
  }
  if (save && !save.flush())
    return internal_error("[perplexity] writing " + o.save_base + " failed");
  return r;
}

}  // namespace hearth::runtime
