// Engine tools that run in-process on a GGUF file: logits, greedy (and later bench, quantize).
// Their JSON output has the same shape as ../shared/oracle/llama-oracle.mjs so the two diff.
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "kernels/kernels.h"
#include "models/cache.h"
#include "runtime/session.h"
#include "sampling/sampler.h"
#include "tokenizer/stream.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace hearth::cli {
namespace {

using json = nlohmann::ordered_json;

struct CommonOpts {
  std::string model;
  std::string tokens;
  int threads = 0;
  std::string isa;
  int n_ctx = 0;
  std::string kv_type = "f16";
  bool repack = false, no_repack = false;
  bool mmap = false, no_mmap = false;
  std::string lora;  // FILE[:SCALE][,FILE[:SCALE]...] (the oracle's --lora)
};

void add_common(CLI::App* c, CommonOpts& o, bool token_prompt = true) {
  c->add_option("-m,--model", o.model, "GGUF model file")->required();
  if (token_prompt)
    c->add_option("--tokens", o.tokens, "comma-separated prompt token ids")->required();
  c->add_option("-t,--threads", o.threads, "threads (default: all cores)");
  c->add_option("--isa", o.isa, "cap the kernel level: generic, avx2, avxvnni, avx512");
  c->add_option("-c,--ctx", o.n_ctx, "context size (default: prompt + generated)");
  c->add_option("--kv-type", o.kv_type, "KV cache type: f16 (default), q8_0, q4_0, f32");
  c->add_flag(
      "--repack", o.repack,
      "repack weights at load for faster decode (the default; HEARTH_REPACK=0 turns it off)");
  c->add_flag("--no-repack", o.no_repack, "run on the file's weight layout (no load-time repack)");
  c->add_flag(
      "--mmap", o.mmap,
      "read every weight in place from the file mapping (no load-time repack unless --repack)");
  c->add_flag("--no-mmap", o.no_mmap, "copy every weight into huge-page memory at load")
      ->excludes("--mmap");
  c->add_option("--lora", o.lora,
                "LoRA adapters (GGUF): FILE[:SCALE][,FILE[:SCALE]...], scale 1 by default");
}

// Loads the --lora adapters into the session (each with its scale).
Status attach_lora(const CommonOpts& o, runtime::Engine& eng, runtime::Session& sess) {
  std::stringstream ss(o.lora);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    std::string path = item;
    float scale = 1;
    if (const size_t c = item.rfind(':'); c != std::string::npos) {
      try {
        size_t used = 0;
        const std::string tail = item.substr(c + 1);
        const float v = std::stof(tail, &used);
        if (used == tail.size()) {
          scale = v;
          path = item.substr(0, c);
        }
      } catch (...) {  // not a scale: part of the path
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    HEARTH_ASSIGN_OR_RETURN(auto ad, eng.load_lora(path));
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "hearth: LoRA adapter %s: %zu matrices, %.1f MB, loaded in %.1f ms\n",
                 path.c_str(), ad->pairs().size() + (ad->embd() ? 1 : 0),
                 double(ad->file_bytes()) / 1e6, ms);
    sess.add_lora(std::move(ad), scale);
  }
  return Status::ok();
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "hearth: %s\n", msg.c_str());
  return 1;
}

Result<std::vector<int32_t>> parse_tokens(const std::string& s) {
  std::vector<int32_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    try {
      size_t used = 0;
      long long x = std::stoll(item, &used);
      if (used != item.size() || x < 0 || x > INT32_MAX) throw std::invalid_argument("");
      v.push_back(int32_t(x));
    } catch (...) {
      return invalid_argument("--tokens: '" + item + "' is not a token id");
    }
  }
  if (v.empty()) return invalid_argument("--tokens: no token ids given");
  return v;
}

Result<std::unique_ptr<runtime::Engine>> open_engine(const CommonOpts& o) {
  if (!o.isa.empty()) {
    kernels::Isa isa;
    if (!kernels::parse_isa(o.isa.c_str(), isa))
      return invalid_argument("--isa must be generic, avx2 or avx512");
    kernels::set_isa_cap(isa);
  }
  runtime::EngineOptions eo;
  eo.n_threads = o.threads;
  if (o.repack) eo.repack = true;
  // --mmap promises weights read in place: no repacked copy unless asked for as well.
  if (o.no_repack || (o.mmap && !o.repack)) eo.repack = false;
  eo.placement = o.mmap      ? ops::Placement::kMapped
                 : o.no_mmap ? ops::Placement::kResident
                             : ops::Placement::kAuto;
  return runtime::Engine::load(o.model, eo);
}

