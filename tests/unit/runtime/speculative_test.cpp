// Speculative decoding (runtime/speculative.h, Runner::step): prompt lookup's matching, and
// through the scheduler on the shared fixtures: greedy and seeded sampled output with speculation
// (prompt lookup, the target as its own draft, a draft that mostly disagrees, several sequences in
// one runner, a sliding-window model whose KV ring wraps) equal the output without it token for
// token; the distribution of a verified token equals the target's, computed exactly (chi-square);
// recurrent (Qwen 3.5) models decode without speculation.
#include "runtime/speculative.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/scheduler.h"
#include "runtime/session.h"
#include "sampling/sampler.h"

namespace hearth::runtime {
namespace {

const std::string kFixtures = std::string(HEARTH_SHARED_DIR) + "/fixtures/";

TEST(Speculative, LookupDraftContinuesTheLatestMatch) {
  int32_t out[8];
  // "1 2 3 4 | 9 2 3 5 | 7 2 3": the last 2-gram (2 3) occurs at 1 and 5; the latest wins.
  const std::vector<int32_t> seq = {1, 2, 3, 4, 9, 2, 3, 5, 7, 2, 3};
  ASSERT_EQ(lookup_draft(seq, 3, 2, 4, out), 3);
  EXPECT_EQ(std::vector<int32_t>(out, out + 3), (std::vector<int32_t>{5, 7, 2}));
  // A longer n-gram is preferred: "7 2 3" matches nothing, "1 2 3 ... 9 2 3" with a 3-gram does.
  const std::vector<int32_t> seq2 = {1, 2, 3, 4, 9, 2, 3, 5, 1, 2, 3};
  ASSERT_EQ(lookup_draft(seq2, 4, 2, 4, out), 4);
  EXPECT_EQ(std::vector<int32_t>(out, out + 4), (std::vector<int32_t>{4, 9, 2, 3}));
  // The continuation is cut at the end of the sequence, and k bounds it.
  ASSERT_EQ(lookup_draft(std::vector<int32_t>{5, 6, 7, 5, 6}, 8, 2, 4, out), 3);
  EXPECT_EQ(std::vector<int32_t>(out, out + 3), (std::vector<int32_t>{7, 5, 6}));
  EXPECT_EQ(lookup_draft(std::vector<int32_t>{5, 6, 7, 5, 6}, 1, 2, 4, out), 1);
  // No match, a 1-gram below the minimum, too short, k = 0.
  EXPECT_EQ(lookup_draft(std::vector<int32_t>{1, 2, 3, 4}, 4, 2, 4, out), 0);
  EXPECT_EQ(lookup_draft(std::vector<int32_t>{1, 2, 3, 1}, 4, 2, 4, out), 0);
  EXPECT_EQ(lookup_draft(std::vector<int32_t>{1, 2, 3, 1}, 4, 1, 4, out), 3);
  EXPECT_EQ(lookup_draft(std::vector<int32_t>{7}, 4, 1, 4, out), 0);
  EXPECT_EQ(lookup_draft(std::vector<int32_t>{5, 6, 5, 6}, 0, 2, 4, out), 0);
}

// Collects one request's outcome.
class Collect final : public Sink {
 public:
  bool on_text(const std::string& piece) override {
    text += piece;
    return true;
  }
  void on_done(const Stats& s) override {
    std::lock_guard<std::mutex> lk(mu);
    stats = s;
    done = true;
    cv.notify_all();
  }
  void on_error(const Status& e) override {
    std::lock_guard<std::mutex> lk(mu);
    error = e.message();
    done = true;
    cv.notify_all();
  }
  bool cancelled() const override { return false; }
  void wait() {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return done; });
  }
  std::string text, error;
  Stats stats;

 private:
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
};

struct Req {
  std::string prompt;
  nlohmann::ordered_json options;
};

struct Out {
  std::vector<int32_t> tokens;  // generated (after the prompt)
  std::string text;
  int draft_count = 0, draft_accepted = 0;
};

Job make_job(const std::string& model, const std::string& draft, const Req& r) {
  Job j;
  j.model.model_path = kFixtures + model;
  j.model.draft_path = draft.empty() ? std::string() : kFixtures + draft;
  j.prompt.kind = PromptSpec::Kind::kGenerate;
  j.prompt.raw = true;
  j.prompt.prompt = r.prompt;
  auto o = merge_options(nlohmann::ordered_json::object(), r.options);
  EXPECT_TRUE(o.is_ok()) << o.status().message();
  if (o) j.opt = *o;
  return j;
}

