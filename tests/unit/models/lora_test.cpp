// LoRA adapters (gguf/lora_format.h, models/lora.h): the reader's errors on bad files, the
// low-rank update of the matmul hook against the scalar reference (every row, a subset of rows
// gathered, the output head's rows, two adapters at per-row scales), and rows of one batch
// using different adapters giving what each gives alone.
#include "models/lora.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "gguf/lora_format.h"
#include "models/context.h"
#include "runtime/session.h"

namespace hearth::models {
namespace {

const std::string kModel = std::string(HEARTH_SHARED_DIR) + "/fixtures/llama-F16.gguf";

struct Fixture {
  std::unique_ptr<runtime::Engine> eng;
  std::string dir;
  Fixture() {
    runtime::EngineOptions eo;
    eo.n_threads = 2;
    eo.repack = false;
    eng = runtime::Engine::load(kModel, eo).value();
    dir = ::testing::TempDir() + "hearth-lora-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
  const Model& model() const { return eng->model(); }
};

// A random F32 adapter on `names`, rank R (B rows scaled so the update is about 0.5 per output).
struct Built {
  lora::LoraFileSpec spec;
  std::vector<std::vector<float>> data;
};
Built random_spec(const Model& m, const std::vector<std::string>& names, int64_t R, float alpha,
                  uint64_t seed) {
  Built b;
  b.spec.arch = m.config().arch;
  b.spec.alpha = alpha;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0, 1);
  b.data.reserve(names.size() * 2);
  for (const std::string& n : names) {
    const gguf::TensorInfo* t = m.file().find_tensor(n);
    lora::LoraPairData p;
    p.base = n;
    const bool embd = n == lora::kTokenEmbd;
    p.a_shape = embd ? std::vector<int64_t>{t->shape[0], R} : std::vector<int64_t>{R, t->shape[1]};
    p.b_shape = embd ? std::vector<int64_t>{t->shape[1], R} : std::vector<int64_t>{t->shape[0], R};
    for (auto* sh : {&p.a_shape, &p.b_shape}) {
      std::vector<float> v(size_t((*sh)[0] * (*sh)[1]));
      const float sd = sh == &p.a_shape ? 1.0f / std::sqrt(float(t->shape[1])) : 0.5f;
      for (float& x : v) x = nd(rng) * sd;
      b.data.push_back(std::move(v));
    }
    p.a = b.data[b.data.size() - 2].data();
    p.a_bytes = b.data[b.data.size() - 2].size() * 4;
    p.b = b.data.back().data();
    p.b_bytes = b.data.back().size() * 4;
    b.spec.pairs.push_back(std::move(p));
  }
  return b;
}

std::string error_of(Fixture& f, const lora::LoraFileSpec& spec, const std::string& file) {
  const std::string path = f.dir + "/" + file;
  EXPECT_TRUE(lora::write_lora_adapter(path, spec).is_ok());
  auto ad = LoraAdapter::load(path, f.model(), f.eng->pool());
  return ad.is_ok() ? std::string() : ad.status().message();
}

TEST(Lora, ReaderRejectsBadFiles) {
  Fixture f;
  const std::vector<std::string> names{"blk.0.attn_q.weight", "blk.1.ffn_down.weight"};
  {  // a good one loads
    Built b = random_spec(f.model(), names, 4, 8, 1);
    EXPECT_EQ(error_of(f, b.spec, "good.gguf"), "");
  }
  {  // another architecture
    Built b = random_spec(f.model(), names, 4, 8, 1);
    b.spec.arch = "qwen3";
    const std::string e = error_of(f, b.spec, "arch.gguf");
    EXPECT_NE(e.find("made for architecture 'qwen3', but the base model is 'llama'"),
              std::string::npos)
        << e;
  }
  {  // B with the wrong number of rows
    Built b = random_spec(f.model(), names, 4, 8, 1);
    b.spec.pairs[1].b_shape[0] -= 1;
    b.spec.pairs[1].b_bytes -= 4 * 4;
    const std::string e = error_of(f, b.spec, "shape.gguf");
    EXPECT_NE(e.find("'blk.1.ffn_down.weight'"), std::string::npos) << e;
    EXPECT_NE(e.find("needs lora_a"), std::string::npos) << e;
  }
  {  // lora_a stored transposed: the hint says so
    Built b = random_spec(f.model(), names, 4, 8, 1);
    std::swap(b.spec.pairs[0].a_shape[0], b.spec.pairs[0].a_shape[1]);
    const std::string e = error_of(f, b.spec, "transposed.gguf");
    EXPECT_NE(e.find("lora_a is transposed"), std::string::npos) << e;
  }
  {  // a half without its pair
    Built b = random_spec(f.model(), names, 4, 8, 1);
    gguf::GgufWriter w;
    w.set_string(lora::kKeyGeneralType, "adapter");
    w.set_string(lora::kKeyArchitecture, "llama");
    w.set_string(lora::kKeyAdapterType, "lora");
    const auto& p = b.spec.pairs[0];
    ASSERT_TRUE(w.add_tensor(p.base + ".lora_a", DType::F32, p.a_shape, p.a, p.a_bytes).is_ok());
    const std::string path = f.dir + "/half.gguf";
    ASSERT_TRUE(w.write(path).is_ok());
    auto ad = LoraAdapter::load(path, f.model(), f.eng->pool());
    ASSERT_FALSE(ad.is_ok());
    EXPECT_NE(ad.status().message().find("the LoRA pair of 'blk.0.attn_q.weight' has no lora_b"),
              std::string::npos)
        << ad.status().message();
  }
  {  // a tensor the base does not have
    Built b = random_spec(f.model(), names, 4, 8, 1);
    b.spec.pairs[0].base = "blk.7.attn_q.weight";
    const std::string e = error_of(f, b.spec, "missing.gguf");
    EXPECT_NE(e.find("'blk.7.attn_q.weight' does not exist in the base model"), std::string::npos)
        << e;
  }
  {  // not an adapter at all: the model file itself
    auto ad = LoraAdapter::load(kModel, f.model(), f.eng->pool());
    ASSERT_FALSE(ad.is_ok());
    EXPECT_NE(ad.status().message().find("not a LoRA adapter (general.type"), std::string::npos)
        << ad.status().message();
  }
  {  // truncated: the data section cut short
    Built b = random_spec(f.model(), names, 4, 8, 1);
    const std::string path = f.dir + "/trunc.gguf";
    ASSERT_TRUE(lora::write_lora_adapter(path, b.spec).is_ok());
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 100);
    auto ad = LoraAdapter::load(path, f.model(), f.eng->pool());
    ASSERT_FALSE(ad.is_ok());
    EXPECT_FALSE(ad.status().message().empty());
  }
  {  // a tensor that is neither half
    Built b = random_spec(f.model(), names, 4, 8, 1);
    gguf::GgufWriter w;
    w.set_string(lora::kKeyGeneralType, "adapter");
    w.set_string(lora::kKeyArchitecture, "llama");
    w.set_string(lora::kKeyAdapterType, "lora");
    const auto& p = b.spec.pairs[0];
    ASSERT_TRUE(w.add_tensor(p.base, DType::F32, p.a_shape, p.a, p.a_bytes).is_ok());
    const std::string path = f.dir + "/odd.gguf";
    ASSERT_TRUE(w.write(path).is_ok());
    auto ad = LoraAdapter::load(path, f.model(), f.eng->pool());
    ASSERT_FALSE(ad.is_ok());
    EXPECT_NE(ad.status().message().find("is not a LoRA tensor"), std::string::npos);
  }
}

// The matmul hook against lora_reference: two adapters on the same matrix at per-sequence scales
// (one sequence with none), rows gathered, and the output head's subset of rows.
TEST(Lora, UpdateMatchesScalarReference) {
  Fixture f;
  const Model& m = f.model();
  ThreadPool& pool = f.eng->pool();
  const std::string wname = "blk.1.attn_v.weight";
  std::vector<std::shared_ptr<const LoraAdapter>> ads;
  for (int i = 0; i < 2; ++i) {
    Built b = random_spec(m, {wname, "output.weight"}, i ? 3 : 8, i ? 0.0f : 16.0f, 7 + i);
    const std::string path = f.dir + "/u" + std::to_string(i) + ".gguf";
    ASSERT_TRUE(lora::write_lora_adapter(path, b.spec).is_ok());
    auto ad = LoraAdapter::load(path, m, pool);
    ASSERT_TRUE(ad.is_ok()) << ad.status().message();
    ads.push_back(*ad);
  }
  const ops::WeightMatrix* W = nullptr;
  const ops::WeightMatrix* Wout = nullptr;
  for (const auto* w : m.matrices(pool)) {
    if (w->name() == wname) W = w;
    if (w->name() == "output.weight") Wout = w;
  }
  ASSERT_TRUE(W && Wout);
  // 3 sequences: seq 0 uses adapter 0 at 0.7, seq 1 both (1.0, -2.0), seq 2 none.
  const int n_seq = 3;
  const std::vector<float> scales{0.7f, 0.0f, 1.0f, -2.0f, 0.0f, 0.0f};
  const LoraAdapter* list[2] = {ads[0].get(), ads[1].get()};
  const LoraBatch lb{list, scales};
  std::vector<BatchToken> batch;
  const int T = 11;
  for (int t = 0; t < T; ++t) batch.push_back({1, t, t % n_seq, t % 4 == 1});
  std::vector<int64_t> out_rows;
  for (int t = 0; t < T; ++t)
    if (batch[size_t(t)].logits) out_rows.push_back(t);

  for (const ops::WeightMatrix* M : {W, Wout}) {
    const bool head = M == Wout;
    const int64_t rows = head ? int64_t(out_rows.size()) : T;
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0, 1);
    std::vector<float> X(size_t(rows * M->n_in()));
    for (float& x : X) x = nd(rng);
    std::vector<float> Y0(size_t(rows * M->n_out())), Y(Y0.size());
    ops::MatmulScratch ms;
    ms.reserve(ops::activation_bytes(M->type(), M->n_in(), rows));
    ops::matmul(pool, *M, X.data(), rows, Y0.data(), ms);
    LoraRunner lr;
    auto on = lr.begin(lb, batch, out_rows, n_seq, 16);
    ASSERT_TRUE(on.is_ok() && *on);
    ms.hook = &lr;
    ops::matmul(pool, *M, X.data(), rows, Y.data(), ms);
    // Reference: Y0 + Σ_k scale(row, k) · B_k(A_k x) per row.
    std::vector<float> ref = Y0;
    for (int64_t r = 0; r < rows; ++r) {
      const int seq = batch[size_t(head ? out_rows[size_t(r)] : r)].seq;
      for (int k = 0; k < 2; ++k) {
        const float s = scales[size_t(seq * 2 + k)];
        if (s == 0) continue;
        const LoraAdapter::Pair* p = ads[size_t(k)]->find(M);
        ASSERT_NE(p, nullptr);
        lora_reference(*p, s, X.data() + r * M->n_in(), 1, ref.data() + r * M->n_out(),
                       size_t(M->n_out()));
      }
    }
    double max_d = 0, max_delta = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      max_d = std::max(max_d, double(std::fabs(Y[i] - ref[i])));
      max_delta = std::max(max_delta, double(std::fabs(ref[i] - Y0[i])));
    }
    EXPECT_LT(max_d, 1e-4) << (head ? "output head" : "attn_v");
    EXPECT_GT(max_delta, 0.1) << "the adapters must change the product";
    // Sequence 2 uses no adapter: its rows are the base product, bit for bit.
    for (int64_t r = 0; r < rows; ++r)
      if (batch[size_t(head ? out_rows[size_t(r)] : r)].seq == 2)
        for (int64_t o = 0; o < M->n_out(); ++o)
          EXPECT_EQ(Y[size_t(r * M->n_out() + o)], Y0[size_t(r * M->n_out() + o)]);
  }
}

