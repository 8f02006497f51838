// The model contract beyond token-in/logits-out (models/model.h): embedding rows as input, the
// final hidden states and pooled embeddings as output, and bidirectional (encoder) attention
// declared by metadata, on the shared fixtures.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "models/model.h"
#include "models/weights.h"

namespace hearth::models {
namespace {

const std::string kFixtures = std::string(HEARTH_SHARED_DIR) + "/fixtures/";
const std::vector<int32_t> kPrompt = {4096, 791, 4062, 293, 654, 77, 282, 78};

struct Loaded {
  std::shared_ptr<gguf::GgufFile> file;
  std::unique_ptr<Model> model;
};

Loaded load_file(std::shared_ptr<gguf::GgufFile> f, ThreadPool& pool) {
  Loaded l;
  l.file = std::move(f);
  auto m = load_model(l.file, pool);
  EXPECT_TRUE(m.is_ok()) << m.status().message();
  if (m) l.model = std::move(*m);
  return l;
}

Loaded load(const std::string& name, ThreadPool& pool) {
  auto f = gguf::GgufFile::open(kFixtures + name);
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  if (!f) return {};
  return load_file(*f, pool);
}

std::vector<BatchToken> run_of(int n, int seq, int32_t n_vocab, bool out) {
  std::vector<BatchToken> b;
  for (int i = 0; i < n; ++i) b.push_back({kPrompt[size_t(i)] % n_vocab, i, seq, out});
  return b;
}

std::vector<float> eval(const Model& m, const ContextParams& cp, ThreadPool& pool,
                        const ForwardInput& in, OutputKind kind, size_t rows,
                        Pooling pooling = Pooling::kNone) {
  auto ctx = m.new_context(cp, pool);
  EXPECT_TRUE(ctx.is_ok()) << ctx.status().message();
  const int64_t w = kind == OutputKind::kLogits ? m.config().n_vocab : m.config().n_embd;
  std::vector<float> out(rows * size_t(w), NAN);
  auto st = m.eval(**ctx, in, ForwardOutput{kind, out.data(), pooling});
  EXPECT_TRUE(st.is_ok()) << st.message();
  return out;
}

// Rows given as input (what a vision encoder will hand over) give exactly the logits of the
// tokens whose embeddings they are.
TEST(ModelContract, EmbeddingRowsEqualTokens) {
  ThreadPool pool(2);
  for (const char* name : {"llama-F16.gguf", "qwen3-F16.gguf", "qwen35-Q8_0.gguf"}) {
    auto l = load(name, pool);
    ASSERT_TRUE(l.model) << name;
    const auto& c = l.model->config();
    ContextParams cp;
    cp.n_ctx = 32;
    cp.n_batch = 16;
    const auto batch = run_of(8, 0, int32_t(c.n_vocab), true);
    const auto* emb = l.file->find_tensor("token_embd.weight");
    ASSERT_NE(emb, nullptr);
    std::vector<float> rows(batch.size() * size_t(c.n_embd));
    for (size_t i = 0; i < batch.size(); ++i)
      dequantize_row_of(*emb, batch[i].token, rows.data() + i * size_t(c.n_embd));
    const auto a = eval(*l.model, cp, pool, ForwardInput{batch}, OutputKind::kLogits, 8);
    const auto b =
        eval(*l.model, cp, pool, ForwardInput{batch, rows.data()}, OutputKind::kLogits, 8);
    EXPECT_EQ(a, b) << name;
  }
}

// Hidden rows are the normed final states the head multiplies; pooled rows are their mean,
// first or last per sequence, one row per sequence in order of first appearance.
TEST(ModelContract, HiddenAndPooledOutputs) {
  ThreadPool pool(2);
  auto l = load("qwen3-F16.gguf", pool);
  ASSERT_TRUE(l.model);
  const auto& c = l.model->config();
  const size_t E = size_t(c.n_embd);
  ContextParams cp;
  cp.n_ctx = 32;
  cp.n_seq = 2;
  cp.n_batch = 16;
  const auto one = run_of(6, 0, int32_t(c.n_vocab), true);
  const auto H = eval(*l.model, cp, pool, ForwardInput{one}, OutputKind::kHidden, 6);
  for (float v : H) ASSERT_TRUE(std::isfinite(v));
  // Sequence 1 (the same tokens) first in the batch, then sequence 0 (its first 4 tokens).
  auto two = run_of(6, 1, int32_t(c.n_vocab), false);
  for (const auto& b : run_of(4, 0, int32_t(c.n_vocab), false)) two.push_back(b);
  const auto H4 = eval(*l.model, cp, pool, ForwardInput{run_of(4, 0, int32_t(c.n_vocab), true)},
                       OutputKind::kHidden, 4);
  for (Pooling p : {Pooling::kMean, Pooling::kCls, Pooling::kLast}) {
    const auto P = eval(*l.model, cp, pool, ForwardInput{two}, OutputKind::kPooled, 2, p);
    for (int r = 0; r < 2; ++r) {  // row 0: sequence 1 (6 tokens), row 1: sequence 0 (4)
      const auto& h = r == 0 ? H : H4;
      const size_t n = r == 0 ? 6 : 4;
      for (size_t d = 0; d < E; ++d) {
        double want = 0;
        if (p == Pooling::kMean) {
          for (size_t t = 0; t < n; ++t) want += h[t * E + d];
          want /= double(n);
        } else {
          want = h[(p == Pooling::kCls ? 0 : n - 1) * E + d];
        }
        ASSERT_NEAR(P[size_t(r) * E + d], want, 1e-3) << pooling_name(p) << " row " << r;
      }
    }
  }
  // Asking for pooled rows without a pooling type is an error, not a guess.
  auto ctx = l.model->new_context(cp, pool);
  std::vector<float> sink(E);
  EXPECT_FALSE(
      l.model->eval(**ctx, ForwardInput{one}, ForwardOutput{OutputKind::kPooled, sink.data()}));
}

// A file declaring `<arch>.attention.causal = false` runs as an encoder: no cache, every token
// sees the whole batch, so changing the last token changes the first token's state (in the
// causal model it cannot); a second call starts afresh.
TEST(ModelContract, BidirectionalAttentionFromMetadata) {
  ThreadPool pool(2);
  auto causal = load("qwen3-F16.gguf", pool);
  ASSERT_TRUE(causal.model);
  gguf::GgufWriter w;
  for (const auto& e : causal.file->metadata()) w.copy_value(std::string(e.key), e.value);
  w.set_bool("qwen3.attention.causal", false);
  w.set_u32("qwen3.pooling_type", 1);
  for (const auto& t : causal.file->tensors())
    ASSERT_TRUE(w.add_tensor(std::string(t.name), t.type, t.shape, t.data, t.nbytes).is_ok());
  auto bytes = w.to_bytes();
  auto f = gguf::GgufFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  auto enc = load_file(*f, pool);
  ASSERT_TRUE(enc.model);
  EXPECT_FALSE(enc.model->config().causal);
  EXPECT_EQ(enc.model->config().pooling, Pooling::kMean);
  ContextParams cp;
  cp.n_ctx = 32;
  cp.n_batch = 16;
  EXPECT_EQ(enc.model->state_bytes(cp), 0u);  // an encoder keeps nothing between calls
  auto est = estimate_state_bytes(**f, cp);
  ASSERT_TRUE(est.is_ok());
  EXPECT_EQ(*est, 0u);
  const size_t E = size_t(causal.model->config().n_embd);
  const int32_t nv = int32_t(causal.model->config().n_vocab);
  const auto batch = run_of(6, 0, nv, true);
  auto changed = batch;
  changed[5].token = (changed[5].token + 1) % nv;
  auto first_row_moves = [&](const Model& m) {
    const auto a = eval(m, cp, pool, ForwardInput{batch}, OutputKind::kHidden, 6);
    const auto b = eval(m, cp, pool, ForwardInput{changed}, OutputKind::kHidden, 6);
    float d = 0;
    for (size_t i = 0; i < E; ++i) d = std::max(d, std::fabs(a[i] - b[i]));
    return d;
  };
  EXPECT_EQ(first_row_moves(*causal.model), 0.0f);
  EXPECT_GT(first_row_moves(*enc.model), 1e-4f);
  auto ctx = enc.model->new_context(cp, pool);
  ASSERT_TRUE(ctx.is_ok());
  std::vector<float> he(6 * E), again(6 * E);
  ASSERT_TRUE(
      enc.model->eval(**ctx, ForwardInput{batch}, ForwardOutput{OutputKind::kHidden, he.data()}));
  ASSERT_TRUE(enc.model->eval(**ctx, ForwardInput{batch},
                              ForwardOutput{OutputKind::kHidden, again.data()}));
  EXPECT_EQ(he, again);
}

// gemma-embedding (EmbeddingGemma) from the gemma3 fixture's weights: bidirectional, no cache
// and no logits; per-token rows are the normed final states, untouched by the Dense heads;
// pooled rows are dense_3 · dense_2 · mean(rows) per sequence, each sequence attending only to
// itself in a shared batch. A dense_2 that leaves the wrong width is refused at load.
TEST(ModelContract, GemmaEmbeddingPoolsThenAppliesDenseHeads) {
  ThreadPool pool(2);
  auto base = load("gemma3-F16.gguf", pool);
  ASSERT_TRUE(base.model);
  const int64_t E = base.model->config().n_embd, F = 2 * E;
  const int32_t nv = int32_t(base.model->config().n_vocab);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> d2(size_t(F * E)), d3(size_t(E * F));
  for (float& v : d2) v = nd(rng);
  for (float& v : d3) v = nd(rng);
  auto make = [&](bool with_d3) {
    gguf::GgufWriter w;
    for (const auto& e : base.file->metadata()) {
      std::string key(e.key);
      if (key.rfind("gemma3.", 0) == 0) key = "gemma-embedding." + key.substr(7);
      w.copy_value(key, e.value);
    }
    w.set_string("general.architecture", "gemma-embedding");
    w.set_u32("gemma-embedding.pooling_type", 1);
    w.set_u32("gemma-embedding.dense_2_feat_in", uint32_t(E));
    w.set_u32("gemma-embedding.dense_2_feat_out", uint32_t(F));
    w.set_u32("gemma-embedding.dense_3_feat_in", uint32_t(F));
    w.set_u32("gemma-embedding.dense_3_feat_out", uint32_t(E));
    for (const auto& t : base.file->tensors())
      EXPECT_TRUE(w.add_tensor(std::string(t.name), t.type, t.shape, t.data, t.nbytes).is_ok());
    EXPECT_TRUE(
        w.add_tensor("dense_2.weight", DType::F32, {F, E}, d2.data(), d2.size() * 4).is_ok());
    if (with_d3)
      EXPECT_TRUE(
          w.add_tensor("dense_3.weight", DType::F32, {E, F}, d3.data(), d3.size() * 4).is_ok());
    return w.to_bytes();
  };
  auto bytes = make(true);
  auto f = gguf::GgufFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  auto emb = load_file(*f, pool);
  ASSERT_TRUE(emb.model);
  const auto& c = emb.model->config();
  EXPECT_FALSE(c.causal);
  EXPECT_EQ(c.pooling, Pooling::kMean);
  ContextParams cp;
  cp.n_ctx = 32;
  cp.n_seq = 2;
  cp.n_batch = 32;
  EXPECT_EQ(emb.model->state_bytes(cp), 0u);
  // Two sequences longer than the window (16: 8 positions either side) in one batch.
  auto seq = [&](int n, int s, int32_t salt) {
    std::vector<BatchToken> b;
    for (int i = 0; i < n; ++i) b.push_back({(salt + 37 * i) % nv, i, s, true});
    return b;
  };
  const auto a = seq(20, 0, 11), b = seq(12, 1, 500);
  auto both = a;
  both.insert(both.end(), b.begin(), b.end());
  const auto Ha = eval(*emb.model, cp, pool, ForwardInput{a}, OutputKind::kHidden, 20);
  const auto Hb = eval(*emb.model, cp, pool, ForwardInput{b}, OutputKind::kHidden, 12);
  const auto Hab = eval(*emb.model, cp, pool, ForwardInput{both}, OutputKind::kHidden, 32);
  for (size_t i = 0; i < Hb.size(); ++i) ASSERT_NEAR(Hab[20 * size_t(E) + i], Hb[i], 1e-4);
  const auto P =
      eval(*emb.model, cp, pool, ForwardInput{both}, OutputKind::kPooled, 2, Pooling::kMean);
  for (int r = 0; r < 2; ++r) {
    const auto& h = r == 0 ? Ha : Hb;
    const size_t n = r == 0 ? 20 : 12;
    std::vector<double> m(size_t(E), 0.0), mid(size_t(F), 0.0);
    for (size_t t = 0; t < n; ++t)
      for (int64_t d = 0; d < E; ++d) m[size_t(d)] += h[t * size_t(E) + size_t(d)] / double(n);
    for (int64_t o = 0; o < F; ++o)
      for (int64_t d = 0; d < E; ++d) mid[size_t(o)] += d2[size_t(o * E + d)] * m[size_t(d)];
    for (int64_t o = 0; o < E; ++o) {
      double want = 0;
      for (int64_t d = 0; d < F; ++d) want += d3[size_t(o * F + d)] * mid[size_t(d)];
      ASSERT_NEAR(P[size_t(r * E + o)], want, 2e-3 + 1e-3 * std::fabs(want)) << "row " << r;
    }
  }
  // Embeddings only.
  auto ctx = emb.model->new_context(cp, pool);
  ASSERT_TRUE(ctx.is_ok());
  std::vector<float> sink(size_t(nv) * 32);
  EXPECT_FALSE(emb.model->forward(**ctx, a, sink.data()));
  // dense_2 alone would leave 2 x n_embd features.
  auto bad = make(false);
  auto fb = gguf::GgufFile::parse(bad.data(), bad.size());
  ASSERT_TRUE(fb.is_ok());
  EXPECT_FALSE(load_model(*fb, pool).is_ok());
}

}  // namespace
}  // namespace hearth::models