SchedulerOptions sched_opts(int num_parallel, int n_batch) {
  SchedulerOptions so;
  so.num_parallel = num_parallel;
  so.n_threads = 1;
  so.n_batch = n_batch;
  so.default_ctx = 512;
  return so;
}

Out result(Collect& c) {
  c.wait();
  EXPECT_EQ(c.error, "");
  Out o;
  const auto& ctx = c.stats.context;
  const size_t n_gen = std::min(size_t(c.stats.eval_count), ctx.size());
  o.tokens.assign(ctx.end() - long(n_gen), ctx.end());
  o.text = c.text;
  o.draft_count = c.stats.draft_count;
  o.draft_accepted = c.stats.draft_accepted;
  return o;
}

// Runs the requests concurrently on one scheduler (num_parallel slots of one runner).
std::vector<Out> run(const std::string& model, const std::string& draft,
                     const std::vector<Req>& reqs, int num_parallel = 1, int n_batch = 512) {
  Scheduler sched(sched_opts(num_parallel, n_batch));
  std::vector<std::shared_ptr<Collect>> sinks;
  for (const auto& r : reqs) {
    Job j = make_job(model, draft, r);
    auto sink = std::make_shared<Collect>();
    j.sink = sink;
    sinks.push_back(sink);
    EXPECT_TRUE(sched.submit(std::move(j)).is_ok());
  }
  std::vector<Out> outs;
  for (auto& s : sinks) outs.push_back(result(*s));
  return outs;
}

// Prompts that repeat themselves (prompt lookup finds n-grams) and a plain one.
const std::vector<std::string> kPrompts = {
    "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog. "
    "The quick brown fox",
    "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\ndef mul(a, b):\n",
    "Once upon a time there was a small village by the sea, and",
};

nlohmann::ordered_json greedy(int n, bool lookup) {
  return {{"temperature", 0}, {"num_predict", n}, {"lookup_decoding", lookup}};
}

void expect_same(const std::vector<Out>& ref, const std::vector<Out>& spec, const char* what) {
  ASSERT_EQ(ref.size(), spec.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(ref[i].tokens, spec[i].tokens) << what << ", request " << i;
    EXPECT_EQ(ref[i].text, spec[i].text) << what << ", request " << i;
    EXPECT_EQ(ref[i].draft_count, 0);
  }
}

struct Tally {
  int drafted = 0, accepted = 0;
  void add(const std::vector<Out>& v) {
    for (const auto& o : v) {
      drafted += o.draft_count;
      accepted += o.draft_accepted;
    }
  }
};

TEST(Speculative, GreedyLookupEqualsPlainDecoding) {
  std::vector<Req> off, on;
  for (const auto& p : kPrompts) {
    off.push_back({p, greedy(64, false)});
    on.push_back({p, greedy(64, true)});
  }
  const auto ref = run("llama-F16.gguf", "", off);
  const auto spec = run("llama-F16.gguf", "", on);
  expect_same(ref, spec, "prompt lookup");
  Tally t;
  t.add(spec);
  std::printf("  prompt lookup: %d drafted, %d accepted\n", t.drafted, t.accepted);
  // Both outcomes of verification happened (else this compared nothing).
  EXPECT_GT(t.accepted, 0);
  EXPECT_LT(t.accepted, t.drafted);
}

TEST(Speculative, GreedyDraftModelEqualsPlainDecoding) {
  std::vector<Req> reqs;
  for (const auto& p : kPrompts) reqs.push_back({p, greedy(48, false)});
  const auto ref = run("llama-F16.gguf", "", reqs);
  // The target as its own draft agrees everywhere; Q4_0 mostly; llama4 (another model with the
  // same vocabulary) almost never.
  for (const char* draft : {"llama-F16.gguf", "llama-Q4_0.gguf", "llama4-F16.gguf"}) {
    const auto spec = run("llama-F16.gguf", draft, reqs);
    expect_same(ref, std::vector<Out>(spec.begin(), spec.end()), draft);
    Tally t;
    t.add(spec);
    std::printf("  draft %s: %d drafted, %d accepted\n", draft, t.drafted, t.accepted);
    EXPECT_GT(t.drafted, 0) << draft;
    if (std::string(draft) == "llama-F16.gguf") {
      EXPECT_EQ(t.accepted, t.drafted);
    } else if (std::string(draft) == "llama4-F16.gguf") {
      EXPECT_LT(t.accepted, t.drafted / 2);
    }
  }
}