Result<DType> parse_kv_type(const std::string& s) {
  auto t = models::parse_kv_type(s);
  if (!t) return invalid_argument("--kv-type must be f16, q8_0, q4_0 or f32");
  return t;
}

std::string sha256_hex(const void* data, size_t n) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data, n, md, &len, EVP_sha256(), nullptr);
  std::string hex;
  char buf[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", md[i]);
    hex += buf;
  }
  return hex;
}

int32_t argmax(const float* row, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (row[i] > row[best]) best = i;  // lowest id wins ties
  return int32_t(best);
}

json top_k(const float* row, int64_t n, int k) {
  std::vector<int32_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[i] = int32_t(i);
  k = int(std::min<int64_t>(k, n));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return row[a] > row[b] || (row[a] == row[b] && a < b);
  });
  json out = json::array();
  for (int i = 0; i < k; ++i) out.push_back({idx[i], row[idx[i]]});
  return out;
}

// What was changed to read an Ollama-layout file (gguf/ollama_compat.h); absent otherwise.
void add_layout_fixes(json& j, const gguf::GgufFile& f) {
  if (const auto& lf = f.layout_fixes(); lf.applied()) {
    j["layout_fixes"] = lf.fixes;
    j["ignored_tensors"] = lf.ignored_tensors;
  }
}

int run_logits(const CommonOpts& o, bool all, const std::string& out_path, int top, int batch) {
  auto toks = parse_tokens(o.tokens);
  if (!toks) return fail(toks.status().message());
  auto kv = parse_kv_type(o.kv_type);
  if (!kv) return fail(kv.status().message());
  auto eng = open_engine(o);
  if (!eng) return fail(eng.status().message());
  models::ContextParams cp;
  cp.n_ctx = o.n_ctx > 0 ? o.n_ctx : int(toks->size());
  if (batch <= 0) return fail("--batch must be positive");
  cp.n_batch = batch;
  cp.kv_type = *kv;
  auto sess = runtime::Session::create(**eng, cp);
  if (!sess) return fail(sess.status().message());
  if (auto st = attach_lora(o, **eng, **sess); !st) return fail(st.message());
  const int64_t nv = (*sess)->n_vocab();
  const int64_t rows = all ? int64_t(toks->size()) : 1;
  std::vector<float> logits(size_t(rows * nv));
  if (auto st = (*sess)->eval(*toks, all, logits.data()); !st) return fail(st.message());

  json j;
  json am = json::array(), tops = json::array(), positions = json::array();
  bool finite = true;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits.data() + r * nv;
    for (int64_t i = 0; i < nv; ++i) finite = finite && std::isfinite(row[i]);
    am.push_back(argmax(row, nv));
    tops.push_back(top_k(row, nv, top));
    positions.push_back(all ? r : int64_t(toks->size()) - 1);
  }
  j["argmax"] = am;
  if (!out_path.empty()) {
    std::ofstream f(out_path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(logits.data()), std::streamsize(logits.size() * 4));
    if (!f) return fail("cannot write " + out_path);
    j["dtype"] = "float32-le";
  }
  j["finite"] = finite;
  add_layout_fixes(j, (*eng)->file());
  if (out_path.empty()) {
    json rows_j = json::array();
    for (int64_t r = 0; r < rows; ++r)
      rows_j.push_back(std::vector<float>(logits.begin() + r * nv, logits.begin() + (r + 1) * nv));
    j["logits"] = rows_j;
  }
  j["n_positions"] = rows;
  j["n_vocab"] = nv;
  if (!out_path.empty()) j["out"] = out_path;
  j["positions"] = positions;
  if (!out_path.empty()) {
    j["sha256"] = sha256_hex(logits.data(), logits.size() * 4);
    j["shape"] = {rows, nv};
  }
  const auto& margins = (*sess)->router_margins();
  if (!margins.empty()) {  // MoE: router near-tie margin per output position
    json mj = json::array();
    for (int64_t r = 0; r < rows; ++r) {
      const float v = margins[size_t(all ? r : int64_t(margins.size()) - 1)];
      mj.push_back(std::isfinite(v) ? json(v) : json(1e30));
    }
    j["router_margin"] = mj;
  }
  j["threads"] = (*eng)->pool().size();
  j["top"] = tops;
  std::cout << j.dump() << "\n";
  return 0;
}

