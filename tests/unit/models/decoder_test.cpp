// Properties of the dense decoder (llama/qwen2/qwen3) on the shared fixtures: batched prefill
// equals one-token decode steps, sequences in one batch do not interact, and a file with a
// missing or mis-shaped tensor is refused with an error that names it.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "models/model.h"

namespace hearth::models {
namespace {

const std::string kFixtures = std::string(HEARTH_SHARED_DIR) + "/fixtures/";

struct Loaded {
  std::shared_ptr<gguf::GgufFile> file;
  std::unique_ptr<Model> model;
};

Loaded load(const std::string& name, ThreadPool& pool) {
  Loaded l;
  auto f = gguf::GgufFile::open(kFixtures + name);
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  if (!f) return l;
  l.file = *f;
  auto m = load_model(l.file, pool);
  EXPECT_TRUE(m.is_ok()) << m.status().message();
  if (m) l.model = std::move(*m);
  return l;
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float d = 0;
  for (size_t i = 0; i < n; ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

const std::vector<int32_t> kPrompt = {4096, 791, 4062, 293, 654, 77, 282, 78, 87, 503, 1538, 82};

class DecoderProps : public ::testing::TestWithParam<const char*> {};

TEST_P(DecoderProps, PrefillEqualsStepByStepDecode) {
  ThreadPool pool(2);
  auto l = load(GetParam(), pool);
  ASSERT_TRUE(l.model);
  const int64_t nv = l.model->config().n_vocab;
  const int n = int(kPrompt.size());
  ContextParams cp;
  cp.n_ctx = 64;
  cp.n_batch = 16;
  auto c1 = l.model->new_context(cp, pool);
  auto c2 = l.model->new_context(cp, pool);
  ASSERT_TRUE(c1.is_ok() && c2.is_ok());
  std::vector<BatchToken> batch;
  for (int i = 0; i < n; ++i) batch.push_back({kPrompt[i] % int32_t(nv), i, 0, true});
  std::vector<float> all(static_cast<size_t>(n * nv)), step(static_cast<size_t>(nv));
  ASSERT_TRUE(l.model->forward(**c1, batch, all.data()).is_ok());
  for (int i = 0; i < n; ++i) {
    BatchToken b = batch[i];
    ASSERT_TRUE(l.model->forward(**c2, std::span<const BatchToken>(&b, 1), step.data()).is_ok());
    EXPECT_LT(max_abs_diff(all.data() + size_t(i) * nv, step.data(), size_t(nv)), 2e-3f)
        << "position " << i;
  }
}

TEST_P(DecoderProps, SequencesInOneBatchAreIndependent) {
  ThreadPool pool(2);
  auto l = load(GetParam(), pool);
  ASSERT_TRUE(l.model);
  const int64_t nv = l.model->config().n_vocab;
  ContextParams cp;
  cp.n_ctx = 32;
  cp.n_seq = 2;
  cp.n_batch = 32;
  auto ctx = l.model->new_context(cp, pool);
  ASSERT_TRUE(ctx.is_ok());
  // Sequence 0 gets the prompt, sequence 1 a different one, interleaved in one batch.
  std::vector<BatchToken> batch;
  const int n = 6;
  for (int i = 0; i < n; ++i) {
    batch.push_back({kPrompt[i] % int32_t(nv), i, 0, i == n - 1});
    batch.push_back({kPrompt[i + 6] % int32_t(nv), i, 1, i == n - 1});
  }
  // Interleaving breaks runs into single tokens, so attention sees each sequence's own cache.
  std::vector<float> both(2 * size_t(nv));
  ASSERT_TRUE(l.model->forward(**ctx, batch, both.data()).is_ok());

  auto alone = l.model->new_context(cp, pool);
  std::vector<BatchToken> b0;
  for (int i = 0; i < n; ++i) b0.push_back({kPrompt[i] % int32_t(nv), i, 0, i == n - 1});
  std::vector<float> single(static_cast<size_t>(nv));
  ASSERT_TRUE(l.model->forward(**alone, b0, single.data()).is_ok());
  EXPECT_LT(max_abs_diff(both.data(), single.data(), size_t(nv)), 2e-3f);
}

TEST_P(DecoderProps, RejectsBadBatches) {
  ThreadPool pool(1);
  auto l = load(GetParam(), pool);
  ASSERT_TRUE(l.model);
  ContextParams cp;
  cp.n_ctx = 8;
  cp.n_batch = 4;
  auto ctx = l.model->new_context(cp, pool);
  std::vector<float> out(size_t(l.model->config().n_vocab));
  BatchToken bad_tok{int32_t(l.model->config().n_vocab), 0, 0, true};
  EXPECT_FALSE(l.model->forward(**ctx, std::span<const BatchToken>(&bad_tok, 1), out.data()));
  BatchToken bad_pos{1, 8, 0, true};
  EXPECT_FALSE(l.model->forward(**ctx, std::span<const BatchToken>(&bad_pos, 1), out.data()));
  std::vector<BatchToken> too_many(5, BatchToken{1, 0, 0, false});
  for (int i = 0; i < 5; ++i) too_many[i].pos = i;
  EXPECT_FALSE(l.model->forward(**ctx, too_many, out.data()));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DecoderProps,
                         ::testing::Values("llama-F16.gguf", "qwen2-F16.gguf", "qwen3-F16.gguf"));

// Rewrites a fixture without one tensor, or with one tensor's shape changed.
std::vector<uint8_t> rewrite(const gguf::GgufFile& f, const std::string& drop,
                             const std::string& reshape) {
  gguf::GgufWriter w;
  for (const auto& e : f.metadata()) w.copy_value(std::string(e.key), e.value);
  for (const auto& t : f.tensors()) {
    if (t.name == drop) continue;
    auto shape = t.shape;
    if (t.name == reshape) {
      std::swap(shape[0], shape[1]);
      if (shape[0] == shape[1]) shape[0] /= 2, shape[1] *= 2;
    }
    EXPECT_TRUE(w.add_tensor(std::string(t.name), t.type, shape, t.data, t.nbytes).is_ok());
  }
  return w.to_bytes();
}

TEST(DecoderLoad, MissingTensorIsNamed) {
  ThreadPool pool(1);
  auto f = gguf::GgufFile::open(kFixtures + "llama-F16.gguf");
  ASSERT_TRUE(f.is_ok());
  auto bytes = rewrite(**f, "blk.1.ffn_up.weight", "");
  auto g = gguf::GgufFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  auto m = load_model(*g, pool);
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("blk.1.ffn_up.weight"), std::string::npos)
      << m.status().message();
}

TEST(DecoderLoad, MisShapedTensorIsNamed) {
  ThreadPool pool(1);
  auto f = gguf::GgufFile::open(kFixtures + "qwen3-F16.gguf");
  ASSERT_TRUE(f.is_ok());
  auto bytes = rewrite(**f, "", "blk.0.attn_k.weight");
  auto g = gguf::GgufFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  auto m = load_model(*g, pool);
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("blk.0.attn_k.weight"), std::string::npos)
      << m.status().message();
}

TEST(DecoderLoad, UnknownArchitectureIsNamed) {
  ThreadPool pool(1);
  gguf::GgufWriter w;
  w.set_string("general.architecture", "mamba9");
  auto bytes = w.to_bytes();
  auto g = gguf::GgufFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(g.is_ok());
  auto m = load_model(*g, pool);
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("mamba9"), std::string::npos);
  EXPECT_NE(m.status().message().find("qwen3"), std::string::npos);  // lists supported ones
}

}  // namespace
}  // namespace hearth::models
