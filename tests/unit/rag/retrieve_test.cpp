// Hybrid retrieval's arithmetic against brute-force references.
#include "rag/retrieve.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

using namespace hearth::rag;

TEST(Retrieve, TopKCosineEqualsSortingEverything) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  const size_t dim = 37, n = 500;
  auto unit = [&](std::vector<float>& v) {
    double s = 0;
    for (float x : v) s += double(x) * x;
    for (float& x : v) x = float(x / std::sqrt(s));
  };
  std::vector<float> m(n * dim), q(dim);
  std::vector<int64_t> ids(n);
  for (size_t r = 0; r < n; ++r) {
    std::vector<float> v(dim);
    for (auto& x : v) x = nd(rng);
    unit(v);
    std::copy(v.begin(), v.end(), m.begin() + long(r * dim));
    ids[r] = int64_t(1000 + r);
  }
  for (auto& x : q) x = nd(rng);
  unit(q);
  // A duplicate row: equal scores, the lower id first.
  std::copy(m.begin(), m.begin() + long(dim), m.begin() + long(7 * dim));
  const auto got = top_k_cosine(q, m, ids, dim, 10);
  std::vector<std::pair<double, int64_t>> all;
  for (size_t r = 0; r < n; ++r) {
    double s = 0;
    for (size_t i = 0; i < dim; ++i) s += double(q[i]) * m[r * dim + i];
    all.push_back({-s, ids[r]});
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(got.size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_NEAR(got[i].score, -all[i].first, 1e-5);
    if (i > 0) EXPECT_GE(got[i - 1].score, got[i].score);
  }
  EXPECT_EQ(got[0].id, all[0].second);
  EXPECT_TRUE(top_k_cosine(q, m, ids, dim, 0).empty());
  EXPECT_EQ(top_k_cosine(q, m, ids, dim, 5000).size(), n);
  EXPECT_TRUE(top_k_cosine(std::vector<float>(3), m, ids, dim, 5).empty());  // wrong dimension
}

TEST(Retrieve, ReciprocalRankFusion) {
  // d2 is second in both lists: it beats d1 (first in one, absent from the other).
  const auto f = fuse_rrf({{1, 2, 3}, {4, 2, 5}});
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f[0].id, 2);
  EXPECT_NEAR(f[0].score, 2.0 / 62.0, 1e-12);
  EXPECT_EQ(f[1].id, 1);  // 1/61, tied with 4: the lower id first
  EXPECT_EQ(f[2].id, 4);
  EXPECT_NEAR(f[1].score, 1.0 / 61.0, 1e-12);
  // A document listed twice in one ranking counts once, at its better rank.
  const auto g = fuse_rrf({{7, 7, 8}});
  EXPECT_NEAR(g[0].score, 1.0 / 61.0, 1e-12);
  EXPECT_TRUE(fuse_rrf({}).empty());
}

TEST(Retrieve, BudgetKeepsRankOrderAndSkipsWhatDoesNotFit) {
  const std::vector<size_t> tokens = {300, 500, 100, 250, 50};
  EXPECT_EQ(fit_budget(tokens, 700, 10), (std::vector<size_t>{0, 2, 3, 4}));
  EXPECT_EQ(fit_budget(tokens, 700, 2), (std::vector<size_t>{0, 2}));
  EXPECT_TRUE(fit_budget(tokens, 10, 10).empty());
}
