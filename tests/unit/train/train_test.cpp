// The training engine: its products against naive loops, every parameter's gradient against
// finite differences, a tiny model driven to near-zero loss on a fixed batch, and an exported
// model giving the inference engine's logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "models/model.h"
#include "train/adamw.h"
#include "train/decoder.h"
#include "train/gemm.h"

namespace hearth::train {
namespace {

TEST(TrainGemm, NtProductsMatchNaiveLoops) {
  ThreadPool pool(2);
  Rng rng(7);
  for (auto [M, N, K] : {std::tuple{1, 1, 1}, {3, 17, 5}, {37, 5, 64}, {64, 70, 129}, {5, 33, 2}}) {
    const size_t lda = size_t(K) + 3, ldb = size_t(K) + 1, ldc = size_t(N) + 2;
    std::vector<float> A(size_t(M) * lda), B(size_t(N) * ldb), C(size_t(M) * ldc, -7.0f);
    for (auto& x : A) x = float(rng.normal());
    for (auto& x : B) x = float(rng.normal());
    gemm_nt(pool, M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc);
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double ref = 0;
        for (int k = 0; k < K; ++k) ref += double(A[m * lda + k]) * B[n * ldb + k];
        ASSERT_NEAR(C[m * ldc + n], ref, 1e-4 * (1 + std::fabs(ref))) << M << "x" << N << "x" << K;
      }
    for (int m = 0; m < M; ++m)  // padding between rows untouched
      for (size_t n = size_t(N); n < ldc; ++n) ASSERT_EQ(C[m * ldc + n], -7.0f);
  }
}

DecoderConfig tiny_config() {
  DecoderConfig c;
  c.n_vocab = 29;
  c.n_embd = 16;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 6;
  c.n_ff = 24;
  c.n_ctx = 64;
  c.tied_output = false;
  return c;
}

struct Data {
  std::vector<int32_t> tokens, targets;
  std::vector<float> weights;
  Batch batch(int64_t n_seq, int64_t n_tok) const {
    return Batch{n_seq, n_tok, tokens.data(), targets.data(), weights.data()};
  }
};

Data random_data(int64_t rows, int64_t n_vocab, uint64_t seed) {
  Rng rng(seed);
  Data d;
  for (int64_t r = 0; r < rows; ++r) {
    d.tokens.push_back(int32_t(rng.next() % uint64_t(n_vocab)));
    d.targets.push_back(int32_t(rng.next() % uint64_t(n_vocab)));
    d.weights.push_back(r % 5 == 3 ? 0.0f : 1.0f);  // some rows masked out, as prompts are
  }
  return d;
}

// Every parameter tensor: the analytic gradient of the mean loss against central differences at
// a few entries. Weights are made larger than the training init so every nonlinearity (softmax,
// SiLU, RMS norm) is away from its linear regime.
void check_gradients(bool tied) {
  ThreadPool pool(2);
  DecoderConfig cfg = tiny_config();
  cfg.tied_output = tied;
  auto m = Decoder::create(cfg, 3);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  Decoder& dec = **m;
  ParamStore& ps = dec.params();
  Rng rng(11);
  for (size_t i = 0; i < ps.size(); ++i) {
    const bool norm = ps.info(i).shape.size() == 1;
    for (size_t j = 0; j < ps.info(i).count; ++j)
      ps.value(i)[j] = norm ? float(1 + 0.2 * rng.normal()) : float(0.35 * rng.normal());
  }
  dec.params_changed(pool);
  const int64_t n_seq = 2, n_tok = 9;
  Data data = random_data(n_seq * n_tok, cfg.n_vocab, 5);
  const Batch b = data.batch(n_seq, n_tok);
  ps.zero_grads();
  auto base = dec.run(pool, b, true, 1.0f);
  ASSERT_TRUE(base.is_ok());
  const double W = base->weight;
  ASSERT_GT(W, 0);
  auto loss_at = [&]() {
    dec.params_changed(pool);
    auto r = dec.run(pool, b, false);
    return r->loss / W;
  };
  int checked = 0;
  double worst = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    const auto& info = ps.info(i);
    for (int s = 0; s < 4; ++s) {
      const size_t j = size_t(rng.next() % info.count);
      float& v = ps.value(i)[j];
      const float keep = v, h = 1e-2f;
      v = keep + h;
      const double up = loss_at();
      v = keep - h;
      const double down = loss_at();
      v = keep;
      const double num = (up - down) / (2 * double(h));
      const double ana = double(ps.grad(i)[j]) / W;
      const double err = std::fabs(num - ana);
      worst = std::max(worst, err / (1e-3 + std::fabs(num)));
      EXPECT_LE(err, 2e-3 + 3e-2 * std::fabs(num))
          << info.name << "[" << j << "]: analytic " << ana << ", numeric " << num;
      ++checked;
    }
  }
  dec.params_changed(pool);
  std::printf("  %d gradient entries checked (tied=%d), worst relative error %.2e\n", checked,
              int(tied), worst);
}