// The pooled embedding of one sequence of token ids, as the model's pooling type (or --pooling)
// computes it; not normalized (the server's /api/embed normalizes).
int run_embed(const CommonOpts& o, const std::string& pooling) {
  auto toks = parse_tokens(o.tokens);
  if (!toks) return fail(toks.status().message());
  auto eng = open_engine(o);
  if (!eng) return fail(eng.status().message());
  const auto& m = (*eng)->model();
  models::Pooling p = m.config().pooling;
  if (!pooling.empty()) {
    const std::pair<const char*, models::Pooling> names[] = {{"mean", models::Pooling::kMean},
                                                             {"cls", models::Pooling::kCls},
                                                             {"last", models::Pooling::kLast},
                                                             {"rank", models::Pooling::kRank}};
    bool found = false;
    for (const auto& [n, v] : names)
      if (pooling == n) p = v, found = true;
    if (!found) return fail("--pooling must be mean, cls, last or rank");
  }
  if (p == models::Pooling::kNone)
    return fail("the model declares no pooling type; choose one with --pooling mean|cls|last");
  models::ContextParams cp;
  cp.n_ctx = o.n_ctx > 0 ? o.n_ctx : int(toks->size());
  cp.n_batch = std::max<int>(1, int(toks->size()));
  auto ctx = m.new_context(cp, (*eng)->pool());
  if (!ctx) return fail(ctx.status().message());
  std::vector<models::BatchToken> batch;
  for (size_t i = 0; i < toks->size(); ++i) batch.push_back({(*toks)[i], int32_t(i), 0, false});
  // rank: the classifier's n_cls_out outputs (a reranker's score first), not a vector.
  std::vector<float> e(size_t(m.config().pooled_width(p)));
  if (auto st = m.eval(**ctx, models::ForwardInput{batch},
                       models::ForwardOutput{models::OutputKind::kPooled, e.data(), p});
      !st)
    return fail(st.message());
  json j;
  j["embedding"] = e;
  j["n_embd"] = m.config().n_embd;
  j["n_tokens"] = toks->size();
  j["pooling"] = models::pooling_name(p);
  add_layout_fixes(j, (*eng)->file());
  if (const auto margins = (*ctx)->router_margins(); !margins.empty()) {  // MoE: nearest tie
    const float v = *std::min_element(margins.begin(), margins.end());
    j["router_margin"] = std::isfinite(v) ? json(v) : json(1e30);
  }
  std::cout << j.dump() << "\n";
  return 0;
}

// How the next token is chosen from the logits (greedy or the sampling chain).
class Picker {
 public:
  virtual ~Picker() = default;
  virtual void start(int64_t n_vocab, std::span<const int32_t> prompt) {}
  virtual int32_t pick(const float* logits, int64_t n_vocab) = 0;
  virtual void report(json& j) const {}
};

class GreedyPicker final : public Picker {
 public:
  int32_t pick(const float* logits, int64_t n_vocab) override { return argmax(logits, n_vocab); }
};

class SamplePicker final : public Picker {
 public:
  explicit SamplePicker(const sampling::SamplerParams& p) : params_(p) {}
  void start(int64_t n_vocab, std::span<const int32_t> prompt) override {
    sampler_ = std::make_unique<sampling::Sampler>(params_, int(n_vocab));
    for (int32_t t : prompt) sampler_->accept(t);
  }
  int32_t pick(const float* logits, int64_t) override {
    const int32_t t = sampler_->sample(logits);
    sampler_->accept(t);
    return t;
  }
  void report(json& j) const override { j["seed"] = sampler_->seed(); }

 private:
  sampling::SamplerParams params_;
  std::unique_ptr<sampling::Sampler> sampler_;
};

