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
#include "templates/chat.h"
#include "tokenizer/tokenizer.h"
#include "train/adamw.h"
#include "train/decoder.h"
#include "train/gemm.h"
#include "train/trainer.h"

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

// Max |Δ| between the decoder's logits and the inference engine's for `file`, at every position
// of `tokens` (one sequence, F32 KV cache so only the weights' arithmetic differs).
double max_diff_to_inference(ThreadPool& pool, Decoder& dec,
                             const std::shared_ptr<gguf::GgufFile>& file,
                             const std::vector<int32_t>& tokens) {
  const int64_t n = int64_t(tokens.size()), nv = dec.config().n_vocab;
  std::vector<float> ours(size_t(n * nv));
  Batch b{1, n, tokens.data(), nullptr, nullptr};
  EXPECT_TRUE(dec.run(pool, b, false, 1, ours.data()).is_ok());
  auto model = models::load_model(file, pool);
  EXPECT_TRUE(model.is_ok()) << model.status().message();
  if (!model) return INFINITY;
  models::ContextParams cp;
  cp.n_ctx = 32;
  cp.n_batch = 32;
  cp.kv_type = DType::F32;
  auto ctx = (*model)->new_context(cp, pool);
  EXPECT_TRUE(ctx.is_ok());
  if (!ctx) return INFINITY;
  std::vector<models::BatchToken> bt;
  for (int i = 0; i < int(n); ++i) bt.push_back({tokens[size_t(i)], i, 0, true});
  std::vector<float> theirs(ours.size());
  EXPECT_TRUE((*model)->forward(**ctx, bt, theirs.data()).is_ok());
  double worst = 0;
  for (size_t i = 0; i < ours.size(); ++i)
    worst = std::max(worst, double(std::fabs(ours[i] - theirs[i])));
  return worst;
}

// AdamW (no weight decay, lr 1e-2) on one fixed batch for `steps` steps: the mean loss before
// the first step and at the last.
std::pair<double, double> fit_fixed_batch(ThreadPool& pool, Decoder& dec, const Batch& b,
                                          int steps) {
  AdamW opt(dec.params());
  AdamWOptions o;
  o.lr = 1e-2f;
  o.weight_decay = 0;
  double first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    dec.params().zero_grads();
    auto r = dec.run(pool, b, true, 1.0f / 26.0f);
    EXPECT_TRUE(r.is_ok());
    if (!r) break;
    if (step == 0) first = r->loss / r->weight;
    last = r->loss / r->weight;
    opt.step(pool, dec.params(), o, o.lr);
    dec.params_changed(pool);
  }
  return {first, last};
}

// Every parameter tensor: the analytic gradient of the mean loss against central differences at
// a few entries. Weights are made larger than the training init so every nonlinearity (softmax,
// SiLU, RMS norm) is away from its linear regime.
void check_gradients(bool tied, bool checkpointing) {
  ThreadPool pool(2);
  DecoderConfig cfg = tiny_config();
  cfg.tied_output = tied;
  auto m = Decoder::create(cfg, 3);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  Decoder& dec = **m;
  if (checkpointing) dec.set_activation_budget(0);
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
  EXPECT_EQ(dec.checkpointing(), checkpointing);
  std::printf(
      "  %d gradient entries checked (tied=%d, checkpointing=%d), worst relative error "
      "%.2e\n",
      checked, int(tied), int(checkpointing), worst);
}

TEST(TrainDecoder, GradientsMatchFiniteDifferences) {
  check_gradients(false, false);
}
TEST(TrainDecoder, TiedOutputGradientsMatchFiniteDifferences) {
  check_gradients(true, false);
}
// The backward pass that recomputes each layer from its input gives the same gradients.
TEST(TrainDecoder, CheckpointedGradientsMatchFiniteDifferences) {
  check_gradients(true, true);
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
  const auto [first, last] = fit_fixed_batch(pool, dec, b, 300);
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
    std::vector<int32_t> tokens;
    for (int i = 0; i < 12; ++i) tokens.push_back(int32_t((i * 977 + 13) % cfg.n_vocab));
    auto f = gguf::GgufFile::open(path);
    ASSERT_TRUE(f.is_ok()) << f.status().message();
    const double worst = max_diff_to_inference(pool, dec, *f, tokens);
    std::printf("  tied=%d: max |training - inference| logit %.3g\n", int(tied), worst);
    EXPECT_LT(worst, 1e-3);
    std::filesystem::remove(path);
  }
}

}  // namespace
}  // namespace hearth::train

