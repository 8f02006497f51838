// Properties of the decoder on the shared fixtures of all nine architectures (llama, qwen2, qwen3,
// qwen3moe, gemma3, gemma4, llama4 and the qwen35 hybrids; F16 plus a few quantized files):
// batched prefill equals one-token decode steps, sequences in one batch do not interact, and a file
// with a missing or mis-shaped tensor is refused with an error that names it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "base/cpu_features.h"
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

// 40 tokens: longer than the Gemma fixtures' sliding window (16), and, prefilled in batches of
// 16 with n_ctx 96, long enough to wrap their sliding layers' KV ring (window + n_batch = 32 rows,
// used because 96 > 2 * 32).
const std::vector<int32_t> kLongPrompt = {4096, 791, 4062, 293, 654,  77,   282,  78,   87,  503,
                                          1538, 82,  311,  264, 1917, 13,   40,   1093, 279, 3363,
                                          2049, 55,  3021, 9,   612,  2830, 3005, 17,   398, 1200,
                                          64,   777, 2500, 31,  4000, 5,    888,  1999, 420, 3333};

// How far batched prefill may be from one-token decode steps (max |Δ| of logits), per fixture.
// Measured on a Zen 4 EPYC over the 40 positions at HEARTH_ISA=avx512, avx2 and generic:
//  * F16, non-hybrid (llama, qwen2, qwen3, qwen3moe, gemma3, gemma4, llama4): 0. Every kernel
//    computes a token's row in the same order whatever the batch size (F16 matmuls per row with
//    F16 activations, attention per query), so the two runs are bit-identical at every ISA
//    level, MoE routing included. A kernel change that sums a row in a batch-dependent order
//    breaks this on purpose; then allow one flipped F16 rounding (2e-3, as on AMX below). On
//    CPUs with AMX (not measured) F16 weights take F32 activations (quant/float_types.cpp), so
//    there 2e-3: the size of one flipped F16 rounding of an activation or cached K/V value.
//  * F16 qwen35, qwen35moe: 5e-3. Their DeltaNet layers run the chunked form for a batch and the
//    recurrent one per token; the ~1e-7 float difference flips an F16 rounding of an activation
//    now and then, which moves these logits by up to 3.3e-3 (qwen35; qwen35moe 1.5e-3). With F32
//    weights the two forms agree to 1e-5 (see test_live).
//  * quantized (Q8_0, Q4_K_M): 0.15. Activations are rounded to 8 bits per block before each
//    quantized matmul, and the batched K-quant / Q8_0 kernels of avx2 and avx512 sum in another
//    order than the decode ones (up to ~1e-6). Mostly that changes nothing, but once in a while
//    it flips the 8-bit rounding of one activation (a step of ~1/127 of its block's largest
//    value), which moves every later logit by a few 1e-2: llama-Q4_K_M 0.076, qwen3moe-Q4_K_M
//    0.064, gemma4-Q8_0 0.034 (avx2), llama-Q8_0 5e-7 (avx2) and 0 (avx512, generic). The
//    hybrids flip this way at every ISA level (DeltaNet noise as above): qwen35-Q8_0 0.093,
//    qwen35moe-Q4_K_M 0.047. That is the size of quantization noise itself (Q8_0 vs F16 differ
//    by 0.03-0.25 on these models, fixtures/MANIFEST.md), so nothing tighter is honest; 0.15
//    still catches a prefill kernel that gets a tile or a tail wrong (errors of order 1).
float prefill_tolerance(const std::string& name) {
  if (name.find("-F16") == std::string::npos) return 0.15f;
  if (name.rfind("qwen35", 0) == 0) return 5e-3f;
  const auto& cpu = cpu_features();
  return cpu.amx_tile || cpu.amx_int8 ? 2e-3f : 0.0f;
}

// A mixture-of-experts token whose router margin (Context::router_margins(): the gap between the
// last expert chosen and the best one left out, smallest over the MoE layers) is below this is a
// near-tie: the float noise between the batched and the stepwise run (above) may pick a different
// expert there, which changes that token's output by far more than any tolerance. 1e-3 is ~10x
// the largest difference between the two runs' margins measured on the F16 files (qwen35moe:
// 1e-4; qwen3moe and llama4 are bit-identical). On these fixtures the smallest margins over the
// 40 positions are 1.3e-4 (qwen35moe, position 5: both runs still bit-identical there, so the
// comparison goes on), 7e-3 (llama4) and 1e-2 (qwen3moe).
constexpr float kNearTie = 1e-3f;