// Several sequences in one runner, speculating together (each with its own drafts and rejections)
// and next to one that does not; greedy and seeded sampling, with a repeat penalty whose history
// must follow exactly the accepted tokens.
TEST(Speculative, ConcurrentSequencesEqualPlainDecoding) {
  std::vector<Req> off, on;
  int seed = 11;
  for (const auto& p : kPrompts)
    for (double temp : {0.0, 1.0}) {
      nlohmann::ordered_json o = {
          {"temperature", temp}, {"num_predict", 40}, {"seed", seed++}, {"repeat_penalty", 1.3},
          {"repeat_last_n", 16}, {"top_k", 0},        {"top_p", 0.95},  {"lookup_decoding", false}};
      off.push_back({p, o});
      o["lookup_decoding"] = &p != &kPrompts.back();  // the last prompt's requests do not speculate
      on.push_back({p, o});
    }
  const auto ref = run("llama-F16.gguf", "", off, 3);
  const auto spec = run("llama-F16.gguf", "", on, 3);
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(ref[i].tokens, spec[i].tokens) << "lookup, request " << i;
    EXPECT_EQ(ref[i].text, spec[i].text) << "lookup, request " << i;
  }
  Tally t;
  t.add(spec);
  EXPECT_GT(t.drafted, 0);
  EXPECT_EQ(spec.back().draft_count, 0);
  // The same with a draft model for every sequence (Q4_0: agrees often, not always).
  for (auto& r : on) r.options["lookup_decoding"] = false;
  const auto spec2 = run("llama-F16.gguf", "llama-Q4_0.gguf", on, 3);
  Tally t2;
  t2.add(spec2);
  std::printf("  concurrent: lookup %d/%d, draft model %d/%d accepted\n", t.accepted, t.drafted,
              t2.accepted, t2.drafted);
  EXPECT_GT(t2.drafted, t2.accepted);
  EXPECT_GT(t2.accepted, 0);
  for (size_t i = 0; i < ref.size(); ++i)
    EXPECT_EQ(ref[i].tokens, spec2[i].tokens) << "draft model, request " << i;
}

// Gemma 3: sliding-window layers whose KV ring (window 16 + n_batch 16 positions) wraps many
// times over 150 tokens; rejected drafts are overwritten there too. Its draft: Gemma 4 (same
// vocabulary, another model).
TEST(Speculative, SlidingWindowRingEqualsPlainDecoding) {
  std::vector<Req> off, on;
  for (const auto& p : kPrompts) {
    off.push_back({p, {{"temperature", 0}, {"num_predict", 150}, {"num_ctx", 256}}});
    on.push_back(
        {p,
         {{"temperature", 0}, {"num_predict", 150}, {"num_ctx", 256}, {"lookup_decoding", true}}});
  }
  const auto ref = run("gemma3-F16.gguf", "", off, 1, 16);
  const auto spec = run("gemma3-F16.gguf", "", on, 1, 16);
  const auto spec2 = run("gemma3-F16.gguf", "gemma4-F16.gguf", off, 1, 16);
  Tally t, t2;
  t.add(spec);
  t2.add(spec2);
  std::printf("  gemma3: lookup %d/%d, gemma4 draft %d/%d accepted\n", t.accepted, t.drafted,
              t2.accepted, t2.drafted);
  EXPECT_GT(t.drafted + t2.drafted, 0);
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(ref[i].tokens, spec[i].tokens) << "lookup, request " << i;
    EXPECT_EQ(ref[i].tokens, spec2[i].tokens) << "draft model, request " << i;
  }
}