namespace hearth::train {
namespace {

// A small llama GGUF made by the trainer itself (F32), as a base for LoRA tests.
std::string make_base(ThreadPool& pool, bool tied) {
  const std::string tok = std::string(HEARTH_SHARED_DIR) + "/fixtures/llama-F16.gguf";
  auto tf = gguf::GgufFile::open(tok);
  DecoderConfig cfg = tiny_config();
  cfg.n_vocab = int64_t((*tf)->get_string_array("tokenizer.ggml.tokens")->size());
  cfg.n_embd = 32;
  cfg.head_dim = 8;
  cfg.n_ff = 48;
  cfg.tied_output = tied;
  auto m = Decoder::create(cfg, 5);
  Rng rng(8);
  for (size_t i = 0; i < (*m)->params().size(); ++i)
    if ((*m)->params().info(i).shape.size() == 2)
      for (size_t j = 0; j < (*m)->params().info(i).count; ++j)
        (*m)->params().value(i)[j] = float(0.3 * rng.normal());
  const std::string path = ::testing::TempDir() + (tied ? "lora_base_t.gguf" : "lora_base.gguf");
  EXPECT_TRUE((*m)->export_gguf(path, tok, "base").is_ok());
  return path;
}

// The adapters the gradient checks train: rank 3 on every target, with the exact backward pass
// (F32 transposed copies of the base, not BF16) so finite differences can match it.
LoraOptions gradient_check_lora() {
  LoraOptions lo;
  lo.rank = 3;
  lo.alpha = 6;
  lo.targets = {"q", "k", "v", "o", "gate", "up", "down", "output"};
  lo.exact_backward = true;
  return lo;
}

// Every LoRA matrix of `dec`: `per_tensor` random entries' gradients (one backward pass of b)
// against central finite differences with step h. Returns how many were checked.
int check_lora_gradients(ThreadPool& pool, Decoder& dec, const Batch& b, Rng& rng, int per_tensor,
                         float h) {
  ParamStore& ps = dec.params();
  ps.zero_grads();
  auto base = dec.run(pool, b, true, 1.0f);
  EXPECT_TRUE(base.is_ok());
  if (!base) return 0;
  const double W = base->weight;
  int checked = 0;
  for (size_t i = 0; i < ps.size(); ++i)
    for (int s = 0; s < per_tensor; ++s) {
      const size_t j = size_t(rng.next() % ps.info(i).count);
      float& v = ps.value(i)[j];
      const float keep = v;
      v = keep + h;
      dec.params_changed(pool);
      const double up = dec.run(pool, b, false)->loss / W;
      v = keep - h;
      dec.params_changed(pool);
      const double down = dec.run(pool, b, false)->loss / W;
      v = keep;
      const double num = (up - down) / (2 * double(h)), ana = double(ps.grad(i)[j]) / W;
      EXPECT_LE(std::fabs(num - ana), 2e-3 + 3e-2 * std::fabs(num))
          << ps.info(i).name << "[" << j << "]: analytic " << ana << ", numeric " << num;
      ++checked;
    }
  dec.params_changed(pool);
  return checked;
}

TEST(TrainLora, GradientsOfEveryLoraMatrixMatchFiniteDifferences) {
  ThreadPool pool(2);
  auto f = gguf::GgufFile::open(make_base(pool, false));
  ASSERT_TRUE(f.is_ok());
  auto m = Decoder::with_lora(*f, pool, gradient_check_lora());
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  Decoder& dec = **m;
  ParamStore& ps = dec.params();
  EXPECT_EQ(ps.size(), 2u * (7 * 2 + 1));  // A and B per adapted matrix
  Rng rng(2);
  for (auto& v : ps.values) v = float(0.3 * rng.normal());  // B non-zero, so dA is too
  dec.params_changed(pool);
  const int64_t n_seq = 2, n_tok = 7;
  Data data = random_data(n_seq * n_tok, dec.config().n_vocab, 6);
  const Batch b = data.batch(n_seq, n_tok);
  const int checked = check_lora_gradients(pool, dec, b, rng, 3, 1e-2f);
  std::printf("  %d LoRA gradient entries checked\n", checked);
}

TEST(TrainLora, StartsAsTheBaseAndLearnsAFixedBatchOnAQuantizedBase) {
  ThreadPool pool(2);
  auto f = gguf::GgufFile::open(std::string(HEARTH_SHARED_DIR) + "/fixtures/llama-Q4_K_M.gguf");
  ASSERT_TRUE(f.is_ok());
  LoraOptions lo;
  lo.rank = 8;
  auto m = Decoder::with_lora(*f, pool, lo);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  Decoder& dec = **m;
  // B = 0: the adapted model's logits are the inference engine's for the base.
  std::vector<int32_t> tokens;
  for (int i = 0; i < 10; ++i) tokens.push_back(int32_t((i * 613 + 7) % dec.config().n_vocab));
  const double worst = max_diff_to_inference(pool, dec, *f, tokens);
  std::printf("  base logits: max |training - inference| %.3g\n", worst);
  EXPECT_LT(worst, 1e-3);

  // Then only the adapter trains: a fixed batch is learnt (BF16 backward through the base).
  Data data = random_data(2 * 16, dec.config().n_vocab, 12);
  const Batch b = data.batch(2, 16);
  const auto [first, last] = fit_fixed_batch(pool, dec, b, 60);
  std::printf("  LoRA on Q4_K_M: loss %.3f -> %.3f in 60 steps\n", first, last);
  EXPECT_LT(last, 0.25 * first);
  const std::string path = ::testing::TempDir() + "lora_out.gguf";
  ASSERT_TRUE(dec.export_adapter(path).is_ok());
  auto a = gguf::GgufFile::open(path);
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(*(*a)->get_string("general.type"), "adapter");
  EXPECT_NE((*a)->find_tensor("blk.1.ffn_down.weight.lora_b"), nullptr);
  std::filesystem::remove(path);
}

// make_base's model rewritten as a qwen2 (random q/k/v biases) or qwen3 (random per-head q/k
// norm weights) GGUF: the same matrices, the architecture's keys and extra tensors.
std::string make_qwen_base(ThreadPool& pool, const std::string& arch) {
  auto f = gguf::GgufFile::open(make_base(pool, false));
  EXPECT_TRUE(f.is_ok());
  gguf::GgufWriter w;
  for (const auto& e : (*f)->metadata()) {
    std::string key(e.key);
    if (key == "general.architecture") continue;
    if (key.rfind("llama.", 0) == 0) key = arch + key.substr(5);
    w.copy_value(key, e.value);
  }
  w.set_string("general.architecture", arch);
  for (const auto& t : (*f)->tensors())
    EXPECT_TRUE(w.add_tensor(std::string(t.name), t.type, t.shape, t.data, t.nbytes).is_ok());
  const DecoderConfig c = tiny_config();
  const int64_t hd = 8, qd = c.n_head * hd, kd = c.n_head_kv * hd;
  static std::vector<std::vector<float>> keep;  // alive until write()
  keep.clear();
  Rng rng(arch == "qwen2" ? 21 : 23);
  auto add = [&](const std::string& name, int64_t n, double mean) {
    keep.emplace_back(size_t(n));
    for (float& v : keep.back()) v = float(mean + 0.3 * rng.normal());
    EXPECT_TRUE(
        w.add_tensor(name, DType::F32, {n}, keep.back().data(), size_t(n) * sizeof(float)).is_ok());
  };
  keep.reserve(size_t(4 * c.n_layer));
  for (int il = 0; il < int(c.n_layer); ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    if (arch == "qwen2") {
      add(p + "attn_q.bias", qd, 0);
      add(p + "attn_k.bias", kd, 0);
      add(p + "attn_v.bias", kd, 0);
    } else {
      add(p + "attn_q_norm.weight", hd, 1);
      add(p + "attn_k_norm.weight", hd, 1);
    }
  }
  const std::string path = ::testing::TempDir() + "lora_base_" + arch + ".gguf";
  EXPECT_TRUE(w.write(path).is_ok());
  return path;
}

// qwen2 and qwen3 bases: the adapted model starts as the inference engine's model (NEOX RoPE,
// biases, q/k norms), its LoRA gradients match finite differences, and a fixed batch is learnt.
TEST(TrainLora, QwenBasesMatchInferenceAndTheirGradientsMatchFiniteDifferences) {
  ThreadPool pool(2);
  for (const std::string arch : {"qwen2", "qwen3"}) {
    SCOPED_TRACE(arch);
    auto f = gguf::GgufFile::open(make_qwen_base(pool, arch));
    ASSERT_TRUE(f.is_ok());
    auto m = Decoder::with_lora(*f, pool, gradient_check_lora());
    ASSERT_TRUE(m.is_ok()) << m.status().message();
    Decoder& dec = **m;
    std::vector<int32_t> tokens;
    for (int i = 0; i < 12; ++i) tokens.push_back(int32_t((i * 613 + 7) % dec.config().n_vocab));
    const double worst = max_diff_to_inference(pool, dec, *f, tokens);
    std::printf("  %s base logits: max |training - inference| %.3g\n", arch.c_str(), worst);
    EXPECT_LT(worst, 1e-3);

    ParamStore& ps = dec.params();
    Rng rng(3);
    for (auto& v : ps.values) v = float(0.3 * rng.normal());
    dec.params_changed(pool);
    const int64_t n_seq = 2, n_tok = 7;
    Data data = random_data(n_seq * n_tok, dec.config().n_vocab, 9);
    const Batch b = data.batch(n_seq, n_tok);
    // q/k norms curve the loss: a step of 1e-2 leaves truncation error.
    const int checked = check_lora_gradients(pool, dec, b, rng, 2, 3e-3f);
    const auto [first, last] = fit_fixed_batch(pool, dec, b, 80);
    std::printf("  %s: %d LoRA gradient entries checked; fixed batch loss %.3f -> %.3f\n",
                arch.c_str(), checked, first, last);
    EXPECT_LT(last, 0.25 * first);
    std::filesystem::remove(std::string((*f)->name()));
  }
}

TEST(TrainLora, RefusesWhatItCannotTrain) {
  ThreadPool pool(2);
  auto q = gguf::GgufFile::open(std::string(HEARTH_SHARED_DIR) + "/fixtures/qwen3moe-F16.gguf");
  ASSERT_TRUE(q.is_ok());
  auto r = Decoder::with_lora(*q, pool, LoraOptions{});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("qwen3moe"), std::string::npos) << r.status().message();
  auto l = gguf::GgufFile::open(make_base(pool, true));
  LoraOptions bad;
  bad.targets = {"q", "attn"};
  auto r2 = Decoder::with_lora(*l, pool, bad);
  ASSERT_FALSE(r2.is_ok());
  EXPECT_NE(r2.status().message().find("attn"), std::string::npos);
  LoraOptions tied;
  tied.targets = {"output"};
  EXPECT_FALSE(Decoder::with_lora(*l, pool, tied).is_ok());
}

}  // namespace
}  // namespace hearth::train