class DecoderProps : public ::testing::TestWithParam<const char*> {};

TEST_P(DecoderProps, PrefillEqualsStepByStepDecode) {
  ThreadPool pool(2);
  auto l = load(GetParam(), pool);
  ASSERT_TRUE(l.model);
  const int64_t nv = l.model->config().n_vocab;
  const int n = int(kLongPrompt.size());
  ContextParams cp;
  cp.n_ctx = 96;
  cp.n_batch = 16;
  auto c1 = l.model->new_context(cp, pool);
  auto c2 = l.model->new_context(cp, pool);
  ASSERT_TRUE(c1.is_ok() && c2.is_ok());
  std::vector<BatchToken> batch;
  for (int i = 0; i < n; ++i) batch.push_back({kLongPrompt[i] % int32_t(nv), i, 0, true});
  // Prefill in batches of n_batch (16, 16, 8): the later batches attend to what the earlier ones
  // cached, as a long prompt does.
  std::vector<float> all(static_cast<size_t>(n * nv)), step(static_cast<size_t>(nv));
  std::vector<float> margin_batch, margin_step;  // empty for models without experts
  for (int s = 0; s < n; s += cp.n_batch) {
    const int e = std::min(n, s + cp.n_batch);
    ASSERT_TRUE(l.model
                    ->forward(**c1, std::span<const BatchToken>(batch.data() + s, size_t(e - s)),
                              all.data() + size_t(s) * nv)
                    .is_ok());
    auto m = (*c1)->router_margins();
    margin_batch.insert(margin_batch.end(), m.begin(), m.end());
  }
  const float tol = prefill_tolerance(GetParam());
  float worst = 0;
  int compared = 0;
  for (int i = 0; i < n; ++i) {
    BatchToken b = batch[i];
    ASSERT_TRUE(l.model->forward(**c2, std::span<const BatchToken>(&b, 1), step.data()).is_ok());
    auto m = (*c2)->router_margins();
    margin_step.insert(margin_step.end(), m.begin(), m.end());
    const float d = max_abs_diff(all.data() + size_t(i) * nv, step.data(), size_t(nv));
    // At a near-tie the two runs may route this token to different experts. If they did (its
    // logits differ), this position is no evidence of an error, and every later one inherits
    // the difference through attention (and recurrent state), so the comparison stops there.
    // If the logits agree, the same experts ran and the comparison goes on.
    const bool near_tie = size_t(i) < margin_batch.size() && size_t(i) < margin_step.size() &&
                          std::min(margin_batch[size_t(i)], margin_step[size_t(i)]) < kNearTie;
    if (near_tie && d > tol) {
      std::printf(
          "  %s: experts flipped at a near-tie at position %d (margin %g); positions %d.."
          "%d not compared\n",
          GetParam(), i, double(std::min(margin_batch[size_t(i)], margin_step[size_t(i)])), i,
          n - 1);
      break;
    }
    EXPECT_LE(d, tol) << "position " << i;
    worst = std::max(worst, d);
    ++compared;
  }
  std::printf("  %s: max |prefill - decode| %g over %d positions (tolerance %g)\n", GetParam(),
              double(worst), compared, double(tol));
  EXPECT_GE(compared, n / 2) << "too few positions before a near-tie to mean anything";
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
  const float tol = prefill_tolerance(GetParam());  // the same float noise as above
  const float d = max_abs_diff(both.data(), single.data(), size_t(nv));
  std::printf("  %s: max |interleaved - alone| %g (tolerance %g)\n", GetParam(), double(d),
              double(tol));
  EXPECT_LE(d, tol);
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

// Every architecture in F16; the quantized batched kernels (Q8_0, K-quants) on a dense model, a
// MoE, Gemma 4 and both hybrids.
INSTANTIATE_TEST_SUITE_P(Fixtures, DecoderProps,
                         ::testing::Values("llama-F16.gguf", "qwen2-F16.gguf", "qwen3-F16.gguf",
                                           "qwen35-F16.gguf", "qwen35moe-F16.gguf",
                                           "qwen3moe-F16.gguf", "gemma3-F16.gguf",
                                           "gemma4-F16.gguf", "llama4-F16.gguf", "llama-Q8_0.gguf",
                                           "llama-Q4_K_M.gguf", "qwen3moe-Q4_K_M.gguf",
                                           "gemma4-Q8_0.gguf", "qwen35-Q8_0.gguf",
                                           "qwen35moe-Q4_K_M.gguf"));

// A hybrid's recurrent state cannot be rewound: continuing anywhere but where it stopped is an
// error; position 0 starts over (the same logits as a fresh context); the prompt cache may keep
// a prefix only when it is everything the sequence holds.
TEST(DecoderHybrid, RecurrentStateContinuesOrRestarts) {
  ThreadPool pool(2);
  auto l = load("qwen35-F16.gguf", pool);
  ASSERT_TRUE(l.model);
  const int64_t nv = l.model->config().n_vocab;
  ContextParams cp;
  cp.n_ctx = 32;
  cp.n_batch = 16;
  auto ctx = l.model->new_context(cp, pool);
  ASSERT_TRUE(ctx.is_ok());
  std::vector<BatchToken> batch;
  for (int i = 0; i < 6; ++i) batch.push_back({kPrompt[i] % int32_t(nv), i, 0, i == 5});
  std::vector<float> a(static_cast<size_t>(nv)), b(static_cast<size_t>(nv));
  ASSERT_TRUE(l.model->forward(**ctx, batch, a.data()).is_ok());
  EXPECT_EQ((*ctx)->reusable_prefix(0, 6, 6), 6);
  EXPECT_EQ((*ctx)->reusable_prefix(0, 6, 4), 0);
  BatchToken rewind{1, 3, 0, true};
  auto st = l.model->forward(**ctx, std::span<const BatchToken>(&rewind, 1), b.data());
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("recurrent state holds 6 positions"), std::string::npos)
      << st.message();
  ASSERT_TRUE(l.model->forward(**ctx, batch, b.data()).is_ok());  // from position 0 again
  EXPECT_EQ(max_abs_diff(a.data(), b.data(), size_t(nv)), 0.0f);
}

