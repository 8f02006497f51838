// ops/ against direct double-precision formulas.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "base/fp16.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/rope.h"

namespace hearth::ops {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

TEST(Ops, RmsNormMatchesFormula) {
  auto x = randn(300, 1), w = randn(300, 2);
  std::vector<float> y(300);
  rms_norm(x.data(), w.data(), y.data(), 300, 1e-5f);
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const double s = 1.0 / std::sqrt(ss / 300 + 1e-5);
  for (int i = 0; i < 300; ++i) EXPECT_NEAR(y[i], x[i] * s * w[i], 1e-5);
}

TEST(Ops, SoftmaxSumsToOneAndHandlesMasks) {
  std::vector<float> x = {1, 2, 3, -INFINITY};
  softmax(x.data(), 4);
  EXPECT_NEAR(x[0] + x[1] + x[2], 1.0, 1e-6);
  EXPECT_EQ(x[3], 0.0f);
  EXPECT_NEAR(x[2] / x[1], std::exp(1.0), 1e-5);
  std::vector<float> all_masked = {-INFINITY, -INFINITY};
  softmax(all_masked.data(), 2);
  EXPECT_EQ(all_masked[0], 0.0f);
}

TEST(Ops, GeluTanhApproximation) {
  // ggml's table form: the tanh approximation evaluated at the F16 value of x, result rounded
  // to F16; passed through at x >= 10, 0 at x <= -10.
  auto ref = [](double x) {
    return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  };
  for (float x : {-9.9f, -3.0f, -0.5f, 0.0f, 0.7f, 1.2345f, 2.5f, 9.9f}) {
    const float xh = round_fp16(x);
    EXPECT_EQ(gelu(x), round_fp16(float(ref(xh)))) << x;
    EXPECT_NEAR(gelu(x), ref(x), 4e-3 * std::max(1.0, std::fabs(ref(x)))) << x;
  }
  EXPECT_EQ(gelu(-10.0f), 0.0f);
  EXPECT_EQ(gelu(-50.0f), 0.0f);
  EXPECT_EQ(gelu(10.0f), 10.0f);
  EXPECT_EQ(gelu(123.25f), 123.25f);
}

// RoPE against the textbook definition: pairs rotate by pos * base^(-2i/n_rot) / ff_i.
void rope_reference(RopeMode mode, int n_rot, int head_dim, float base, const float* ff,
                    int64_t pos, std::vector<double>& v) {
  for (int i = 0; i < n_rot / 2; ++i) {
    const double theta =
        double(pos) * std::pow(double(base), -2.0 * i / n_rot) / (ff ? ff[i] : 1.0);
    const int a = mode == RopeMode::kNorm ? 2 * i : i;
    const int b = mode == RopeMode::kNorm ? 2 * i + 1 : i + n_rot / 2;
    const double x0 = v[a], x1 = v[b];
    v[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
    v[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
  }
  (void)head_dim;
}

TEST(Ops, RopeNormAndNeoxMatchDefinition) {
  for (RopeMode mode : {RopeMode::kNorm, RopeMode::kNeox}) {
    for (int n_rot : {64, 32}) {  // 32 < head_dim: partial rotation leaves the tail alone
      RopeParams p;
      p.mode = mode;
      p.n_rot = n_rot;
      p.freq_base = 10000;
      std::vector<float> ff(n_rot / 2);
      for (int i = 0; i < n_rot / 2; ++i) ff[i] = 1.0f + 0.25f * i;
      p.freq_factors = ff.data();
      for (int64_t pos : {0, 1, 17, 500}) {
        auto x = randn(2 * 64, uint32_t(pos + n_rot));
        std::vector<float> cs(n_rot);
        rope_cos_sin(p, pos, cs.data());
        auto y = x;
        rope_apply(p, cs.data(), y.data(), 2, 64);
        for (int h = 0; h < 2; ++h) {
          std::vector<double> ref(x.begin() + h * 64, x.begin() + (h + 1) * 64);
          rope_reference(mode, n_rot, 64, 10000, ff.data(), pos, ref);
          for (int d = 0; d < 64; ++d)
            EXPECT_NEAR(y[h * 64 + d], ref[d], 2e-4 * (1 + pos / 100.0))
                << "mode " << int(mode) << " pos " << pos << " d " << d;
        }
      }
    }
  }
}

TEST(Ops, LinearRopeScalingDividesPositions) {
  RopeParams a, b;
  a.n_rot = b.n_rot = 16;
  b.freq_scale = 0.25f;
  std::vector<float> ca(16), cb(16);
  rope_cos_sin(a, 10, ca.data());
  rope_cos_sin(b, 40, cb.data());
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(ca[i], cb[i], 1e-4);
}

// GQA attention with an F32 cache against a double-precision reference: causal (with and
// without a window) and bidirectional (encoders: every token sees all rows up to the call's
// last; with a window, those within window / 2 on either side, as llama.cpp's symmetric SWA).
TEST(Ops, AttentionMatchesNaiveReference) {
  const int n_head = 4, n_head_kv = 2, hd = 32, T = 7, pos0 = 3, n_ctx = 16;
  const int n_pos = pos0 + T;
  auto q = randn(size_t(T) * n_head * hd, 11);
  auto k = randn(size_t(n_pos) * n_head_kv * hd, 12);
  auto v = randn(size_t(n_pos) * n_head_kv * hd, 13);
  const std::pair<bool, int> cases[] = {{true, 0}, {true, 4}, {false, 0}, {false, 4}, {false, 5}};
  for (auto [causal, window] : cases) {
    AttnParams p;
    p.causal = causal;
    p.n_head = n_head;
    p.n_head_kv = n_head_kv;
    p.head_dim_k = p.head_dim_v = hd;
    p.scale = 1.0f / std::sqrt(float(hd));
    p.kv_type = DType::F32;
    p.window = window;
    AttnScratch sc;
    sc.reserve(1, n_ctx, hd, hd);
    std::vector<float> out(size_t(T) * n_head * hd);
    attention_in_run(0, 1, p, q.data(), n_head * hd, T, pos0,
                     reinterpret_cast<const uint8_t*>(k.data()),
                     reinterpret_cast<const uint8_t*>(v.data()), out.data(), n_head * hd, sc);
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < n_head; ++h) {
        const int hk = h / (n_head / n_head_kv);
        const int pos = pos0 + t;
        int first = window ? std::max(0, pos - window + 1) : 0;
        int last = causal ? pos : pos0 + T - 1;
        if (!causal && window) {
          first = std::max(0, pos - window / 2);
          last = std::min(pos0 + T - 1, pos + window / 2);
        }
        std::vector<double> s;
        double mx = -1e300;
        for (int j = first; j <= last; ++j) {
          double d = 0;
          for (int i = 0; i < hd; ++i)
            d += double(q[(t * n_head + h) * hd + i]) * k[(j * n_head_kv + hk) * hd + i];
          s.push_back(d * p.scale);
          mx = std::max(mx, s.back());
        }
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - mx));
        for (int i = 0; i < hd; ++i) {
          double o = 0;
          for (int j = first; j <= last; ++j)
            o += s[j - first] / sum * v[(j * n_head_kv + hk) * hd + i];
          EXPECT_NEAR(out[(t * n_head + h) * hd + i], o, 1e-4)
              << "t " << t << " h " << h << " causal " << causal << " window " << window;
        }
      }
  }
}

