// `hearth bench`: prompt-processing and generation speed, llama-bench style, with the same method
// as ../shared/oracle/bench.mjs so the two can run side by side on one file: pp = the whole prompt
// of -p pseudo-random tokens as one batch in a fresh context; tg = -n greedy tokens one at a time
// after an 8-token prompt (whose evaluation is included, as the oracle does). One warm-up round,
// then -r counted rounds.
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "kernels/kernels.h"
#include "models/cache.h"
#include "runtime/fit.h"
#include "runtime/machine.h"
#include "runtime/session.h"

namespace hearth::cli {
namespace {

struct BenchOpts {
  std::string model;
  int n_prompt = 512, n_gen = 128, threads = 0, reps = 3;
  std::string isa;
  bool repack = false, no_repack = false;
  bool mmap = false, no_mmap = false;
  bool json_only = false;
  bool peak = false;
  int seqs = 0;  // > 0: also decode this many sequences together (continuous batching)
  std::string kv_type = "f16";
  std::string depths;  // -d 4096,16384: llama-bench's depths
};

// What this CPU can do at most, all threads: multiply-adds per second through the active level's
// int8, F32 and BF16 dot-product instructions (register-only chains, kernels::KernelTable's peak
// probes), and the memory bandwidth decode can hope for (runtime::memory_bandwidth()).
struct Peak {
  double int8 = 0, f32 = 0, bf16 = 0;  // multiply-adds/s (0: no such instruction)
  double bandwidth = 0;                // bytes/s
};

double probe_peak(ThreadPool& pool, uint64_t (*fn)(uint64_t)) {
  if (!fn) return 0;
  using clk = std::chrono::steady_clock;
  uint64_t iters = 1 << 14;
  for (;;) {  // about 50 ms on one thread
    const auto t0 = clk::now();
    fn(iters);
    const double dt = std::chrono::duration<double>(clk::now() - t0).count();
    if (dt > 0.05) break;
    iters *= 4;
  }
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<uint64_t> macs(size_t(pool.size()), 0);
    const auto t0 = clk::now();
    pool.run([&](int ith, int) { macs[size_t(ith)] = fn(iters); });
    const double dt = std::chrono::duration<double>(clk::now() - t0).count();
    uint64_t total = 0;
    for (uint64_t m : macs) total += m;
    best = std::max(best, double(total) / dt);
  }
  return best;
}

Peak measure_peak(int threads) {
  ThreadPool pool(threads > 0 ? threads : int(std::thread::hardware_concurrency()));
  const auto& kt = kernels::active();
  Peak p;
  p.int8 = probe_peak(pool, kt.peak_int8);
  p.f32 = probe_peak(pool, kt.peak_f32);
  p.bf16 = probe_peak(pool, kt.peak_bf16);
  p.bandwidth = runtime::memory_bandwidth();
  return p;
}

void print_peak(const Peak& p, int threads) {
  std::printf("| peak (%d threads, %s) | |\n|---|---:|\n", threads,
              kernels::isa_name(kernels::active().isa));
  std::printf("| int8 dot products | %.0f GOPS |\n", 2 * p.int8 / 1e9);
  std::printf("| F32 FMA | %.0f GFLOPS |\n", 2 * p.f32 / 1e9);
  if (p.bf16 > 0) std::printf("| BF16 dot products | %.0f GFLOPS |\n", 2 * p.bf16 / 1e9);
  std::printf("| memory read bandwidth | %.1f GB/s |\n\n", p.bandwidth / 1e9);
}

std::vector<int32_t> bench_tokens(int n, uint32_t seed, int64_t n_vocab) {
  // The oracle's generator: an LCG away from the low (often special/byte) ids.
  uint32_t x = seed;
  const int64_t lo = std::min<int64_t>(300, n_vocab / 4);
  const int64_t span = std::max<int64_t>(1, n_vocab - lo - 1);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& t : v) {
    x = x * 1103515245u + 12345u;
    t = int32_t(lo + x % span);
  }
  return v;
}

// Resident memory in MiB from /proc/self/status: {VmRSS, RssFile, RssAnon}.
std::array<double, 3> rss_mib() {
  std::array<double, 3> r{0, 0, 0};
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return r;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    long kb;
    if (std::sscanf(line, "VmRSS: %ld", &kb) == 1) r[0] = kb / 1024.0;
    if (std::sscanf(line, "RssFile: %ld", &kb) == 1) r[1] = kb / 1024.0;
    if (std::sscanf(line, "RssAnon: %ld", &kb) == 1) r[2] = kb / 1024.0;
  }
  std::fclose(f);
  return r;
}