namespace hearth::train {
namespace {

struct Rendered {
  std::string weighted, all;
};
Rendered render(const std::string& fixture, const nlohmann::ordered_json& msgs) {
  auto f = gguf::GgufFile::open(std::string(HEARTH_SHARED_DIR) + "/fixtures/" + fixture);
  auto tok = tokenizer::Tokenizer::from_gguf(**f);
  auto tmpl = templates::jinja_chat_template(**f);
  EXPECT_TRUE(tmpl.is_ok());
  auto s = render_conversation(**tok, *tmpl, msgs);
  EXPECT_TRUE(s.is_ok()) << s.status().message();
  Rendered r;
  if (!s) return r;
  EXPECT_EQ(s->tokens.size(), s->weights.size());
  for (size_t i = 0; i < s->tokens.size(); ++i) {
    const std::string p = (*tok)->piece(s->tokens[i]);
    r.all += p;
    if (s->weights[i] > 0) r.weighted += p;
  }
  return r;
}

const char* kChat = R"([
    {"role":"system","content":"Be brief."},
    {"role":"user","content":"Name a colour."},
    {"role":"assistant","content":"Green."},
    {"role":"user","content":"Another?"},
    {"role":"assistant","content":"Red."}])";

TEST(TrainData, ChatIsRenderedTurnByTurnWithLossOnlyOnAssistantTurns) {
  const auto msgs = nlohmann::ordered_json::parse(kChat);
  // Llama 3's template renders a growing prefix: one sequence, exactly the served text.
  Rendered l = render("llama-F16.gguf", msgs);
  EXPECT_EQ(l.weighted, "Green.<|eot_id|>Red.<|eot_id|>");
  auto f = gguf::GgufFile::open(std::string(HEARTH_SHARED_DIR) + "/fixtures/llama-F16.gguf");
  templates::ChatInput in;
  in.messages = msgs;
  in.add_generation_prompt = false;
  EXPECT_EQ(l.all, *templates::render_jinja_chat(*templates::jinja_chat_template(**f), in));
  // Qwen 3's rewrites earlier turns: a sequence per answer, the history as the template shows it.
  Rendered q = render("qwen2-F16.gguf", msgs);
  EXPECT_NE(q.weighted.find("Green.<|im_end|>"), std::string::npos) << q.weighted;
  EXPECT_NE(q.weighted.find("Red.<|im_end|>"), std::string::npos) << q.weighted;
  EXPECT_EQ(q.weighted.find("colour"), std::string::npos) << q.weighted;
  EXPECT_EQ(q.weighted.find("Another"), std::string::npos) << q.weighted;

  auto f2 = gguf::GgufFile::open(std::string(HEARTH_SHARED_DIR) + "/fixtures/llama-F16.gguf");
  auto tok = tokenizer::Tokenizer::from_gguf(**f2);
  auto tmpl = templates::jinja_chat_template(**f2);
  EXPECT_FALSE(
      render_conversation(**tok, *tmpl, nlohmann::ordered_json::parse(R"([{"role":"user"}])"))
          .is_ok());
  EXPECT_FALSE(
      render_conversation(**tok, *tmpl,
                          nlohmann::ordered_json::parse(R"([{"role":"user","content":"hi"}])"))
          .is_ok());  // nothing to learn
}