// After a speculative request the slot's record of its cache holds exactly the accepted tokens:
// a follow-up that continues the text reuses all of it, and continues as it would without
// speculation.
TEST(Speculative, FollowUpReusesTheSpeculatedCache) {
  for (const char* draft : {"", "llama-F16.gguf"}) {
    std::vector<std::vector<int32_t>> outs;
    for (bool spec : {false, true}) {
      Scheduler sched(sched_opts(1, 512));
      const std::string d = spec ? draft : "";
      Job j = make_job("llama-F16.gguf", d, {kPrompts[0], greedy(40, spec)});
      auto a = std::make_shared<Collect>();
      j.sink = a;
      ASSERT_TRUE(sched.submit(std::move(j)).is_ok());
      const Out first = result(*a);
      if (spec) EXPECT_GT(first.draft_accepted, 0) << draft;
      Job k =
          make_job("llama-F16.gguf", d, {kPrompts[0] + first.text + " again", greedy(40, spec)});
      auto b = std::make_shared<Collect>();
      k.sink = b;
      ASSERT_TRUE(sched.submit(std::move(k)).is_ok());
      const Out second = result(*b);
      // The follow-up's prompt is the first exchange's text re-tokenized (then " again"): the
      // cache serves the longest prefix it shares with the first prompt and output, but the last
      // output token (sampled, never fed), and at least one prompt token is evaluated.
      const auto& ctx_a = a->stats.context;
      const std::vector<int32_t> prompt_b(b->stats.context.begin(),
                                          b->stats.context.end() - second.tokens.size());
      size_t lcp = 0;
      while (lcp + 1 < ctx_a.size() && lcp < prompt_b.size() && ctx_a[lcp] == prompt_b[lcp]) ++lcp;
      const size_t want = std::min(lcp, prompt_b.size() - 1);
      EXPECT_GT(want, ctx_a.size() - first.tokens.size() + 10) << "too little to compare";
      EXPECT_EQ(size_t(b->stats.prompt_cached), want) << draft;
      auto all = first.tokens;
      all.insert(all.end(), second.tokens.begin(), second.tokens.end());
      outs.push_back(all);
    }
    EXPECT_EQ(outs[0], outs[1]) << draft;
  }
}

// Qwen 3.5's DeltaNet state cannot drop rejected positions: no speculation, same output; a draft
// model for it is refused at load.
TEST(Speculative, RecurrentModelsDoNotSpeculate) {
  std::vector<Req> off = {{kPrompts[0], greedy(32, false)}}, on = {{kPrompts[0], greedy(32, true)}};
  const auto ref = run("qwen35-F16.gguf", "", off);
  const auto spec = run("qwen35-F16.gguf", "", on);
  EXPECT_EQ(ref[0].tokens, spec[0].tokens);
  EXPECT_EQ(spec[0].draft_count, 0);

  SchedulerOptions so;
  so.n_threads = 1;
  Scheduler sched(so);
  Job j;
  j.model.model_path = kFixtures + "qwen35-F16.gguf";
  j.model.draft_path = kFixtures + "qwen3-F16.gguf";
  j.prompt.kind = PromptSpec::Kind::kGenerate;
  j.prompt.raw = true;
  j.prompt.prompt = "hello";
  auto sink = std::make_shared<Collect>();
  j.sink = sink;
  ASSERT_TRUE(sched.submit(std::move(j)).is_ok());
  sink->wait();
  EXPECT_NE(sink->error.find("recurrent"), std::string::npos) << sink->error;
}