TEST(TrainDecoder, GradientsMatchFiniteDifferences) {
  check_gradients(false);
}
TEST(TrainDecoder, TiedOutputGradientsMatchFiniteDifferences) {
  check_gradients(true);
}

TEST(TrainDecoder, AdamWDrivesAFixedBatchToNearZeroLoss) {
  ThreadPool pool(2);
  DecoderConfig cfg = tiny_config();
  cfg.n_embd = 32;
  cfg.n_ff = 64;
  auto m = Decoder::create(cfg, 1);
  ASSERT_TRUE(m.is_ok());
  Decoder& dec = **m;
  dec.params_changed(pool);
  const int64_t n_seq = 2, n_tok = 16;
  Data data = random_data(n_seq * n_tok, cfg.n_vocab, 9);
  const Batch b = data.batch(n_seq, n_tok);
  AdamW opt(dec.params());
  AdamWOptions o;
  o.lr = 1e-2f;
  o.weight_decay = 0;
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    dec.params().zero_grads();
    auto r = dec.run(pool, b, true, 1.0f / 26.0f);
    ASSERT_TRUE(r.is_ok());
    if (step == 0) first = r->loss / r->weight;
    last = r->loss / r->weight;
    opt.step(pool, dec.params(), o, o.lr);
    dec.params_changed(pool);
  }
  std::printf("  loss %.4f -> %.4f after 300 steps\n", first, last);
  EXPECT_GT(first, 3.0);  // ~ln(29) at the start
  EXPECT_LT(last, 0.05);
}

// The trained model is only useful if the inference engine runs it as training saw it: export
// a model (with the llama fixture's tokenizer) and compare logits at every position.
TEST(TrainDecoder, ExportedModelGivesTheInferenceEnginesLogits) {
  const std::string tok = std::string(HEARTH_SHARED_DIR) + "/fixtures/llama-F16.gguf";
  auto tf = gguf::GgufFile::open(tok);
  ASSERT_TRUE(tf.is_ok());
  auto toks = (*tf)->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(toks.is_ok());
  ThreadPool pool(2);
  DecoderConfig cfg = tiny_config();
  cfg.n_vocab = int64_t(toks->size());
  cfg.n_embd = 64;
  cfg.head_dim = 16;
  cfg.n_ff = 96;
  for (bool tied : {true, false}) {
    cfg.tied_output = tied;
    auto m = Decoder::create(cfg, 21);
    ASSERT_TRUE(m.is_ok());
    Decoder& dec = **m;
    // Larger weights than the init, so the comparison is not between near-uniform outputs.
    Rng rng(4);
    for (size_t i = 0; i < dec.params().size(); ++i)
      if (dec.params().info(i).shape.size() == 2)
        for (size_t j = 0; j < dec.params().info(i).count; ++j)
          dec.params().value(i)[j] = float(0.2 * rng.normal());
    dec.params_changed(pool);
    const std::string path = ::testing::TempDir() + "train_export.gguf";
    ASSERT_TRUE(dec.export_gguf(path, tok, "tiny").is_ok());
    const int n = 12;
    std::vector<int32_t> tokens;
    for (int i = 0; i < n; ++i) tokens.push_back(int32_t((i * 977 + 13) % cfg.n_vocab));
    std::vector<float> ours(size_t(n) * cfg.n_vocab);
    Batch b{1, n, tokens.data(), nullptr, nullptr};
    ASSERT_TRUE(dec.run(pool, b, false, 1, ours.data()).is_ok());

    auto f = gguf::GgufFile::open(path);
    ASSERT_TRUE(f.is_ok()) << f.status().message();
    auto model = models::load_model(*f, pool);
    ASSERT_TRUE(model.is_ok()) << model.status().message();
    models::ContextParams cp;
    cp.n_ctx = 32;
    cp.n_batch = 32;
    cp.kv_type = DType::F32;
    auto ctx = (*model)->new_context(cp, pool);
    ASSERT_TRUE(ctx.is_ok());
    std::vector<models::BatchToken> bt;
    for (int i = 0; i < n; ++i) bt.push_back({tokens[size_t(i)], i, 0, true});
    std::vector<float> theirs(ours.size());
    ASSERT_TRUE((*model)->forward(**ctx, bt, theirs.data()).is_ok());
    double worst = 0;
    for (size_t i = 0; i < ours.size(); ++i)
      worst = std::max(worst, double(std::fabs(ours[i] - theirs[i])));
    std::printf("  tied=%d: max |training - inference| logit %.3g\n", int(tied), worst);
    EXPECT_LT(worst, 1e-3);
    std::filesystem::remove(path);
  }
}

}  // namespace
}  // namespace hearth::train