TEST(TrainLoop, AResumedRunEndsWhereAnUninterruptedOneDoes) {
  ThreadPool pool(2);
  DecoderConfig cfg = tiny_config();
  Dataset data;
  Rng rng(3);
  for (int i = 0; i < 400; ++i) {
    data.train.tokens.push_back(int32_t(rng.next() % uint64_t(cfg.n_vocab)));
    data.train.weights.push_back(i % 7 == 0 ? 0.0f : 1.0f);
  }
  TrainOptions o;
  o.n_seq = 2;
  o.n_tok = 8;
  o.grad_accum = 2;
  o.steps = 6;
  o.warmup = 2;
  auto straight = Decoder::create(cfg, 1);
  Trainer t1(**straight, o);
  ASSERT_TRUE(t1.run(pool, data, nullptr).is_ok());

  const std::string ckpt = ::testing::TempDir() + "train_ckpt.gguf";
  auto first = Decoder::create(cfg, 1);
  TrainOptions half = o;
  half.checkpoint = ckpt;
  Trainer t2(**first, half);
  ASSERT_TRUE(t2.run(pool, data, [](const Progress& p) { return p.step < 3; }).is_ok());
  EXPECT_EQ(t2.step(), 3);
  auto second = Decoder::create(cfg, 99);  // other initial weights: all must come from the file
  Trainer t3(**second, o);
  ASSERT_TRUE(t3.resume(ckpt).is_ok());
  ASSERT_TRUE(t3.run(pool, data, nullptr).is_ok());
  EXPECT_EQ((*second)->params().values, (*straight)->params().values);
  std::filesystem::remove(ckpt);
}

}  // namespace
}  // namespace hearth::train
