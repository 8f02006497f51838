// `hearth bench-spec`: generation speed with and without speculative decoding, through the
// server's own path (scheduler, runner, sampler), rounds alternating plain / speculative on one
// loaded model so that a shared machine's noise hits both alike. Greedy by default; the
// speculative output must equal the plain one (checked every round). Reports tokens/s of each,
// the speed-up, the share of draft tokens accepted and the tokens per target forward pass.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "runtime/scheduler.h"
#include "runtime/session.h"

namespace hearth::cli {
namespace {

struct SpecBenchOpts {
  std::string model, draft, prompt_file, task = "copy";
  bool lookup = false;
  int n_gen = 128, reps = 3, threads = 0, k = -1;
  double temperature = 0;
  bool json_only = false;
  bool pass_cost = false;
};

class Wait final : public runtime::Sink {
 public:
  bool on_text(const std::string& piece) override {
    text += piece;
    return true;
  }
  void on_done(const runtime::Stats& s) override {
    std::lock_guard<std::mutex> lk(mu_);
    stats = s;
    done_ = true;
    cv_.notify_all();
  }
  void on_error(const Status& e) override {
    std::lock_guard<std::mutex> lk(mu_);
    error = e.message();
    done_ = true;
    cv_.notify_all();
  }
  bool cancelled() const override { return false; }
  void wait() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return done_; });
  }
  std::string text, error;
  runtime::Stats stats;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

// An input-grounded task: a source file and the request to reproduce it with one change, so a
// model that does the task copies long spans of its input (what prompt lookup drafts from).
const char* kCopyPrompt = R"(Rename the function `parse_line` to `parse_record` in this file and
print the whole file again.

```python
import csv
import sys


def parse_line(line, sep=","):
    """Splits one line of the input into its fields."""
    fields = [f.strip() for f in line.split(sep)]
    return [f for f in fields if f]


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            rows.append(parse_line(line))
    return rows


def main():
    rows = load(sys.argv[1])
    writer = csv.writer(sys.stdout)
    for row in rows:
        writer.writerow(row)


if __name__ == "__main__":
    main()
```

Here is the file with the function renamed:

```python
import csv
import sys


def parse_record(line, sep=","):
)";

const char* kFreePrompt =
    "Write a short story about a lighthouse keeper who finds a message in a bottle.\n\n";

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

// What verification costs: one forward pass of 1 + k tokens of one sequence (after a 64-token
// prefix) against a pass of 1, k = 0, 1, 2, 4, 8, interleaved round by round. With acceptance a
// and k drafts a step yields (1 - a^(k+1)) / (1 - a) tokens, so this ratio bounds the speed-up a
// free drafter (prompt lookup) can give.
int run_pass_cost(const SpecBenchOpts& o) {
  runtime::EngineOptions eo;
  eo.n_threads = o.threads;
  auto eng = runtime::Engine::load(o.model, eo);
  if (!eng) {
    std::fprintf(stderr, "hearth: %s\n", eng.status().message().c_str());
    return 1;
  }
  const int64_t nv = (*eng)->model().config().n_vocab;
  models::ContextParams cp;
  cp.n_ctx = 256;
  cp.n_batch = 16;
  auto ctx = (*eng)->model().new_context(cp, (*eng)->pool());
  if (!ctx) return 1;
  std::vector<float> logits(size_t(nv) * 16);
  std::vector<models::BatchToken> batch;
  for (int i = 0; i < 64; i += 16) {
    batch.clear();
    for (int t = 0; t < 16; ++t) batch.push_back({int32_t(100 + 7 * (i + t)), i + t, 0, false});
    if (!(*eng)->model().forward(**ctx, batch, logits.data())) return 1;
  }
  const int ks[] = {0, 1, 2, 4, 8};
  std::vector<std::vector<double>> ms(5);
  using clk = std::chrono::steady_clock;
  for (int r = 0; r <= o.reps * 4; ++r)
    for (int i = 0; i < 5; ++i) {
      batch.clear();
      for (int t = 0; t <= ks[i]; ++t) batch.push_back({int32_t(500 + t), 64 + t, 0, true});
      const auto t0 = clk::now();
      if (!(*eng)->model().forward(**ctx, batch, logits.data())) return 1;
      if (r > 0) ms[size_t(i)].push_back(std::chrono::duration<double>(clk::now() - t0).count());
    }
  nlohmann::ordered_json j;
  j["model"] = o.model;
  if (!o.json_only)
    std::printf("| tokens in the pass | ms (mean) | cost vs 1 |\n|---:|---:|---:|\n");
  const double base = mean(ms[0]);
  for (int i = 0; i < 5; ++i) {
    const double m = mean(ms[size_t(i)]);
    j["pass_ms"][std::to_string(1 + ks[i])] = 1e3 * m;
    if (!o.json_only) std::printf("| %d | %.1f | %.2f |\n", 1 + ks[i], 1e3 * m, m / base);
  }
  std::cout << j.dump() << "\n";
  return 0;
}

int run_spec_bench(const SpecBenchOpts& o) {
  if (o.pass_cost && !o.model.empty()) return run_pass_cost(o);
  if (o.model.empty() || (o.draft.empty() && !o.lookup)) {
    std::fprintf(stderr, "hearth: bench-spec needs -m MODEL and --draft FILE and/or --lookup\n");
    return 1;
  }
  std::string prompt = o.task == "free" ? kFreePrompt : kCopyPrompt;
  if (!o.prompt_file.empty()) {
    std::ifstream f(o.prompt_file);
    if (!f) {
      std::fprintf(stderr, "hearth: cannot read %s\n", o.prompt_file.c_str());
      return 1;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    prompt = ss.str();
  }
  runtime::SchedulerOptions so;
  so.num_parallel = 1;
  so.n_threads = o.threads;
  so.default_ctx = 4096;
  so.keep_alive = std::chrono::hours(1);
  runtime::Scheduler sched(so);
  auto request = [&](bool spec) {
    runtime::Job j;
    j.model.model_path = o.model;
    j.model.draft_path = o.draft;
    j.prompt.kind = runtime::PromptSpec::Kind::kGenerate;
    j.prompt.raw = true;
    j.prompt.prompt = prompt;
    nlohmann::ordered_json opt = {{"temperature", o.temperature},
                                  {"num_predict", o.n_gen},
                                  {"seed", 42},
                                  {"lookup_decoding", spec && o.lookup}};
    // Plain rounds: the same runner (draft model loaded), no drafts.
    opt["draft_num_predict"] = spec ? (o.k >= 0 ? o.k : 4) : 0;
    auto g = runtime::merge_options(nlohmann::ordered_json::object(), opt);
    if (!g) {
      std::fprintf(stderr, "hearth: %s\n", g.status().message().c_str());
      std::exit(1);
    }
    j.opt = *g;
    auto w = std::make_shared<Wait>();
    j.sink = w;
    if (auto st = sched.submit(std::move(j)); !st) {
      std::fprintf(stderr, "hearth: %s\n", st.message().c_str());
      std::exit(1);
    }
    w->wait();
    if (!w->error.empty()) {
      std::fprintf(stderr, "hearth: %s\n", w->error.c_str());
      std::exit(1);
    }
    return w;
  };
  // echo: the model's own greedy continuation of the free prompt, quoted, then the prompt again:
  // an input that holds the answer, if the model answers the same way the second time.
  if (o.task == "echo" && o.prompt_file.empty()) {
    prompt = kFreePrompt;
    auto w = request(false);
    prompt = std::string(kFreePrompt) + w->text + "\n\n" + kFreePrompt;
  }
  std::vector<double> plain_tps, spec_tps, accept, per_step, target_tps;
  int mismatches = 0;
  if (!o.json_only)
    std::printf(
        "| round | plain t/s | speculative t/s | speed-up | drafted | accepted | "
        "tokens/step | without draft time t/s |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int r = 0; r <= o.reps; ++r) {  // round 0 warms up (load, caches); not counted
    // Alternate which goes first, so drift in the machine's load does not favour one.
    std::shared_ptr<Wait> a, b;
    if (r % 2 == 0) {
      a = request(false);
      b = request(true);
    } else {
      b = request(true);
      a = request(false);
    }
    if (a->stats.context != b->stats.context) ++mismatches;
    const double ta = a->stats.eval_count / (double(a->stats.eval_ns) / 1e9);
    const double tb = b->stats.eval_count / (double(b->stats.eval_ns) / 1e9);
    // The speculative run without its draft model's time: what the target side delivers at this
    // acceptance when drafting is (nearly) free, as prompt lookup is.
    const double tb_target =
        b->stats.eval_count / (double(b->stats.eval_ns - b->stats.draft_ns) / 1e9);
    const int d = b->stats.draft_count, acc = b->stats.draft_accepted;
    // Each target pass yields its accepted drafts plus one token of its own.
    const int steps = b->stats.eval_count - acc;
    const double tps_step = steps > 0 ? double(b->stats.eval_count) / steps : 0;
    if (r == 0) continue;
    plain_tps.push_back(ta);
    spec_tps.push_back(tb);
    accept.push_back(d > 0 ? double(acc) / d : 0);
    per_step.push_back(tps_step);
    target_tps.push_back(tb_target);
    if (!o.json_only)
      std::printf("| %d | %.2f | %.2f | %.2fx | %d | %d | %.2f | %.2f |\n", r, ta, tb, tb / ta, d,
                  acc, tps_step, tb_target);
  }
  nlohmann::ordered_json j;
  j["model"] = o.model;
  j["draft"] = o.draft;
  j["lookup"] = o.lookup;
  j["task"] = o.prompt_file.empty() ? o.task : o.prompt_file;
  j["tokens"] = o.n_gen;
  j["plain_tps"] = plain_tps;
  j["spec_tps"] = spec_tps;
  j["speedup"] = mean(spec_tps) / mean(plain_tps);
  j["acceptance"] = mean(accept);
  j["tokens_per_step"] = mean(per_step);
  j["spec_tps_without_draft_time"] = target_tps;
  j["speedup_without_draft_time"] = mean(target_tps) / mean(plain_tps);
  j["outputs_differ"] = mismatches;
  if (!o.json_only)
    std::printf(
        "\nmean: plain %.2f t/s, speculative %.2f t/s, speed-up %.2fx, acceptance %.1f%%, "
        "%.2f tokens per target pass, %.2fx without the draft model's time%s\n",
        mean(plain_tps), mean(spec_tps), mean(spec_tps) / mean(plain_tps), 100 * mean(accept),
        mean(per_step), mean(target_tps) / mean(plain_tps),
        mismatches ? " — OUTPUTS DIFFER" : ", outputs identical");
  std::cout << j.dump() << "\n";
  return mismatches && o.temperature <= 0 ? 2 : 0;
}

}  // namespace

void add_spec_bench_command(CLI::App& app) {
  static SpecBenchOpts o;
  auto* c = app.add_subcommand(
      "bench-spec", "measure generation with and without speculative decoding (alternating)");
  c->add_option("-m,--model", o.model, "target GGUF model file");
  c->add_option("--draft", o.draft, "draft GGUF model (same vocabulary)");
  c->add_flag("--lookup", o.lookup, "prompt-lookup drafting");
  c->add_option("-k", o.k, "draft tokens per step (draft_num_predict; default 4)");
  c->add_option("-n", o.n_gen, "generated tokens (default 128)");
  c->add_option("-r,--reps", o.reps, "counted rounds after one warm-up (default 3)");
  c->add_option("-t,--threads", o.threads, "threads (default: all cores)");
  c->add_option("--task", o.task,
                "built-in prompt: copy (input-grounded, default), free, or echo (the model's own "
                "free answer quoted, then the free prompt again)");
  c->add_option("--prompt-file", o.prompt_file, "prompt text (raw) instead of --task");
  c->add_option("--temperature", o.temperature, "sampling temperature (default 0: greedy)");
  c->add_flag("--json", o.json_only, "print only the JSON line");
  c->add_flag("--pass-cost", o.pass_cost,
              "instead: time one forward pass of 1, 2, 3, 5 and 9 tokens (verification's cost)");
  c->callback([] { std::exit(run_spec_bench(o)); });
}

}  // namespace hearth::cli