// The token after a verified draft has the target's distribution. The target is its own draft
// (the draft is the target's argmax, accepted with probability p(argmax), ~0.3-0.6 here), so the
// second generated token is decided by verification in every run: accepted draft or the draw
// that rejected it. Its distribution over many seeds is compared with the exact one, computed
// from the model's logits: P(t2) = sum over t1 of p(t1) p(t2 | t1), with the sampler's own final
// probabilities (top-k 6, temperature 1.5, repeat penalty 1.5 over the prompt and t1).
TEST(Speculative, VerifiedTokenHasTheTargetDistribution) {
  const std::string model = "llama-F16.gguf";
  const std::string prompt = "The quick brown fox jumps over the lazy";
  nlohmann::ordered_json opts = {{"temperature", 1.5},
                                 {"top_k", 6},
                                 {"top_p", 1.0},
                                 {"repeat_penalty", 1.5},
                                 {"num_predict", 3}};
  auto gen = merge_options(nlohmann::ordered_json::object(), opts);
  ASSERT_TRUE(gen.is_ok());
  const sampling::SamplerParams sp = gen->sampler;

  // Exact: the prompt's tokens as the runner makes them (raw generate: BOS + text).
  std::vector<int32_t> ptoks;
  EngineOptions eo;
  eo.n_threads = 1;
  auto eng = Engine::load(kFixtures + model, eo);
  ASSERT_TRUE(eng.is_ok());
  const int64_t nv = (*eng)->model().config().n_vocab;
  {
    // The runner's Stats.context starts with the prompt tokens.
    SchedulerOptions so;
    so.n_threads = 1;
    Scheduler sched(so);
    Job j;
    j.model.model_path = kFixtures + model;
    j.prompt.kind = PromptSpec::Kind::kGenerate;
    j.prompt.raw = true;
    j.prompt.prompt = prompt;
    j.opt = *merge_options(nlohmann::ordered_json::object(), {{"num_predict", 1}});
    auto sink = std::make_shared<Collect>();
    j.sink = sink;
    ASSERT_TRUE(sched.submit(std::move(j)).is_ok());
    sink->wait();
    ptoks.assign(sink->stats.context.begin(), sink->stats.context.end() - 1);
  }
  ASSERT_GT(ptoks.size(), 3u);
  models::ContextParams cp;
  cp.n_ctx = 64;
  std::vector<float> row(size_t(nv), 0.0f);
  auto dist = [&](const std::vector<int32_t>& ctx) {
    auto sess = Session::create(**eng, cp);
    EXPECT_TRUE(sess.is_ok());
    EXPECT_TRUE((*sess)->eval(ctx, false, row.data()).is_ok());
    sampling::Sampler s(sp, int(nv));
    for (int32_t t : ctx) s.accept(t);
    s.sample(row.data());
    std::map<int32_t, double> p;
    for (const auto& c : s.last_candidates()) p[c.id] += c.p;
    return p;
  };
  std::map<int32_t, double> expected;
  for (const auto& [t1, p1] : dist(ptoks)) {
    auto ctx = ptoks;
    ctx.push_back(t1);
    for (const auto& [t2, p2] : dist(ctx)) expected[t2] += p1 * p2;
  }

  // Observed, speculating, over many seeds (4 sequences at a time).
  const int n = 2400;
  std::map<int32_t, int> observed;
  int drafted = 0, accepted = 0;
  for (int wave = 0; wave < n / 400; ++wave) {
    std::vector<Req> reqs;
    for (int i = 0; i < 400; ++i) {
      auto o = opts;
      o["seed"] = 1000 + wave * 400 + i;
      reqs.push_back({prompt, o});
    }
    for (const auto& o : run(model, model, reqs, 4)) {
      ASSERT_GE(o.tokens.size(), 2u);
      ++observed[o.tokens[1]];
      drafted += o.draft_count;
      accepted += o.draft_accepted;
    }
  }
  // Chi-square over the tokens, those expected fewer than 5 times pooled into one bin.
  double chi2 = 0, pooled_e = 0, pooled_o = 0;
  int bins = 0;
  for (const auto& [t, p] : expected) {
    const double e = p * n;
    const double o = observed.count(t) ? observed[t] : 0;
    if (e < 5) {
      pooled_e += e;
      pooled_o += o;
      continue;
    }
    chi2 += (o - e) * (o - e) / e;
    ++bins;
  }
  int outside = 0;  // tokens the exact distribution gives probability 0
  for (const auto& [t, c] : observed)
    if (!expected.count(t)) outside += c;
  EXPECT_EQ(outside, 0);
  if (pooled_e > 0) {
    chi2 += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
    ++bins;
  }
  const int df = bins - 1;
  // Wilson-Hilferty: the chi-square quantile at 1 - 1e-4 (z = 3.719) for df degrees of freedom.
  const double z = 3.719, a = 2.0 / (9.0 * df);
  const double limit = df * std::pow(1 - a + z * std::sqrt(a), 3);
  std::printf("  %d runs: %d drafted, %d accepted; chi2 %.1f over %d dof (limit %.1f)\n", n,
              drafted, accepted, chi2, df, limit);
  EXPECT_GT(drafted, n / 2);
  EXPECT_GT(accepted, drafted / 10);
  EXPECT_LT(accepted, drafted * 9 / 10);
  EXPECT_LT(chi2, limit);
}

}  // namespace
}  // namespace hearth::runtime
