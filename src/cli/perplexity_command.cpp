// `hearth perplexity MODEL --file TEXT`: llama-perplexity's measure, plus KL divergence against a
// reference model's saved predictions (the quality cost of a quantization, measured).
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "runtime/perplexity.h"

namespace hearth::cli {
namespace {

struct PplOpts {
  std::string model, file, save_base, kl_base, kv_type = "f16";
  int n_ctx = 512, chunks = 0, threads = 0;
  bool json = false;
};

int run_perplexity(const PplOpts& o) {
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "hearth: %s\n", m.c_str());
    return 1;
  };
  std::ifstream in(o.file, std::ios::binary);
  if (!in) return fail("cannot read " + o.file);
  std::ostringstream ss;
  ss << in.rdbuf();
  runtime::EngineOptions eo;
  eo.n_threads = o.threads;
  auto eng = runtime::Engine::load(o.model, eo);
  if (!eng) return fail(eng.status().message());
  auto tok = tokenizer::Tokenizer::from_gguf((*eng)->file());
  if (!tok) return fail(tok.status().message());
  runtime::PerplexityOptions po;
  po.n_ctx = o.n_ctx;
  po.max_chunks = o.chunks;
  po.save_base = o.save_base;
  po.kl_base = o.kl_base;
  if (o.kv_type == "f32")
    po.kv_type = DType::F32;
  else if (o.kv_type == "q8_0")
    po.kv_type = DType::Q8_0;
  else if (o.kv_type != "f16")
    return fail("--kv-type must be f16, f32 or q8_0");
  auto r = runtime::perplexity(**eng, **tok, ss.str(), po, [&](int c, int n, double ppl) {
    if (!o.json) std::fprintf(stderr, "\r[%d/%d] ppl %.4f", c, n, ppl);
  });
  if (!o.json) std::fprintf(stderr, "\n");
  if (!r) return fail(r.status().message());
  if (o.json) {
    nlohmann::ordered_json j;
    j["chunks"] = r->chunks;
    j["scored_tokens"] = r->scored;
    j["ppl"] = r->ppl;
    j["ppl_stderr"] = r->ppl_stderr;
    j["nll"] = r->nll;
    if (r->has_kl) {
      j["kl"] = r->kl;
      j["kl_stderr"] = r->kl_stderr;
      j["kl_max"] = r->kl_max;
      j["same_top"] = r->same_top;
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("perplexity: %.4f +/- %.4f over %lld tokens (%d chunks of %d)\n", r->ppl,
              r->ppl_stderr, (long long)r->scored, r->chunks, o.n_ctx);
  if (r->has_kl)
    std::printf(
        "KL divergence from the reference: %.6f +/- %.6f nats (max %.4f); same top token "
        "%.2f%%\n",
        r->kl, r->kl_stderr, r->kl_max, 100 * r->same_top);
  return 0;
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
  static PplOpts o;
  auto* c = app.add_subcommand("perplexity",
                               "perplexity of a model on a text, and KL divergence "
                               "against a reference model");
  c->add_option("model", o.model, "GGUF model file")->required();
  c->add_option("-f,--file", o.file, "text file")->required();
  c->add_option("-c,--ctx", o.n_ctx, "tokens per chunk (the second half is scored)")
      ->default_val(512);
  c->add_option("--chunks", o.chunks, "evaluate at most this many chunks");
  c->add_option("--save-base", o.save_base, "write this model's predictions as a KL reference");
  c->add_option("--kl-base", o.kl_base, "compare with a reference written by --save-base");
  c->add_option("--kv-type", o.kv_type, "KV cache type: f16 (default), f32, q8_0");
  c->add_option("-t,--threads", o.threads, "threads (default: all cores)");
  c->add_flag("--json", o.json, "print the result as JSON");
  c->callback([] { std::exit(run_perplexity(o)); });
}

}  // namespace hearth::cli