// Evaluates the prompt, then produces n_gen tokens one at a time with `picker`, and prints
// {"prompt", ["seed",] "threads", "tokens"} (the oracle's greedy shape).
int run_generation(const CommonOpts& o, int n_gen, Picker& picker) {
  auto toks = parse_tokens(o.tokens);
  if (!toks) return fail(toks.status().message());
  auto kv = parse_kv_type(o.kv_type);
  if (!kv) return fail(kv.status().message());
  if (n_gen < 0) return fail("--n must be >= 0");
  auto eng = open_engine(o);
  if (!eng) return fail(eng.status().message());
  models::ContextParams cp;
  cp.n_ctx = o.n_ctx > 0 ? o.n_ctx : int(toks->size()) + n_gen;
  cp.kv_type = *kv;
  auto sess = runtime::Session::create(**eng, cp);
  if (!sess) return fail(sess.status().message());
  if (auto st = attach_lora(o, **eng, **sess); !st) return fail(st.message());
  const int64_t nv = (*sess)->n_vocab();
  picker.start(nv, *toks);
  std::vector<float> logits(static_cast<size_t>(nv));
  std::vector<int32_t> out;
  if (n_gen > 0) {
    if (auto st = (*sess)->eval(*toks, false, logits.data()); !st) return fail(st.message());
    for (int i = 0; i < n_gen; ++i) {
      const int32_t t = picker.pick(logits.data(), nv);
      out.push_back(t);
      if (i + 1 == n_gen) break;
      if (auto st = (*sess)->eval(std::span<const int32_t>(&t, 1), false, logits.data()); !st)
        return fail(st.message());
    }
  }
  json j;
  j["prompt"] = *toks;
  picker.report(j);
  // The text too when the file carries a vocabulary (as the oracle's greedy prints it); bytes
  // of a character cut off at the end print as U+FFFD.
  if (auto tk = tokenizer::Tokenizer::from_gguf((*eng)->file()); tk.is_ok()) {
    bool in_range = true;
    for (int32_t t : out) in_range &= t >= 0 && t < (*tk)->n_vocab();
    if (in_range) j["text"] = tokenizer::sanitize_utf8((*tk)->decode(out, true));
  }
  j["threads"] = (*eng)->pool().size();
  j["tokens"] = out;
  std::cout << j.dump() << "\n";
  return 0;
}

// Text in, streamed text out: tokenizes the prompt (BOS as the model asks, special-token text
// parsed), samples until an end-of-generation token, a stop string or -n tokens, and writes the
// text to stdout as it is produced. Timings go to stderr.
int run_generate(const CommonOpts& o, const std::string& prompt, int n_gen,
                 const sampling::SamplerParams& sp, const std::vector<std::string>& stops) {
  auto kv = parse_kv_type(o.kv_type);
  if (!kv) return fail(kv.status().message());
  auto eng = open_engine(o);
  if (!eng) return fail(eng.status().message());
  auto tk = tokenizer::Tokenizer::from_gguf((*eng)->file());
  if (!tk) return fail(tk.status().message());
  const auto toks = (*tk)->encode(prompt, /*add_special=*/true, /*parse_special=*/true);
  if (toks.empty()) return fail("the prompt is empty");
  const int64_t nv = (*eng)->model().config().n_vocab;
  for (int32_t t : toks)
    if (t >= nv) return fail("the tokenizer has more tokens than the model's embedding table");
  models::ContextParams cp;
  cp.n_ctx = o.n_ctx > 0 ? o.n_ctx : int(toks.size()) + (n_gen > 0 ? n_gen : 512);
  cp.kv_type = *kv;
  auto sess = runtime::Session::create(**eng, cp);
  if (!sess) return fail(sess.status().message());
  if (auto st = attach_lora(o, **eng, **sess); !st) return fail(st.message());
  const int limit = n_gen > 0 ? n_gen : (*sess)->n_ctx() - int(toks.size());
  if (limit <= 0) return fail("the prompt fills the whole context (-c)");
  SamplePicker picker(sp);
  picker.start(nv, toks);
  tokenizer::TextStream stream(**tk, stops);
  std::vector<float> logits(static_cast<size_t>(nv));
  const auto t0 = std::chrono::steady_clock::now();
  if (auto st = (*sess)->eval(toks, false, logits.data()); !st) return fail(st.message());
  const auto t1 = std::chrono::steady_clock::now();
  int n = 0;
  const char* reason = "length";
  while (n < limit) {
    const int32_t t = picker.pick(logits.data(), nv);
    ++n;
    if ((*tk)->is_eog(t)) {
      reason = "stop";
      break;
    }
    const std::string text = stream.push(t);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    if (stream.stopped()) {
      reason = "stop";
      break;
    }
    if (n == limit) break;
    if (auto st = (*sess)->eval(std::span<const int32_t>(&t, 1), false, logits.data()); !st)
      return fail(st.message());
  }
  const std::string rest = stream.flush();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const auto t2 = std::chrono::steady_clock::now();
  const double pp = std::chrono::duration<double>(t1 - t0).count();
  const double tg = std::chrono::duration<double>(t2 - t1).count();
  std::fprintf(
      stderr, "hearth: prompt %zu tokens (%.1f t/s), generated %d tokens (%.1f t/s), done: %s\n",
      toks.size(), pp > 0 ? double(toks.size()) / pp : 0.0, n, tg > 0 ? n / tg : 0.0, reason);
  return 0;
}