// The F16 cache path (its own kernel on AVX-512) bidirectional, against the F32 path: equal up to
// F16 rounding of K, V, Q and the probabilities.
TEST(Ops, BidirectionalAttentionF16MatchesF32) {
  const int n_head = 4, n_head_kv = 2, hd = 64, T = 9, n_ctx = 16;
  auto q = randn(size_t(T) * n_head * hd, 21);
  auto k = randn(size_t(T) * n_head_kv * hd, 22);
  auto v = randn(size_t(T) * n_head_kv * hd, 23);
  std::vector<uint16_t> k16(k.size()), v16(v.size());
  kv_store(DType::F16, k.data(), reinterpret_cast<uint8_t*>(k16.data()), int64_t(k.size()));
  kv_store(DType::F16, v.data(), reinterpret_cast<uint8_t*>(v16.data()), int64_t(v.size()));
  AttnParams p;
  p.n_head = n_head;
  p.n_head_kv = n_head_kv;
  p.head_dim_k = p.head_dim_v = hd;
  p.scale = 1.0f / std::sqrt(float(hd));
  p.causal = false;
  AttnScratch sc;
  sc.reserve(1, n_ctx, hd, hd);
  std::vector<float> o32(size_t(T) * n_head * hd), o16(o32.size());
  p.kv_type = DType::F32;
  attention_in_run(0, 1, p, q.data(), n_head * hd, T, 0, reinterpret_cast<const uint8_t*>(k.data()),
                   reinterpret_cast<const uint8_t*>(v.data()), o32.data(), n_head * hd, sc);
  p.kv_type = DType::F16;
  attention_in_run(0, 1, p, q.data(), n_head * hd, T, 0,
                   reinterpret_cast<const uint8_t*>(k16.data()),
                   reinterpret_cast<const uint8_t*>(v16.data()), o16.data(), n_head * hd, sc);
  float worst = 0;
  for (size_t i = 0; i < o32.size(); ++i) worst = std::max(worst, std::fabs(o32[i] - o16[i]));
  EXPECT_LT(worst, 2e-2f);
  // The first token saw all rows: its output differs from causal attention (which sees one).
  p.causal = true;
  std::vector<float> oc(o16.size());
  attention_in_run(0, 1, p, q.data(), n_head * hd, T, 0,
                   reinterpret_cast<const uint8_t*>(k16.data()),
                   reinterpret_cast<const uint8_t*>(v16.data()), oc.data(), n_head * hd, sc);
  float d0 = 0, dlast = 0;
  for (int i = 0; i < n_head * hd; ++i) {
    d0 = std::max(d0, std::fabs(oc[size_t(i)] - o16[size_t(i)]));
    dlast = std::max(dlast, std::fabs(oc[size_t((T - 1) * n_head * hd + i)] -
                                      o16[size_t((T - 1) * n_head * hd + i)]));
  }
  EXPECT_GT(d0, 1e-2f);
  EXPECT_EQ(dlast, 0.0f);  // the last token sees the same rows either way

  // A symmetric window (EmbeddingGemma's sliding layers) through both paths.
  p.causal = false;
  p.window = 4;
  p.kv_type = DType::F32;
  attention_in_run(0, 1, p, q.data(), n_head * hd, T, 0, reinterpret_cast<const uint8_t*>(k.data()),
                   reinterpret_cast<const uint8_t*>(v.data()), o32.data(), n_head * hd, sc);
  p.kv_type = DType::F16;
  attention_in_run(0, 1, p, q.data(), n_head * hd, T, 0,
                   reinterpret_cast<const uint8_t*>(k16.data()),
                   reinterpret_cast<const uint8_t*>(v16.data()), oc.data(), n_head * hd, sc);
  worst = 0;
  for (size_t i = 0; i < o32.size(); ++i) worst = std::max(worst, std::fabs(o32[i] - oc[i]));
  EXPECT_LT(worst, 2e-2f);
  float dwin = 0;  // the window changes what the middle token sees
  for (int i = 0; i < n_head * hd; ++i)
    dwin = std::max(dwin,
                    std::fabs(oc[size_t(4 * n_head * hd + i)] - o16[size_t(4 * n_head * hd + i)]));
  EXPECT_GT(dwin, 1e-2f);
}

}  // namespace
}  // namespace hearth::ops