struct Stats {
  double mean = 0, sd = 0;
};
Stats stats(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / double(v.size() - 1)) : 0;
  return s;
}

// Continuous batching's decode step: `seqs` sequences, each after its own 8-token prompt (all
// prompts in one batch, not timed), then -n steps that each carry one greedy token of every
// sequence. Returns the aggregate tokens/s of the steps, one figure per counted round.
Result<std::vector<double>> parallel_decode(runtime::Engine& eng, const BenchOpts& o, DType kv) {
  const int S = o.seqs;
  const int64_t nv = eng.model().config().n_vocab;
  models::ContextParams cp;
  cp.n_ctx = 8 + o.n_gen + 64;
  cp.n_seq = S;
  cp.n_batch = 8 * S;
  cp.kv_type = kv;
  std::vector<float> logits(size_t(S) * size_t(nv));
  std::vector<models::BatchToken> batch;
  std::vector<int32_t> pos(static_cast<size_t>(S));
  std::vector<double> out;
  using clk = std::chrono::steady_clock;
  for (int r = 0; r <= o.reps; ++r) {
    HEARTH_ASSIGN_OR_RETURN(auto ctx, eng.model().new_context(cp, eng.pool()));
    batch.clear();
    for (int q = 0; q < S; ++q) {
      const auto start = bench_tokens(8, 99 + r * 131 + q, nv);
      for (int i = 0; i < 8; ++i) batch.push_back({start[size_t(i)], i, q, i == 7});
      pos[size_t(q)] = 8;
    }
    HEARTH_RETURN_IF_ERROR(eng.model().forward(*ctx, batch, logits.data()));
    const auto t0 = clk::now();
    for (int step = 0; step < o.n_gen; ++step) {
      batch.clear();
      for (int q = 0; q < S; ++q) {
        const float* row = logits.data() + size_t(q) * size_t(nv);
        int32_t best = 0;
        for (int64_t i = 1; i < nv; ++i)
          if (row[i] > row[best]) best = int32_t(i);
        batch.push_back({best, pos[size_t(q)]++, q, true});
      }
      HEARTH_RETURN_IF_ERROR(eng.model().forward(*ctx, batch, logits.data()));
    }
    const double sec = std::chrono::duration<double>(clk::now() - t0).count();
    if (r > 0) out.push_back(double(S) * o.n_gen / sec);
  }
  return out;
}

// The greedy next token.
int32_t argmax(const std::vector<float>& logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[size_t(best)]) best = int32_t(i);
  return best;
}

