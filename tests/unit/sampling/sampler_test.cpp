#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>
#include <set>
#include <vector>

namespace hearth::sampling {
namespace {

SamplerParams plain() {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.typical_p = 1.0f;
  p.repeat_penalty = 1.0f;
  p.seed = 42;
  return p;
}

std::vector<int32_t> survivors(Sampler& s, const std::vector<float>& logits) {
  s.sample(logits.data());
  std::vector<int32_t> ids;
  for (const auto& c : s.last_candidates()) ids.push_back(c.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(Sampler, GreedyTakesArgmaxLowestIdOnTies) {
  SamplerParams p = plain();
  p.temperature = 0;
  Sampler s(p, 5);
  std::vector<float> l = {0.1f, 2.0f, -1.0f, 2.0f, 1.9f};
  EXPECT_EQ(s.sample(l.data()), 1);
}

TEST(Sampler, TopKKeepsKLargest) {
  SamplerParams p = plain();
  p.top_k = 2;
  Sampler s(p, 5);
  EXPECT_EQ(survivors(s, {0.1f, 3.0f, -1.0f, 2.0f, 1.0f}), (std::vector<int32_t>{1, 3}));
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingP) {
  // probabilities 0.5, 0.25, 0.125, 0.125 (logits are log-probs)
  std::vector<float> l = {std::log(0.5f), std::log(0.25f), std::log(0.125f), std::log(0.125f)};
  SamplerParams p = plain();
  p.top_p = 0.7f;  // 0.5 < 0.7 <= 0.75
  Sampler s(p, 4);
  EXPECT_EQ(survivors(s, l), (std::vector<int32_t>{0, 1}));
  p.top_p = 0.75f;  // reached exactly with two
  Sampler s2(p, 4);
  EXPECT_EQ(survivors(s2, l), (std::vector<int32_t>{0, 1}));
  const auto& c = s2.last_candidates();
  EXPECT_NEAR(c[0].p, 2.0f / 3.0f, 1e-6);  // renormalised
}

TEST(Sampler, MinPIsRelativeToTheBest) {
  std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.04f), std::log(0.16f)};
  SamplerParams p = plain();
  p.min_p = 0.1f;  // threshold 0.05: drops 0.04
  Sampler s(p, 4);
  EXPECT_EQ(survivors(s, l), (std::vector<int32_t>{0, 1, 3}));
}

TEST(Sampler, TypicalKeepsTokensNearTheEntropy) {
  // One dominant token and three equal small ones: the small ones are "typical".
  std::vector<float> l = {std::log(0.7f), std::log(0.1f), std::log(0.1f), std::log(0.1f)};
  SamplerParams p = plain();
  p.typical_p = 0.25f;
  Sampler s(p, 4);
  const auto ids = survivors(s, l);
  // H = 0.94; surprise: 0.36 for id 0 (|0.36-0.94| = 0.58), 2.30 for the others (1.36).
  EXPECT_EQ(ids, (std::vector<int32_t>{0}));
}

TEST(Sampler, RepeatPenaltyDividesPositiveMultipliesNegative) {
  SamplerParams p = plain();
  p.temperature = 0;
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  Sampler s(p, 3);
  std::vector<float> l = {1.0f, 1.5f, -0.5f};
  s.accept(1);
  EXPECT_EQ(s.sample(l.data()), 0);  // 1.5 / 2 = 0.75 < 1.0
  // The window holds 2 tokens: after two more, token 1 is no longer penalised.
  s.accept(2);
  s.accept(2);
  EXPECT_EQ(s.sample(l.data()), 1);
}

TEST(Sampler, FrequencyAndPresencePenalties) {
  SamplerParams p = plain();
  p.temperature = 0;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  p.repeat_last_n = -1;
  Sampler s(p, 2);
  std::vector<float> l = {2.0f, 1.0f};
  s.accept(0);  // 2.0 - 0.5 - 0.25 = 1.25 > 1.0
  EXPECT_EQ(s.sample(l.data()), 0);
  s.accept(0);  // 2.0 - 1.0 - 0.25 = 0.75 < 1.0
  EXPECT_EQ(s.sample(l.data()), 1);
}

TEST(Sampler, SeedReproducesAndDiffers) {
  std::vector<float> l(100);
  for (int i = 0; i < 100; ++i) l[i] = float(i % 7) * 0.3f;
  auto run = [&](int64_t seed) {
    SamplerParams p = plain();
    p.seed = seed;
    Sampler s(p, 100);
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(l.data()));
    return out;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST(Sampler, DrawsFollowTheSoftmax) {
  std::vector<float> l = {0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f)};  // 1:2:3:4
  SamplerParams p = plain();
  Sampler s(p, 4);
  std::vector<int> hits(4, 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) hits[size_t(s.sample(l.data()))]++;
  double chi2 = 0;
  for (int k = 0; k < 4; ++k) {
    const double e = n * (k + 1) / 10.0;
    chi2 += (hits[k] - e) * (hits[k] - e) / e;
  }
  EXPECT_LT(chi2, 16.3);  // p = 0.001 for 3 degrees of freedom
}

TEST(Sampler, LowTemperatureApproachesGreedy) {
  std::vector<float> l = {1.0f, 1.2f, 0.9f};
  SamplerParams p = plain();
  p.temperature = 1e-3f;
  Sampler s(p, 3);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.sample(l.data()), 1);
}

TEST(Sampler, MinKeepSurvivesAggressiveTruncation) {
  SamplerParams p = plain();
  p.top_p = 0.01f;
  p.min_keep = 3;
  Sampler s(p, 5);
  EXPECT_EQ(survivors(s, {5.0f, 1.0f, 0.5f, 0.2f, 0.1f}).size(), 3u);
}

// A filter (a grammar) keeps the chain exact: greedy picks the likeliest allowed token; sampling
// draws only from the top_k allowed ones, whether they sit near the top or deep in the order.
TEST(Sampler, FilterKeepsTopKOfTheAllowedTokens) {
  struct Only : TokenFilter {
    std::vector<int32_t> ok;
    bool allowed(int32_t t) override { return std::find(ok.begin(), ok.end(), t) != ok.end(); }
  };
  const int nv = 1000;
  std::vector<float> l(nv);
  for (int i = 0; i < nv; ++i) l[size_t(i)] = float(nv - i) * 0.0005f;  // id 0 likeliest
  Only f;
  f.ok = {999, 500, 7, 400, 300};  // 7 is the likeliest allowed one
  SamplerParams g;
  g.temperature = 0;
  Sampler greedy(g, nv);
  EXPECT_EQ(greedy.sample(l.data(), &f), 7);
  SamplerParams p;
  p.seed = 3;
  p.top_k = 3;
  p.top_p = 1.0f;
  p.repeat_penalty = 1.0f;
  Sampler s(p, nv);
  std::set<int32_t> seen;
  for (int i = 0; i < 300; ++i) seen.insert(s.sample(l.data(), &f));
  EXPECT_EQ(seen, (std::set<int32_t>{7, 300, 400}));  // the 3 likeliest allowed, deep ones too
  Only none;
  EXPECT_EQ(s.sample(l.data(), &none), -1);
}

TEST(Sampler, SpeedOn150kVocab) {
  const int nv = 151936;
  std::vector<float> l(nv);
  std::mt19937 g(1);
  std::normal_distribution<float> d(0, 3);
  for (auto& x : l) x = d(g);
  SamplerParams p;  // Ollama defaults
  p.seed = 1;
  Sampler s(p, nv);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) s.accept(s.sample(l.data()));
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 50;
  std::printf("sample() on 151936 logits with Ollama defaults: %.3f ms\n", ms);
  SUCCEED();
}

}  // namespace
}  // namespace hearth::sampling
