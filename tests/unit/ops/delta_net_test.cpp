// ops/delta_net: the recurrent gated delta rule against a double-precision reference, the chunked
// form against the recurrent one over long sequences, and the causal convolution's carried state.
#include "ops/delta_net.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace hearth::ops {
namespace {

struct Inputs {
  int dk, dv;
  int64_t T;
  std::vector<float> q, k, v, g, beta;
};

// L2-normalised q and k (q also scaled by 1/sqrt(dk)), decays in (-1.2, 0), β in (0, 1): the
// ranges a Qwen 3.5 layer feeds the rule.
Inputs make_inputs(int dk, int dv, int64_t T, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0, 1);
  std::uniform_real_distribution<float> u(0, 1);
  Inputs in{dk, dv, T, {}, {}, {}, {}, {}};
  auto unit_rows = [&](std::vector<float>& x, float scale) {
    x.resize(size_t(T) * dk);
    for (int64_t t = 0; t < T; ++t) {
      double ss = 0;
      for (int j = 0; j < dk; ++j) ss += double(x[t * dk + j] = n(rng)) * x[t * dk + j];
      for (int j = 0; j < dk; ++j) x[t * dk + j] *= float(scale / std::sqrt(ss));
    }
  };
  unit_rows(in.q, 1.0f / std::sqrt(float(dk)));
  unit_rows(in.k, 1.0f);
  in.v.resize(size_t(T) * dv);
  for (auto& x : in.v) x = n(rng);
  in.g.resize(size_t(T));
  in.beta.resize(size_t(T));
  for (int64_t t = 0; t < T; ++t) {
    in.g[t] = -1.2f * u(rng) * u(rng);
    in.beta[t] = 1.0f / (1.0f + std::exp(-2.0f * n(rng)));
  }
  return in;
}

DeltaRows rows(const Inputs& in, int64_t t0, float* o) {
  return DeltaRows{in.q.data() + t0 * in.dk,
                   in.k.data() + t0 * in.dk,
                   in.v.data() + t0 * in.dv,
                   in.g.data() + t0,
                   in.beta.data() + t0,
                   size_t(in.dk),
                   size_t(in.dv),
                   1,
                   o,
                   size_t(in.dv)};
}

TEST(DeltaNet, RecurrentMatchesDoubleReference) {
  const int dk = 16, dv = 24;
  const int64_t T = 40;
  Inputs in = make_inputs(dk, dv, T, 3);
  std::vector<float> S(size_t(dv) * dk, 0.0f), o(size_t(T) * dv);
  gated_delta_recurrent(S.data(), dk, dv, rows(in, 0, o.data()), T);
  // S_t = e^g S + β (v − e^g S k) kᵀ, o = S q, in double.
  std::vector<double> R(size_t(dv) * dk, 0.0);
  double max_err = 0;
  for (int64_t t = 0; t < T; ++t) {
    const float* q = &in.q[t * dk];
    const float* k = &in.k[t * dk];
    const double eg = std::exp(double(in.g[t]));
    for (auto& x : R) x *= eg;
    for (int i = 0; i < dv; ++i) {
      double sk = 0;
      for (int j = 0; j < dk; ++j) sk += R[i * dk + j] * k[j];
      const double d = in.beta[t] * (in.v[t * dv + i] - sk);
      for (int j = 0; j < dk; ++j) R[i * dk + j] += d * k[j];
      double oq = 0;
      for (int j = 0; j < dk; ++j) oq += R[i * dk + j] * q[j];
      max_err = std::max(max_err, std::fabs(oq - o[t * dv + i]));
    }
  }
  EXPECT_LT(max_err, 1e-5);
  for (size_t i = 0; i < S.size(); ++i) EXPECT_NEAR(S[i], R[i], 1e-5);
}

// Both forms over 1000 tokens (15 full chunks and a partial one), then a continuation of 1, 63
// and 130 tokens from the carried state: the outputs and states agree to float tolerance.
TEST(DeltaNet, ChunkedMatchesRecurrentOnLongSequences) {
  for (int hd : {64, 128}) {
    const int64_t T = 1000 + 1 + 63 + 130;
    Inputs in = make_inputs(hd, hd, T, 11 + hd);
    std::vector<float> S1(size_t(hd) * hd, 0.0f), S2 = S1, o1(size_t(T) * hd), o2 = o1;
    DeltaChunkScratch sc;
    sc.reserve(kDeltaChunk, hd, hd);
    gated_delta_recurrent(S1.data(), hd, hd, rows(in, 0, o1.data()), T);
    int64_t t0 = 0;
    for (int64_t n : {1000, 1, 63, 130}) {
      gated_delta_chunked(S2.data(), hd, hd, rows(in, t0, o2.data() + t0 * hd), n, sc);
      t0 += n;
    }
    double max_o = 0, max_do = 0, max_ds = 0;
    for (size_t i = 0; i < o1.size(); ++i) {
      max_o = std::max(max_o, double(std::fabs(o1[i])));
      max_do = std::max(max_do, double(std::fabs(o1[i] - o2[i])));
    }
    for (size_t i = 0; i < S1.size(); ++i)
      max_ds = std::max(max_ds, double(std::fabs(S1[i] - S2[i])));
    EXPECT_GT(max_o, 0.03) << "outputs should not be trivially small";
    EXPECT_LT(max_do, 2e-5 * std::max(1.0, max_o)) << "head " << hd;
    EXPECT_LT(max_ds, 2e-5) << "head " << hd;
  }
}

TEST(DeltaNet, CausalConvCarriesStateAcrossCalls) {
  const int K = 4;
  const int64_t C = 10, T = 23;
  std::mt19937 rng(5);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> w(size_t(C) * K), x(size_t(T) * C);
  for (auto& v : w) v = n(rng);
  for (auto& v : x) v = n(rng);
  // Whole sequence at once from a zero state.
  std::vector<float> st1(size_t(K - 1) * C, 0.0f), out1(size_t(T) * C);
  causal_conv1d_silu(w.data(), K, st1.data(), x.data(), C, out1.data(), C, T, C, 0, C);
  // Direct formula.
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) {
      double s = 0;
      for (int j = 0; j < K; ++j) {
        const int64_t r = t - (K - 1) + j;
        if (r >= 0) s += double(w[c * K + j]) * x[r * C + c];
      }
      EXPECT_NEAR(out1[t * C + c], s / (1 + std::exp(-s)), 1e-5);
    }
  // In pieces of 1, 2 and 20 rows, two channel ranges each: the same outputs and final state.
  std::vector<float> st2(size_t(K - 1) * C, 0.0f), out2(size_t(T) * C);
  int64_t t0 = 0;
  for (int64_t len : {1, 2, 20}) {
    causal_conv1d_silu(w.data(), K, st2.data(), x.data() + t0 * C, C, out2.data() + t0 * C, C, len,
                       C, 0, 4);
    causal_conv1d_silu(w.data(), K, st2.data(), x.data() + t0 * C, C, out2.data() + t0 * C, C, len,
                       C, 4, C);
    t0 += len;
  }
  for (size_t i = 0; i < out1.size(); ++i) EXPECT_FLOAT_EQ(out1[i], out2[i]);
  for (size_t i = 0; i < st1.size(); ++i) EXPECT_FLOAT_EQ(st1[i], st2[i]);
  for (int64_t i = 0; i < (K - 1) * C; ++i) EXPECT_FLOAT_EQ(st1[i], x[(T - (K - 1)) * C + i]);
}

}  // namespace
}  // namespace hearth::ops