// llama-bench's -d: per depth d, one context already holding d tokens (filled once, in batches of
// -p, not timed); each round times pp (-p tokens as one batch) and tg (-n tokens one at a time
// after one prompt token), and goes back to depth d after each. No warm-up round: the fill warms
// everything. scripts/bench-depth-llama.mjs measures llama.cpp the same way.
int run_depths(const BenchOpts& o, runtime::Engine& eng, DType kv) {
  std::vector<int> depths;
  for (size_t a = 0; a < o.depths.size();) {
    size_t b = o.depths.find(',', a);
    if (b == std::string::npos) b = o.depths.size();
    const std::string part = o.depths.substr(a, b - a);
    char* end = nullptr;
    const long d = std::strtol(part.c_str(), &end, 10);
    if (part.empty() || *end || d < 0 || d > (1 << 24)) {
      std::fprintf(stderr, "hearth: -d takes depths like 4096,16384\n");
      return 1;
    }
    depths.push_back(int(d));
    a = b + 1;
  }
  const int64_t nv = eng.model().config().n_vocab;
  std::vector<float> logits(static_cast<size_t>(nv));
  using clk = std::chrono::steady_clock;
  if (!o.json_only)
    std::printf("| model | threads | isa | kv | test | t/s |\n|---|---:|---|---|---|---:|\n");
  for (int depth : depths) {
    models::ContextParams cp;
    cp.n_ctx = depth + o.n_prompt + o.n_gen + 64;
    cp.n_batch = o.n_prompt;
    cp.kv_type = kv;
    auto s = runtime::Session::create(eng, cp);
    if (!s) {
      std::fprintf(stderr, "hearth: %s\n", s.status().message().c_str());
      return 1;
    }
    auto t0 = clk::now();
    if (depth > 0)
      if (auto st = (*s)->eval(bench_tokens(depth, 3, nv), false, logits.data()); !st) {
        std::fprintf(stderr, "hearth: %s\n", st.message().c_str());
        return 1;
      }
    const double fill_s = std::chrono::duration<double>(clk::now() - t0).count();
    std::vector<double> pp, tg;
    for (int r = 0; r < o.reps; ++r) {
      t0 = clk::now();
      if (auto st = (*s)->eval(bench_tokens(o.n_prompt, 7 + r, nv), false, logits.data()); !st)
        return 1;
      pp.push_back(o.n_prompt / std::chrono::duration<double>(clk::now() - t0).count());
      (*s)->truncate(depth);
      t0 = clk::now();
      auto start = bench_tokens(1, 99 + r, nv);
      if (auto st = (*s)->eval(start, false, logits.data()); !st) return 1;
      int produced = 0;
      for (;;) {
        int32_t best = argmax(logits);
        if (++produced >= o.n_gen) break;
        if (auto st = (*s)->eval(std::span<const int32_t>(&best, 1), false, logits.data()); !st)
          return 1;
      }
      tg.push_back(produced / std::chrono::duration<double>(clk::now() - t0).count());
      (*s)->truncate(depth);
    }
    const Stats sp = stats(pp), st = stats(tg);
    if (!o.json_only) {
      std::printf("| %s | %d | %s | %s | pp%d @ d%d | %.2f ± %.2f |\n", o.model.c_str(),
                  eng.pool().size(), kernels::isa_name(kernels::active().isa), o.kv_type.c_str(),
                  o.n_prompt, depth, sp.mean, sp.sd);
      std::printf("| %s | %d | %s | %s | tg%d @ d%d | %.2f ± %.2f |\n", o.model.c_str(),
                  eng.pool().size(), kernels::isa_name(kernels::active().isa), o.kv_type.c_str(),
                  o.n_gen, depth, st.mean, st.sd);
    }
    nlohmann::ordered_json j;
    j["model"] = o.model;
    j["depth"] = depth;
    j["kv"] = o.kv_type;
    j["threads"] = eng.pool().size();
    j["isa"] = kernels::isa_name(kernels::active().isa);
    j["fill_s"] = fill_s;
    j["pp"] = {{"tokens", o.n_prompt}, {"tps", pp}, {"mean", sp.mean}, {"sd", sp.sd}};
    j["tg"] = {{"tokens", o.n_gen}, {"tps", tg}, {"mean", st.mean}, {"sd", st.sd}};
    j["kv_mib"] = double(eng.model().state_bytes(cp)) / 1048576.0;
    std::cout << j.dump() << std::endl;
  }
  return 0;
}