void add_sampling_options(CLI::App* sc, sampling::SamplerParams& sp) {
  sc->add_option("--temp", sp.temperature, "temperature (default 0.8; <= 0 is greedy)");
  sc->add_option("--top-k", sp.top_k, "top-k (default 40; 0 = off)");
  sc->add_option("--top-p", sp.top_p, "top-p (default 0.9; 1 = off)");
  sc->add_option("--min-p", sp.min_p, "min-p (default 0)");
  sc->add_option("--typical-p", sp.typical_p, "typical-p (default 1 = off)");
  sc->add_option("--repeat-penalty", sp.repeat_penalty, "repeat penalty (default 1.1)");
  sc->add_option("--repeat-last-n", sp.repeat_last_n, "penalty window (default 64; -1 = all)");
  sc->add_option("--presence-penalty", sp.presence_penalty, "presence penalty (default 0)");
  sc->add_option("--frequency-penalty", sp.frequency_penalty, "frequency penalty (default 0)");
  sc->add_option("--seed", sp.seed, "RNG seed (default: random)");
}

}  // namespace

void add_engine_commands(CLI::App& app) {
  static CommonOpts lo, go;
  static bool all = false;
  static std::string out_path;
  static int top = 5, n_gen = 16, batch = 512;

  auto* lc = app.add_subcommand("logits", "raw next-token logits for a prompt of token ids");
  add_common(lc, lo);
  lc->add_flag("--all-positions", all, "logits for every prompt position, not just the last");
  lc->add_option("--out", out_path, "write float32 logits to this file instead of inline JSON");
  lc->add_option("--top", top, "top-K entries per position in the JSON (default 5)");
  lc->add_option("-b,--batch", batch,
                 "evaluate the prompt in batches of at most this many tokens (default 512)");
  lc->callback([] { std::exit(run_logits(lo, all, out_path, top, batch)); });

  static CommonOpts eo;
  static std::string pooling;
  auto* ec = app.add_subcommand("embed", "the pooled embedding of a sequence of token ids");
  add_common(ec, eo);
  ec->add_option("--pooling", pooling,
                 "mean, cls, last or rank (default: the model's pooling_type)");
  ec->callback([] { std::exit(run_embed(eo, pooling)); });

  auto* gc = app.add_subcommand("greedy", "greedy continuation of a prompt of token ids");
  add_common(gc, go);
  gc->add_option("-n,--n", n_gen, "tokens to generate (default 16)");
  gc->callback([] {
    GreedyPicker p;
    std::exit(run_generation(go, n_gen, p));
  });

  static CommonOpts so;
  static sampling::SamplerParams sp;
  static int n_sample = 16;
  auto* sc = app.add_subcommand("sample", "sampled continuation of a prompt of token ids");
  add_common(sc, so);
  sc->add_option("-n,--n", n_sample, "tokens to generate (default 16)");
  add_sampling_options(sc, sp);
  sc->callback([] {
    SamplePicker p(sp);
    std::exit(run_generation(so, n_sample, p));
  });

  static CommonOpts gen_o;
  static sampling::SamplerParams gen_sp;
  static std::string gen_prompt;
  static std::vector<std::string> gen_stops;
  static int gen_n = -1;
  auto* gn = app.add_subcommand("generate", "continue a text prompt, streaming text to stdout");
  add_common(gn, gen_o, /*token_prompt=*/false);
  gn->add_option("-p,--prompt", gen_prompt, "prompt text (special-token text is parsed)")
      ->required();
  gn->add_option("-n,--n", gen_n,
                 "maximum tokens (default: until end of generation or full context)");
  gn->add_option("--stop", gen_stops, "stop string (repeatable)");
  add_sampling_options(gn, gen_sp);
  gn->callback([] { std::exit(run_generate(gen_o, gen_prompt, gen_n, gen_sp, gen_stops)); });
}

}  // namespace hearth::cli
