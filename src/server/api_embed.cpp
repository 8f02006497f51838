// Embeddings: POST /api/embed (Ollama), /api/embeddings (Ollama's legacy single vector) and
// /v1/embeddings (OpenAI). Every input of a call goes to the model's runner as one job, whose
// inputs share forward passes with each other and with concurrent calls (runtime/
// runner_embed.cpp). Vectors come back L2-normalized (the legacy endpoint: as the model pools
// them, as Ollama's did), `dimensions` cuts and renormalizes.
#include <cmath>

#include "runtime/scheduler.h"
#include "server/api.h"
#include "server/api_request.h"
#include "server/api_util.h"
#include "server/errors.h"

namespace hearth::server {

namespace {

enum class EmbedApi { kOllama, kLegacy, kOpenAI };

std::string base64(const uint8_t* p, size_t n) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = uint32_t(p[i]) << 16 | (i + 1 < n ? uint32_t(p[i + 1]) << 8 : 0) |
                       (i + 2 < n ? uint32_t(p[i + 2]) : 0);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += i + 1 < n ? k[(v >> 6) & 63] : '=';
    out += i + 2 < n ? k[v & 63] : '=';
  }
  return out;
}

class EmbedSink final : public runtime::Sink {
 public:
  EmbedSink(ResponderP res, EmbedApi api, std::string model, int dims, bool b64)
      : res_(std::move(res)), api_(api), model_(std::move(model)), dims_(dims), b64_(b64) {
    res_->watch_disconnect();
  }
  bool on_text(const std::string&) override { return true; }
  void on_done(const runtime::Stats& s) override { on_embeddings({}, s); }
  void on_error(const Status& e) override {
    res_->send(api_ == EmbedApi::kOpenAI ? openai_error(http_status(e.code()), e.message())
                                         : error_response(e));
  }
  bool cancelled() const override { return res_->closed(); }

  void on_embeddings(std::vector<std::vector<float>> v, const runtime::Stats& s) override {
    for (auto& e : v) {
      for (float x : e)
        if (!std::isfinite(x))
          return on_error(internal_error("the model produced a vector with NaN or Inf values"));
      if (dims_ > 0 && size_t(dims_) < e.size()) e.resize(size_t(dims_));
      if (api_ != EmbedApi::kLegacy || dims_ > 0) normalize(e);
    }
    json out;
    if (api_ == EmbedApi::kOpenAI) {
      json data = json::array();
      for (size_t i = 0; i < v.size(); ++i) {
        json item = {{"object", "embedding"}};
        if (b64_)
          item["embedding"] =
              base64(reinterpret_cast<const uint8_t*>(v[i].data()), v[i].size() * sizeof(float));
        else
          item["embedding"] = v[i];
        item["index"] = i;
        data.push_back(item);
      }
      out = {{"object", "list"},
             {"data", data},
             {"model", model_},
             {"usage",
              {{"prompt_tokens", s.prompt_eval_count}, {"total_tokens", s.prompt_eval_count}}}};
    } else if (api_ == EmbedApi::kLegacy) {
      out = {{"embedding", v.empty() ? json::array() : json(v[0])}};
    } else {
      out = {{"model", model_},
             {"embeddings", v},
             {"total_duration", s.total_ns},
             {"load_duration", s.load_ns},
             {"prompt_eval_count", s.prompt_eval_count}};
      if (s.prompt_truncated > 0) out["prompt_truncated"] = s.prompt_truncated;  // hearth
    }
    res_->send(json_ok(out));
  }

 private:
  static void normalize(std::vector<float>& e) {
    double n = 0;
    for (float x : e) n += double(x) * x;
    n = std::sqrt(n);
    if (n > 0)
      for (auto& x : e) x = float(x / n);
  }
  ResponderP res_;
  EmbedApi api_;
  std::string model_;
  int dims_;
  bool b64_;
};

}  // namespace

void Api::embed(const HttpRequest& req, ResponderP res) {
  const EmbedApi api = req.path == "/v1/embeddings"    ? EmbedApi::kOpenAI
                       : req.path == "/api/embeddings" ? EmbedApi::kLegacy
                                                       : EmbedApi::kOllama;
  const bool oai = api == EmbedApi::kOpenAI;
  auto fail = [&](const std::string& m) {
    res->send(oai ? openai_error(400, m) : json_error(400, m));
  };
  auto j = body_json(req, *res);
  if (!j) return;
  runtime::PromptSpec p;
  p.kind = runtime::PromptSpec::Kind::kEmbed;
  const char* key = api == EmbedApi::kLegacy ? "prompt" : "input";
  const json in = j->contains(key) ? (*j)[key] : json();
  if (in.is_string()) {
    if (!in.get<std::string>().empty() || oai) p.inputs.push_back(in.get<std::string>());
  } else if (in.is_array() && api != EmbedApi::kLegacy) {
    // Strings, or (OpenAI) token ids: one array of ints, or an array of such arrays.
    const bool ints = !in.empty() && in[0].is_number_integer();
    for (const auto& x : in) {
      if (x.is_string() && !ints) {
        p.inputs.push_back(x.get<std::string>());
      } else if (oai && ints && x.is_number_integer()) {
        if (p.input_tokens.empty()) p.input_tokens.emplace_back();
        p.input_tokens[0].push_back(int32_t(x.get<int64_t>()));
      } else if (oai && !ints && x.is_array()) {
        std::vector<int32_t> t;
        for (const auto& y : x) {
          if (!y.is_number_integer()) return fail("invalid input type");
          t.push_back(int32_t(y.get<int64_t>()));
        }
        p.input_tokens.push_back(std::move(t));
      } else {
        return fail("invalid input type");
      }
    }
    if (!p.input_tokens.empty() && !p.inputs.empty()) return fail("invalid input type");
    if (oai && p.inputs.empty() && p.input_tokens.empty()) return fail("invalid input");
  } else if (!in.is_null()) {
    return fail("invalid input type");
  } else if (oai) {
    return fail("invalid input");
  }
  if (j->contains("truncate") && !(*j)["truncate"].is_null()) {
    if (!(*j)["truncate"].is_boolean()) return fail("field 'truncate' must be a boolean");
    p.truncate = (*j)["truncate"].get<bool>();
  }
  int dims = 0;
  if (j->contains("dimensions") && !(*j)["dimensions"].is_null()) {
    const json& d = (*j)["dimensions"];
    if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > (1 << 20))
      return fail("dimensions must be a positive integer");
    dims = int(d.get<int64_t>());
  }
  bool b64 = false;
  if (oai && j->contains("encoding_format") && !(*j)["encoding_format"].is_null()) {
    const json& f = (*j)["encoding_format"];
    if (!f.is_string() || (f != "float" && f != "base64"))
      return fail("encoding_format must be \"float\" or \"base64\"");
    b64 = f == "base64";
  }
  InferenceRequest r;
  if (!prepare(store_, sched_, *j, *res, oai, j->value("options", json::object()), r)) return;
  auto sink = std::make_shared<EmbedSink>(res, api, r.model.name.display(), dims, b64);
  // No input: the model is loaded and nothing embedded (Ollama's way to warm a model up).
  if (p.inputs.empty() && p.input_tokens.empty()) p.kind = runtime::PromptSpec::Kind::kLoadOnly;
  runtime::Job job = make_job(std::move(r), std::move(p), sink);
  if (auto st = sched_->submit(std::move(job)); !st)
    res->send(oai ? openai_error(http_status(st.code()), st.message()) : error_response(st));
}

}  // namespace hearth::server
