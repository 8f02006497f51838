// GET /api/fit: the hardware-fit advisor (runtime/fit.h) over HTTP. Without `model`: this
// machine and every local model's verdict; with `model` (a local name, a registry name read by
// its header alone, or a GGUF path on the server): the full report.
#include <thread>

#include "registry/header.h"
#include "runtime/fit.h"
#include "runtime/scheduler.h"
#include "server/api.h"
#include "server/api_util.h"
#include "server/errors.h"

namespace hearth::server {

Result<json> fit_answer(const store::Store& st, const std::string& model,
                        const runtime::FitParams& p, int64_t memory_limit, bool insecure) {
  const auto m = runtime::machine_info(memory_limit);
  const double bw = runtime::memory_bandwidth();
  json out = {{"machine", runtime::machine_json(m, bw)}};
  if (model.empty()) {
    json list = json::array();
    HEARTH_ASSIGN_OR_RETURN(auto models, st.list());
    for (const auto& e : models) {
      auto h = hearth::registry::open_model_header(st, e.name.display(), false);
      json x = {{"name", e.name.display()}};
      auto r = h ? runtime::fit(*h->file, p, m, bw, false) : Result<runtime::FitReport>(h.status());
      if (!r) {
        x["error"] = r.status().message();
      } else {
        const json full = runtime::report_json(*r);
        for (const char* k :
             {"architecture", "parameters", "quantization", "context", "memory", "verdict", "fits",
              "reason", "max_context", "decode_tokens_per_second"})
          if (full.contains(k)) x[k] = full[k];
      }
      list.push_back(x);
    }
    out["models"] = list;
    return out;
  }
  HEARTH_ASSIGN_OR_RETURN(auto h, hearth::registry::open_model_header(st, model, insecure));
  HEARTH_ASSIGN_OR_RETURN(auto r, runtime::fit(*h.file, p, m, bw, true));
  out["model"] = h.name;
  out["source"] = h.source;
  out["size"] = h.size;
  const json full = runtime::report_json(r);
  for (auto& [k, v] : full.items()) out[k] = v;
  return out;
}

runtime::FitParams Api::fit_params() const {
  runtime::FitParams p;
  if (sched_) {
    p.n_ctx = sched_->options().default_ctx;
    p.n_batch = sched_->options().n_batch;
    p.kv_type = sched_->options().kv_type;
  }
  return p;
}

void Api::fit(const HttpRequest& req, ResponderP res) {
  const std::string model = query_value(req.query, "model");
  const std::string ctx_s = query_value(req.query, "ctx");
  const std::string par_s = query_value(req.query, "parallel");
  const bool insecure = query_value(req.query, "insecure") == "true";
  runtime::FitParams p = fit_params();
  for (auto [text, dst] : {std::pair{&ctx_s, &p.n_ctx}, std::pair{&par_s, &p.n_seq}}) {
    if (text->empty()) continue;
    char* end = nullptr;
    const long v = std::strtol(text->c_str(), &end, 10);
    if (*end != '\0' || v < 1 || v > (1 << 24))
      return res->send(json_error(400, "ctx and parallel must be positive integers"));
    *dst = int(v);
  }
  // The bandwidth probe (first call only) and registry reads take a while: not on the I/O thread.
  std::thread([this, res, model, p, insecure] {
    try {
      auto out =
          fit_answer(store_, model, p, sched_ ? sched_->options().memory_limit : 0, insecure);
      res->send(out ? json_ok(*out) : error_response(out.status()));
    } catch (const std::exception& e) {
      res->send(json_error(500, std::string("fit: ") + e.what()));
    }
  }).detach();
}

}  // namespace hearth::server
