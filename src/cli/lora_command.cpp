// hearth lora-random: a LoRA adapter with random weights for a base model, in llama.cpp's GGUF
// adapter format (tests compare hearth and llama.cpp applying it).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>

#include "base/fp16.h"
#include "cli/commands.h"
#include "models/lora.h"
#include "runtime/session.h"

namespace hearth::cli {
namespace {

struct Opts {
  std::string model, out, targets = "q,k,v,o,gate,up,down", type = "f32";
  int rank = 8, seed = 1, threads = 0;
  float alpha = 0, gain = 0.5f;
};

int run(const Opts& o) {
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "hearth: %s\n", m.c_str());
    return 1;
  };
  if (o.rank <= 0) return fail("--rank must be positive");
  if (o.type != "f32" && o.type != "f16") return fail("--type must be f32 or f16");
  runtime::EngineOptions eo;
  eo.n_threads = o.threads;
  eo.repack = false;
  auto eng = runtime::Engine::load(o.model, eo);
  if (!eng) return fail(eng.status().message());
  const models::Model& m = (*eng)->model();
  std::vector<std::string> targets;
  std::stringstream ss(o.targets);
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) targets.push_back(t);
  auto names = models::lora_target_names(m, (*eng)->pool(), targets);
  if (!names) return fail(names.status().message());

  // A ~ N(0, 1/n_in), B ~ N(0, gain²/rank): an update of about `gain` per output on unit inputs.
  std::mt19937_64 rng(uint64_t(o.seed));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const bool f16 = o.type == "f16";
  std::vector<std::vector<uint8_t>> bufs;
  auto fill = [&](int64_t n, float sd) -> std::pair<const void*, size_t> {
    std::vector<uint8_t> b(size_t(n) * (f16 ? 2 : 4));
    for (int64_t i = 0; i < n; ++i) {
      const float v = nd(rng) * sd;
      if (f16) {
        const uint16_t h = fp32_to_fp16(v);
        std::memcpy(b.data() + i * 2, &h, 2);
      } else {
        std::memcpy(b.data() + i * 4, &v, 4);
      }
    }
    bufs.push_back(std::move(b));
    return {bufs.back().data(), bufs.back().size()};
  };
  bufs.reserve(names->size() * 2);
  models::LoraFileSpec spec;
  spec.arch = m.config().arch;
  spec.alpha = o.alpha;
  spec.name =
      "random rank-" + std::to_string(o.rank) + " adapter (seed " + std::to_string(o.seed) + ")";
  const int64_t R = o.rank;
  for (const std::string& n : *names) {
    const gguf::TensorInfo* t = m.file().find_tensor(n);
    if (!t || t->shape.size() != 2) return fail("tensor '" + n + "' is not a matrix");
    models::LoraPairData p;
    p.base = n;
    p.type = f16 ? DType::F16 : DType::F32;
    const int64_t rows = t->shape[0], cols = t->shape[1];
    if (n == models::lora_format::kTokenEmbd) {  // flipped: A (n_vocab, R), B (n_embd, R)
      p.a_shape = {rows, R};
      p.b_shape = {cols, R};
      std::tie(p.a, p.a_bytes) = fill(rows * R, 1.0f);
      std::tie(p.b, p.b_bytes) = fill(cols * R, o.gain / std::sqrt(float(R)));
    } else {  // A (R, n_in), B (n_out, R)
      p.a_shape = {R, cols};
      p.b_shape = {rows, R};
      std::tie(p.a, p.a_bytes) = fill(R * cols, 1.0f / std::sqrt(float(cols)));
      std::tie(p.b, p.b_bytes) = fill(rows * R, o.gain / std::sqrt(float(R)));
    }
    spec.pairs.push_back(std::move(p));
  }
  if (auto st = models::write_lora_adapter(o.out, spec); !st) return fail(st.message());
  std::printf("{\"pairs\": %zu, \"path\": \"%s\", \"rank\": %d}\n", spec.pairs.size(),
              o.out.c_str(), o.rank);
  return 0;
}

}  // namespace

void add_lora_command(CLI::App& app) {
  static Opts o;
  auto* c = app.add_subcommand("lora-random",
                               "write a LoRA adapter with random weights for a base model (tests)");
  c->add_option("-m,--model", o.model, "base GGUF model")->required();
  c->add_option("-o,--out", o.out, "adapter GGUF to write")->required();
  c->add_option("--rank", o.rank, "rank (default 8)");
  c->add_option("--alpha", o.alpha, "adapter.lora.alpha (default 0: none)");
  c->add_option("--targets", o.targets,
                "matrices: q,k,v,o,gate,up,down,output,token_embd (default q,k,v,o,gate,up,down)");
  c->add_option("--type", o.type, "f32 (default) or f16");
  c->add_option("--seed", o.seed, "random seed (default 1)");
  c->add_option("--gain", o.gain, "size of the update relative to unit inputs (default 0.5)");
  c->add_option("-t,--threads", o.threads, "threads");
  c->callback([] { std::exit(run(o)); });
}

}  // namespace hearth::cli