// The memory estimate from metadata alone equals what the loaded model reports; DeltaNet layers
// hold a fixed-size state, so only the attention layers grow with the context.
TEST(DecoderHybrid, StateEstimateFromMetadata) {
  ThreadPool pool(1);
  for (const char* name : {"qwen35-F16.gguf", "qwen35moe-F16.gguf", "gemma3-F16.gguf",
                           "llama-F16.gguf", "gemma4-F16.gguf"}) {
    auto l = load(name, pool);
    ASSERT_TRUE(l.model) << name;
    for (int n_ctx : {256, 4096, 65536}) {
      ContextParams cp;
      cp.n_ctx = n_ctx;
      auto est = estimate_state_bytes(*l.file, cp);
      ASSERT_TRUE(est.is_ok()) << est.status().message();
      EXPECT_EQ(*est, l.model->state_bytes(cp)) << name << " n_ctx " << n_ctx;
    }
  }
  auto l = load("qwen35-F16.gguf", pool);  // 3 DeltaNet layers, 1 attention layer (2 KV heads)
  ASSERT_TRUE(l.model);
  ContextParams small, big;
  small.n_ctx = 1024;
  big.n_ctx = 2048;
  const size_t attn_row = 2 * size_t(2 * 64 * 2);  // K and V rows of 2 heads x 64, F16
  EXPECT_EQ(l.model->state_bytes(big) - l.model->state_bytes(small), 1024 * attn_row);
  // DeltaNet state per layer: conv history 3 x (2*2*64 + 4*64) and 4 heads of 64 x 64, F32.
  const size_t dn = (3 * (2 * 2 * 64 + 4 * 64) + 4 * 64 * 64) * sizeof(float);
  EXPECT_EQ(l.model->state_bytes(small), 3 * dn + 1024 * attn_row);
}

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
