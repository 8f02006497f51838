// ops/ against direct double-precision formulas.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "base/fp16.h"
#include "base/thread_pool.h"
#include "kernels/kernels.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/rope.h"
#include "quant/types.h"

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

// The tiled (flash-attention style) path at every kernel level against the formula in double,
// for every mask: causal, sliding window (with the KV ring wrapped), Llama 4 chunks,
// bidirectional with and without llama.cpp's symmetric window, softcap; several query blocks and
// several key tiles per block; group sizes 1, 4 and 8; F32, F16, Q8_0 and Q4_0 caches (the
// reference sees the cache's rounded K/V rows and Q rounded as the path rounds it, so the
// tolerance is float summation only).
TEST(Ops, TiledAttentionMatchesReferenceForEveryMask) {
  struct Case {
    bool causal;
    int window, chunk, T, pos0;
    bool ring;
    float softcap;
    int n_head, n_head_kv;
    DType type;
    bool split = false;  // run on a 2-thread pool (decode with one KV head splits its keys)
  };
  const Case cases[] = {
      {true, 0, 0, 70, 90, false, 0, 8, 2, DType::F32},      // causal, 2 blocks, many tiles
      {true, 0, 0, 1, 200, false, 0, 8, 2, DType::F32},      // decode
      {true, 20, 0, 24, 100, true, 0, 8, 1, DType::F32},     // window, ring wrapped
      {true, 20, 0, 1, 157, true, 0, 4, 4, DType::F32},      // window decode, ring wrapped
      {true, 0, 48, 40, 30, false, 0, 4, 1, DType::F32},     // chunks crossed at 48
      {false, 0, 0, 37, 0, false, 0, 4, 2, DType::F32},      // bidirectional
      {false, 10, 0, 37, 0, false, 0, 4, 2, DType::F32},     // symmetric window
      {true, 0, 0, 20, 50, false, 30.0f, 4, 2, DType::F32},  // softcap
      {true, 0, 0, 20, 50, false, 0, 4, 2, DType::F16},
      {true, 0, 0, 20, 50, false, 0, 4, 2, DType::Q8_0},
      {true, 16, 0, 20, 80, true, 0, 4, 2, DType::Q4_0},
      {true, 0, 0, 1, 1000, false, 0, 4, 1, DType::F32, true},  // keys split over 2 threads
      {true, 0, 0, 1, 777, false, 0, 8, 1, DType::Q4_0, true},
      {true, 600, 0, 1, 1500, true, 0, 4, 1, DType::F16, true},  // split window, ring wrapped
      {true, 0, 0, 3, 1000, false, 0, 4, 2, DType::F32, true},   // 2 items: no split
      {true, 0, 0, 1, 333, false, 0, 8, 1, DType::Q8_0},         // decode, K/V read in place
      {true, 0, 0, 1, 129, false, 20.0f, 16, 2, DType::F16},     // (attn_tile_cache), softcap
      {true, 0, 0, 2, 700, false, 0, 8, 2, DType::Q4_0, true},   // 2 tokens x group 4, 2 threads
  };
  const int hd = 64;
  for (kernels::Isa isa : {kernels::Isa::kGeneric, kernels::Isa::kAvx2, kernels::Isa::kAvxVnni,
                           kernels::Isa::kAvx512}) {
    if (int(isa) > int(kernels::detected_isa())) continue;
    kernels::set_isa_cap(isa);
    for (size_t ci = 0; ci < std::size(cases); ++ci) {
      const Case& c = cases[ci];
      const int P = c.pos0 + c.T;  // positions held
      const int64_t R = c.ring ? c.window + c.T : 0;
      const int rows = c.ring ? int(2 * R) : P;
      const int nkv = c.n_head_kv * hd;
      const TypeTraits& tt = type_traits(c.type);
      auto q = randn(size_t(c.T) * c.n_head * hd, uint32_t(100 + ci), 0.5f);
      auto kf = randn(size_t(P) * nkv, uint32_t(200 + ci));
      auto vf = randn(size_t(P) * nkv, uint32_t(300 + ci));
      const size_t row = kv_row_bytes(c.type, nkv);
      std::vector<uint8_t> kc(rows * row), vc(rows * row);
      std::vector<float> kr(kf.size()), vr(vf.size());  // what the cache holds, as floats
      for (int j = 0; j < P; ++j) {
        std::vector<uint8_t> kb(row), vb(row);
        kv_store(c.type, kf.data() + size_t(j) * nkv, kb.data(), nkv);
        kv_store(c.type, vf.data() + size_t(j) * nkv, vb.data(), nkv);
        tt.dequantize_row(kb.data(), kr.data() + size_t(j) * nkv, nkv);
        tt.dequantize_row(vb.data(), vr.data() + size_t(j) * nkv, nkv);
        if (c.ring) {
          if (j < P - R) continue;  // overwritten in a ring
          for (int64_t at : {j % R, j % R + R}) {
            std::copy(kb.begin(), kb.end(), kc.begin() + at * int64_t(row));
            std::copy(vb.begin(), vb.end(), vc.begin() + at * int64_t(row));
          }
        } else {
          std::copy(kb.begin(), kb.end(), kc.begin() + size_t(j) * row);
          std::copy(vb.begin(), vb.end(), vc.begin() + size_t(j) * row);
        }
      }
      AttnParams p;
      p.causal = c.causal;
      p.n_head = c.n_head;
      p.n_head_kv = c.n_head_kv;
      p.head_dim_k = p.head_dim_v = hd;
      p.scale = 1.0f / std::sqrt(float(hd));
      p.softcap = c.softcap;
      p.window = c.window;
      p.chunk = c.chunk;
      p.ring = R;
      p.kv_type = c.type;
      ASSERT_TRUE(attention_tiled_supported(p));
      AttnScratch sc;
      sc.reserve(2, P, hd, hd);
      std::vector<float> out(size_t(c.T) * c.n_head * hd, NAN);
      if (c.split) {  // on a pool: decode splits its keys across the threads and merges
        ThreadPool pool(2);
        p.pool = &pool;
        pool.run([&](int ith, int nth) {
          attention_in_run(ith, nth, p, q.data(), c.n_head * hd, c.T, c.pos0, kc.data(), vc.data(),
                           out.data(), c.n_head * hd, sc);
        });
        // The merge sums in another order than one pass: bits differ where the keys were split.
        std::vector<float> one(out.size());
        p.pool = nullptr;
        for (int ith = 0; ith < 2; ++ith)
          attention_in_run(ith, 2, p, q.data(), c.n_head * hd, c.T, c.pos0, kc.data(), vc.data(),
                           one.data(), c.n_head * hd, sc);
        EXPECT_EQ(one == out, c.n_head_kv * c.T >= 2) << "case " << ci;
      } else {
        for (int ith = 0; ith < 2; ++ith)  // both threads' shares, one after the other
          attention_in_run(ith, 2, p, q.data(), c.n_head * hd, c.T, c.pos0, kc.data(), vc.data(),
                           out.data(), c.n_head * hd, sc);
      }
      const int group = c.n_head / c.n_head_kv;
      double worst = 0;
      for (int t = 0; t < c.T; ++t)
        for (int h = 0; h < c.n_head; ++h) {
          const int hk = h / group, pos = c.pos0 + t;
          int first = 0, last = c.causal ? pos : P - 1;
          if (c.causal && c.window) first = std::max(0, pos - c.window + 1);
          if (c.causal && c.chunk) first = std::max(first, pos / c.chunk * c.chunk);
          if (!c.causal && c.window) {
            first = std::max(0, pos - c.window / 2);
            last = std::min(P - 1, pos + c.window / 2);
          }
          // Q as the path rounds it: F16 for an F16 cache, through Q8_0 for quantized ones.
          std::vector<float> qq(q.begin() + (size_t(t) * c.n_head + h) * hd,
                                q.begin() + (size_t(t) * c.n_head + h + 1) * hd);
          if (c.type == DType::F16)
            for (float& x : qq) x = round_fp16(x);
          if (tt.quantized) {
            const TypeTraits& q8 = type_traits(DType::Q8_0);
            std::vector<uint8_t> b(row_bytes(q8, hd));
            act_quantizer(q8)(qq.data(), b.data(), hd);
            q8.dequantize_row(b.data(), qq.data(), hd);
          }
          std::vector<double> s;
          double mx = -1e300, sum = 0;
          for (int j = first; j <= last; ++j) {
            double x = 0;
            for (int i = 0; i < hd; ++i) x += double(qq[i]) * kr[size_t(j) * nkv + hk * hd + i];
            x *= p.scale;
            if (c.softcap > 0) x = c.softcap * std::tanh(x / c.softcap);
            s.push_back(x);
            mx = std::max(mx, x);
          }
          for (double& x : s) sum += (x = std::exp(x - mx));
          for (int i = 0; i < hd; ++i) {
            double o = 0;
            for (int j = first; j <= last; ++j)
              o += s[size_t(j - first)] / sum * vr[size_t(j) * nkv + hk * hd + i];
            const double got = out[(size_t(t) * c.n_head + h) * hd + i];
            worst = std::max(worst, std::fabs(got - o));
          }
        }
      EXPECT_LT(worst, 2e-5) << kernels::isa_name(isa) << " case " << ci;
    }
  }
  kernels::set_isa_cap(kernels::detected_isa());
}

}  // namespace
}  // namespace hearth::ops