int run_bench(const BenchOpts& o) {
  if (!o.isa.empty()) {
    kernels::Isa isa;
    if (!kernels::parse_isa(o.isa.c_str(), isa)) {
      std::fprintf(stderr, "hearth: --isa must be generic, avx2 or avx512\n");
      return 1;
    }
    kernels::set_isa_cap(isa);
  }
  Peak peak;
  const int peak_threads = o.threads > 0 ? o.threads : int(std::thread::hardware_concurrency());
  if (o.peak) {
    peak = measure_peak(peak_threads);
    if (!o.json_only) print_peak(peak, peak_threads);
    if (o.model.empty()) {
      nlohmann::ordered_json j;
      j["isa"] = kernels::isa_name(kernels::active().isa);
      j["threads"] = peak_threads;
      j["peak"] = {{"int8_gops", 2 * peak.int8 / 1e9},
                   {"f32_gflops", 2 * peak.f32 / 1e9},
                   {"bf16_gflops", 2 * peak.bf16 / 1e9},
                   {"bandwidth_gbs", peak.bandwidth / 1e9}};
      std::cout << j.dump() << "\n";
      return 0;
    }
  }
  if (o.model.empty()) {
    std::fprintf(stderr, "hearth: bench needs -m MODEL (or --peak alone)\n");
    return 1;
  }
  if (o.n_prompt < 1 || o.n_gen < 1 || o.reps < 1) {
    std::fprintf(stderr, "hearth: -p, -n and -r must be positive\n");
    return 1;
  }
  runtime::EngineOptions eo;
  eo.n_threads = o.threads;
  if (o.repack) eo.repack = true;
  // --mmap promises weights read in place: no repacked copy unless asked for as well.
  if (o.no_repack || (o.mmap && !o.repack)) eo.repack = false;
  eo.placement = o.mmap      ? ops::Placement::kMapped
                 : o.no_mmap ? ops::Placement::kResident
                             : ops::Placement::kAuto;
  const auto t_load = std::chrono::steady_clock::now();
  auto eng = runtime::Engine::load(o.model, eo);
  if (!eng) {
    std::fprintf(stderr, "hearth: %s\n", eng.status().message().c_str());
    return 1;
  }
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  const int64_t nv = (*eng)->model().config().n_vocab;
  auto kv = models::parse_kv_type(o.kv_type);
  if (!kv) {
    std::fprintf(stderr, "hearth: --kv-type: %s\n", kv.status().message().c_str());
    return 1;
  }
  if (!o.depths.empty()) return run_depths(o, **eng, *kv);
  models::ContextParams cp;
  cp.n_ctx = o.n_prompt + o.n_gen + 64;
  cp.n_batch = o.n_prompt;
  cp.kv_type = *kv;
  std::vector<float> logits(static_cast<size_t>(nv));
  std::vector<double> pp, tg;
  using clk = std::chrono::steady_clock;
  for (int r = 0; r <= o.reps; ++r) {
    auto s = runtime::Session::create(**eng, cp);
    if (!s) {
      std::fprintf(stderr, "hearth: %s\n", s.status().message().c_str());
      return 1;
    }
    auto prompt = bench_tokens(o.n_prompt, 7 + r, nv);
    auto t0 = clk::now();
    if (auto st = (*s)->eval(prompt, false, logits.data()); !st) {
      std::fprintf(stderr, "hearth: %s\n", st.message().c_str());
      return 1;
    }
    const double pp_s = std::chrono::duration<double>(clk::now() - t0).count();
    (*s)->truncate(0);
    t0 = clk::now();
    auto start = bench_tokens(8, 99 + r, nv);
    if (auto st = (*s)->eval(start, false, logits.data()); !st) return 1;
    int produced = 0;
    for (;;) {
      int32_t best = 0;
      for (int64_t i = 1; i < nv; ++i)
        if (logits[i] > logits[best]) best = int32_t(i);
      if (++produced >= o.n_gen) break;
      if (auto st = (*s)->eval(std::span<const int32_t>(&best, 1), false, logits.data()); !st)
        return 1;
    }
    const double tg_s = std::chrono::duration<double>(clk::now() - t0).count();
    if (r > 0) {
      pp.push_back(o.n_prompt / pp_s);
      tg.push_back(produced / tg_s);
    }
  }
  std::vector<double> par;
  if (o.seqs > 0) {
    auto r = parallel_decode(**eng, o, *kv);
    if (!r) {
      std::fprintf(stderr, "hearth: %s\n", r.status().message().c_str());
      return 1;
    }
    par = std::move(*r);
  }
  const Stats sp = stats(pp), st = stats(tg);
  const auto rss = rss_mib();
  nlohmann::ordered_json j;
  j["model"] = o.model;
  j["threads"] = (*eng)->pool().size();
  j["isa"] = kernels::isa_name(kernels::active().isa);
  j["load_s"] = load_s;
  j["pp"] = {{"tokens", o.n_prompt}, {"tps", pp}, {"mean", sp.mean}, {"sd", sp.sd}};
  j["tg"] = {{"tokens", o.n_gen}, {"tps", tg}, {"mean", st.mean}, {"sd", st.sd}};
  if (o.seqs > 0) {
    const Stats sq = stats(par);
    j["tg_seqs"] = {{"seqs", o.seqs}, {"tokens", o.n_gen},
                    {"tps", par},     {"mean", sq.mean},
                    {"sd", sq.sd},    {"vs_tg", st.mean > 0 ? sq.mean / st.mean : 0.0}};
  }
  j["rss_mib"] = {{"total", rss[0]}, {"file", rss[1]}, {"anon", rss[2]}};
  j["file_mib"] = double((*eng)->file().file_size()) / 1048576.0;
  j["kv_mib"] = double((*eng)->model().state_bytes(cp)) / 1048576.0;
  // Each figure against its bound: prefill's multiply-adds (2 per weight read per token) against
  // the int8 peak (F32 FMA for float weights), decode's bytes per token against the bandwidth.
  double pp_frac = 0, tg_frac = 0;
  if (o.peak) {
    runtime::FitParams fp;
    fp.n_ctx = cp.n_ctx;
    auto est = runtime::estimate_memory((*eng)->file(), fp);
    if (est.is_ok() && est->decode_params > 0) {
      const bool float_weights = est->decode_bytes >= est->decode_params * 2;
      const double peak_macs = float_weights ? peak.f32 : peak.int8;
      // Prefill computes logits for its last token only: the output projection once per prompt.
      const double pp_macs =
          double(est->decode_params - est->output_params) + double(est->output_params) / o.n_prompt;
      if (peak_macs > 0) pp_frac = sp.mean * pp_macs / peak_macs;
      if (peak.bandwidth > 0) tg_frac = st.mean * double(est->decode_bytes) / peak.bandwidth;
      j["bound"] = {{"prefill_macs_per_token", pp_macs},
                    {"bytes_per_token", est->decode_bytes},
                    {"pp_of_peak", pp_frac},
                    {"pp_peak_kind", float_weights ? "f32" : "int8"},
                    {"tg_of_bandwidth", tg_frac}};
    }
  }
  if (!o.json_only) {
    std::printf("| model | threads | isa | test | t/s |\n|---|---:|---|---|---:|\n");
    std::printf("| %s | %d | %s | pp%d | %.2f ± %.2f |\n", o.model.c_str(), (*eng)->pool().size(),
                kernels::isa_name(kernels::active().isa), o.n_prompt, sp.mean, sp.sd);
    std::printf("| %s | %d | %s | tg%d | %.2f ± %.2f |\n", o.model.c_str(), (*eng)->pool().size(),
                kernels::isa_name(kernels::active().isa), o.n_gen, st.mean, st.sd);
    if (o.seqs > 0) {
      const Stats sq = stats(par);
      std::printf("| %s | %d | %s | tg%d x %d seqs (aggregate) | %.2f ± %.2f |\n", o.model.c_str(),
                  (*eng)->pool().size(), kernels::isa_name(kernels::active().isa), o.n_gen, o.seqs,
                  sq.mean, sq.sd);
    }
    if (pp_frac > 0 || tg_frac > 0)
      std::printf("\npp%d at %.0f%% of the compute peak, tg%d at %.0f%% of the bandwidth bound\n",
                  o.n_prompt, 100 * pp_frac, o.n_gen, 100 * tg_frac);
  }
  std::cout << j.dump() << "\n";
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  static BenchOpts o;
  auto* c = app.add_subcommand("bench", "measure prompt processing and generation speed");
  c->add_option("-m,--model", o.model, "GGUF model file");
  c->add_option("-p", o.n_prompt, "prompt tokens (default 512)");
  c->add_option("-n", o.n_gen, "generated tokens (default 128)");
  c->add_option("-t,--threads", o.threads, "threads (default: all cores)");
  c->add_option("-r,--reps", o.reps, "counted rounds after one warm-up (default 3)");
  c->add_option("--isa", o.isa, "cap the kernel level: generic, avx2, avxvnni, avx512");
  c->add_flag(
      "--repack", o.repack,
      "repack weights at load for faster decode (the default; HEARTH_REPACK=0 turns it off)");
  c->add_flag("--no-repack", o.no_repack, "run on the file's weight layout (no load-time repack)");
  c->add_flag(
      "--mmap", o.mmap,
      "read every weight in place from the file mapping (no load-time repack unless --repack)");
  c->add_flag("--no-mmap", o.no_mmap, "copy every weight into huge-page memory at load")
      ->excludes("--mmap");
  c->add_option("--seqs", o.seqs,
                "also decode this many sequences together, one token each per step, and report "
                "the aggregate tokens/s (continuous batching)")
      ->check(CLI::Range(1, 64));
  c->add_flag("--json", o.json_only, "print only the JSON line");
  c->add_option("--kv-type", o.kv_type, "KV cache type: f16 (default), q8_0, q4_0, f32");
  c->add_option("-d,--depth", o.depths,
                "llama-bench's depths, e.g. 4096,16384: pp and tg measured with the context "
                "already holding that many tokens (filled once per depth, not timed; no warm-up)");
  c->add_flag("--peak", o.peak,
              "also measure this CPU's int8/F32/BF16 dot-product peaks and memory bandwidth, and "
              "report pp and tg as fractions of their bounds (alone: only the peaks)");
  c->callback([] { std::exit(run_bench(o)); });
}

}  // namespace hearth::cli