// Three sequences in one batch, each with other adapters (one with none), give the logits each
// gives alone.
TEST(Lora, MixedBatchEqualsEachAlone) {
  Fixture f;
  const Model& m = f.model();
  ThreadPool& pool = f.eng->pool();
  std::vector<std::shared_ptr<const LoraAdapter>> ads;
  auto names = lora_target_names(
      m, pool, {"q", "k", "v", "o", "gate", "up", "down", "output", "token_embd"});
  ASSERT_TRUE(names.is_ok());
  for (int i = 0; i < 2; ++i) {
    Built b = random_spec(m, *names, 4 + 4 * i, 8, 20 + i);
    const std::string path = f.dir + "/m" + std::to_string(i) + ".gguf";
    ASSERT_TRUE(lora::write_lora_adapter(path, b.spec).is_ok());
    ads.push_back(LoraAdapter::load(path, m, pool).value());
  }
  const LoraAdapter* list[2] = {ads[0].get(), ads[1].get()};
  const std::vector<float> scales{1.0f, 0.0f, 0.5f, 1.5f, 0.0f, 0.0f};
  const int64_t nv = m.config().n_vocab;
  const std::vector<int32_t> toks{5, 900, 17, 4000, 33, 250};
  ContextParams cp;
  cp.n_ctx = 32;
  cp.n_seq = 3;
  cp.n_batch = 32;
  auto run = [&](const std::vector<int>& seqs, const std::vector<float>& sc) {
    auto ctx = m.new_context(cp, pool).value();
    std::vector<BatchToken> batch;
    for (int s : seqs)
      for (size_t i = 0; i < toks.size(); ++i)
        batch.push_back({toks[(i + size_t(s)) % toks.size()], int32_t(i), s, true});
    std::vector<float> out(batch.size() * size_t(nv));
    const LoraBatch lb{list, sc};
    ForwardInput in{batch};
    in.lora = &lb;
    EXPECT_TRUE(m.eval(*ctx, in, {OutputKind::kLogits, out.data()}).is_ok());
    return out;
  };
  const auto mixed = run({0, 1, 2}, scales);
  const size_t per = toks.size() * size_t(nv);
  for (int s = 0; s < 3; ++s) {
    const auto alone = run({s}, scales);
    double d = 0;
    for (size_t i = 0; i < per; ++i)
      d = std::max(d, double(std::fabs(mixed[s * per + i] - alone[i])));
    // Same kernels, other batch composition: F16 activation rounding of other row groups only.
    EXPECT_LT(d, 1e-3) << "sequence " << s;
  }
  // And the adapters do something: sequence 0 with and without its adapter differ.
  const auto none = run({0}, std::vector<float>(6, 0.0f));
  double d = 0;
  for (size_t i = 0; i < per; ++i) d = std::max(d, double(std::fabs(mixed[i] - none[i])));
  EXPECT_GT(d, 0.5);
}

}  // namespace
}  // namespace hearth::models
