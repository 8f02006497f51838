// `hearth fit [MODEL] [--ctx N]`: the hardware-fit advisor. Asks the running server (its
// machine, its store, its settings) and, when none runs, works the same answer out in-process.
#include <cstdio>
#include <iostream>

#include "cli/client/format.h"
#include "cli/client/http_client.h"
#include "cli/commands.h"
#include "runtime/fit.h"
#include "runtime/scheduler.h"
#include "server/api_util.h"
#include "store/store.h"

namespace hearth::cli {

namespace {

using json = nlohmann::ordered_json;

std::string gib(const json& v) {
  return v.is_number() ? runtime::human_bytes(v.get<int64_t>()) : "?";
}

std::string tps(const json& j) {
  if (!j.contains("decode_tokens_per_second")) return "-";
  const auto& d = j["decode_tokens_per_second"];
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", d.is_object() ? d.value("expected", 0.0) : d.get<double>());
  return b;
}

void print_machine(const json& m) {
  std::printf("%s, %d threads (%s), memory %s available of %s", m.value("cpu", "").c_str(),
              m.value("threads", 0), m.value("isa", "").c_str(), gib(m["memory_available"]).c_str(),
              gib(m["memory_total"]).c_str());
  if (m.contains("memory_bandwidth"))
    std::printf(", bandwidth %.1f GB/s measured", m["memory_bandwidth"].get<double>() / 1e9);
  std::printf("\n");
  for (const auto& g : m["gpus"])
    std::printf("GPU: %s%s (not used: hearth computes on the CPU)\n", g.value("name", "").c_str(),
                g.value("vram", int64_t(0)) > 0 ? (" " + gib(g["vram"])).c_str() : "");
}

void print_report(const json& j) {
  const auto& mem = j["memory"];
  std::printf("\n%s (%s, %s, %s parameters)\n", j.value("model", "").c_str(),
              j.value("architecture", "").c_str(), j.value("quantization", "").c_str(),
              std::to_string(j.value("parameters", int64_t(0))).c_str());
  std::printf("at %d tokens of context: %s — %s\n", j.value("context", 0),
              j.value("verdict", "").c_str(), j.value("reason", "").c_str());
  std::printf("  weights %s, KV cache %s, compute %s, tokenizer %s = %s\n",
              gib(mem["weights"]).c_str(), gib(mem["kv_cache"]).c_str(),
              gib(mem["compute"]).c_str(), gib(mem["tokenizer"]).c_str(),
              gib(mem["total"]).c_str());
  if (mem.value("not_loaded", int64_t(0)) > 0)
    std::printf("  (%s of vision/audio/MTP tensors in the file are never loaded)\n",
                gib(mem["not_loaded"]).c_str());
  std::printf("  longest context that fits now: %d tokens\n", j.value("max_context", 0));
  if (j.contains("decode_tokens_per_second")) {
    const auto& d = j["decode_tokens_per_second"];
    std::printf(
        "  decode: ~%.1f tokens/s expected (bandwidth bound %.1f; %.1f with the context full)\n",
        d.value("expected", 0.0), d.value("bound", 0.0), d.value("expected_full_context", 0.0));
  }
  std::vector<std::vector<std::string>> rows = {{"CONTEXT", "MEMORY", "VERDICT"}};
  for (const auto& c : j["contexts"])
    rows.push_back(
        {std::to_string(c.value("context", 0)), gib(c["total"]), c.value("verdict", "")});
  std::printf("\n%s", table(rows).c_str());
  if (!j["quantizations"].empty()) {
    rows = {{"QUANTIZATION", "WEIGHTS", "MEMORY", "VERDICT", "MAX CONTEXT", "DECODE T/S"}};
    for (const auto& q : j["quantizations"])
      rows.push_back({q.value("quantization", ""), gib(q["weights"]), gib(q["total"]),
                      q.value("verdict", ""), std::to_string(q.value("max_context", 0)), tps(q)});
    std::printf("\nthe same model at other quantization levels (at %d tokens):\n%s",
                j.value("context", 0), table(rows).c_str());
  }
}

}  // namespace

void add_fit_command(CLI::App& app) {
  static std::string model;
  static int ctx = 0, parallel = 0;
  static bool insecure = false, as_json = false;
  auto* c = app.add_subcommand(
      "fit", "which models fit this machine, at which context, and how fast they will decode");
  c->add_option("model", model,
                "a local model, a registry name or a GGUF file (default: all local models)");
  c->add_option("--ctx", ctx, "context length to size for (default: the server's, 4096)");
  c->add_option("--parallel", parallel, "sequences decoded at once (default 1)");
  c->add_flag("--insecure", insecure, "read a registry model over plain HTTP");
  c->add_flag("--json", as_json, "print the report as JSON (what GET /api/fit answers)");
  c->callback([] {
    json j;
    auto client = Client::from_env();
    if (client && client->alive()) {
      std::string q;
      auto add = [&](const std::string& k, const std::string& v) {
        std::string e;
        for (unsigned char ch : v)
          if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~')
            e += char(ch);
          else {
            char b[4];
            std::snprintf(b, sizeof b, "%%%02X", ch);
            e += b;
          }
        q += (q.empty() ? "?" : "&") + k + "=" + e;
      };
      if (!model.empty()) add("model", model);
      if (ctx > 0) add("ctx", std::to_string(ctx));
      if (parallel > 0) add("parallel", std::to_string(parallel));
      if (insecure) add("insecure", "true");
      auto r = client->request("GET", "/api/fit" + q);
      if (!r) fail(r.status().message());
      if (r->status != 200) fail(error_message(*r));
      j = json::parse(r->body, nullptr, false);
      if (j.is_discarded()) fail("the server's answer is not JSON");
    } else {
      runtime::FitParams p;
      if (ctx > 0) p.n_ctx = ctx;
      if (parallel > 0) p.n_seq = parallel;
      p.kv_type = runtime::SchedulerOptions::from_env().kv_type;  // what the server would use
      store::Store st(store::Store::default_root());
      auto a = server::fit_answer(st, model, p, runtime::SchedulerOptions::from_env().memory_limit,
                                  insecure);
      if (!a) fail(a.status().message());
      j = std::move(*a);
    }
    if (as_json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    print_machine(j["machine"]);
    if (!model.empty()) return print_report(j);
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "QUANTIZATION", "MEMORY", "VERDICT", "MAX CONTEXT", "DECODE T/S"}};
    for (const auto& m : j["models"]) {
      if (m.contains("error")) {
        rows.push_back({m.value("name", ""), "-", "-", m.value("error", ""), "-", "-"});
        continue;
      }
      rows.push_back({m.value("name", ""), m.value("quantization", ""), gib(m["memory"]["total"]),
                      m.value("verdict", ""), std::to_string(m.value("max_context", 0)), tps(m)});
    }
    std::printf("\n%s", table(rows).c_str());
  });
}

}  // namespace hearth::cli
