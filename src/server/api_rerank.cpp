// Reranking: POST /api/rerank (errors shaped as Ollama's) and /v1/rerank, with llama-server's
// aliases /rerank, /reranking and /v1/reranking (errors shaped as OpenAI's). The request and the
// answer are llama-server's: `query` and `documents` (Jina's format) answered with
// {model, object: "list", usage, results: [{index, relevance_score}]}, or `texts` (Hugging Face
// TEI's format) answered with a bare array of {index, score[, text with return_text]}; results
// sorted by score, highest first, cut to `top_n`. The score is the classifier's raw output for
// the pair (no sigmoid), as llama-server gives it.
//
// Every document of a call goes to the model's runner as one job: the pairs share forward batches
// with each other and with concurrent calls (runtime/runner_embed.cpp), where llama-server runs
// one task per document. Hearth extensions: `return_documents` (Jina/Cohere: each result carries
// {"document": {"text"}}), `truncate` (cut an over-long document instead of failing; off by
// default, as llama-server fails), `keep_alive`, `options`.
#include <algorithm>
#include <cmath>

#include "runtime/scheduler.h"
#include "server/api.h"
#include "server/api_request.h"
#include "server/api_util.h"
#include "server/errors.h"

namespace hearth::server {

namespace {

struct RerankShape {
  bool oai = true;                // error shape: OpenAI's (the /v1 and llama-server routes)
  bool tei = false;               // `texts` given: TEI's bare array with `score`
  bool return_text = false;       // TEI: each result carries its `text`
  bool return_documents = false;  // Jina/Cohere (hearth): each result carries {document: {text}}
  int top_n = 0;
  std::string model;  // as the request named it (llama-server echoes the request's)
};

class RerankSink final : public runtime::Sink {
 public:
  RerankSink(ResponderP res, RerankShape shape, std::vector<std::string> docs)
      : res_(std::move(res)), shape_(std::move(shape)), docs_(std::move(docs)) {
    res_->watch_disconnect();
  }
  bool on_text(const std::string&) override { return true; }
  void on_done(const runtime::Stats& s) override { on_embeddings({}, s); }
  void on_error(const Status& e) override {
    res_->send(error_response(e, shape_.oai ? ApiFlavor::kOpenAI : ApiFlavor::kOllama));
  }
  bool cancelled() const override { return res_->closed(); }

  void on_embeddings(std::vector<std::vector<float>> v, const runtime::Stats& s) override {
    if (v.size() != docs_.size())
      return on_error(internal_error("the model scored " + std::to_string(v.size()) + " of " +
                                     std::to_string(docs_.size()) + " documents"));
    struct Scored {
      size_t index;
      float score;
    };
    std::vector<Scored> all;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i].empty() || !std::isfinite(v[i][0]))
        return on_error(internal_error("the model produced a NaN or Inf score"));
      all.push_back({i, v[i][0]});  // the first output: the relevance score (llama-server's)
    }
    // Highest first; equal scores keep the documents' order.
    std::stable_sort(all.begin(), all.end(),
                     [](const Scored& a, const Scored& b) { return a.score > b.score; });
    all.resize(std::min(all.size(), size_t(shape_.top_n)));
    json results = json::array();
    for (const auto& r : all) {
      json e = {{"index", r.index}, {shape_.tei ? "score" : "relevance_score", r.score}};
      if (shape_.tei && shape_.return_text) e["text"] = docs_[r.index];
      if (!shape_.tei && shape_.return_documents) e["document"] = {{"text", docs_[r.index]}};
      results.push_back(std::move(e));
    }
    if (shape_.tei) return res_->send(json_ok(results));
    json out = {
        {"model", shape_.model},
        {"object", "list"},
        {"usage", {{"prompt_tokens", s.prompt_eval_count}, {"total_tokens", s.prompt_eval_count}}},
        {"results", results}};
    res_->send(json_ok(out));
  }

 private:
  ResponderP res_;
  RerankShape shape_;
  std::vector<std::string> docs_;
};

// llama-server reads fields with json_value: a missing, null or mistyped field gives the default.
std::optional<std::vector<std::string>> strings(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_array()) return std::nullopt;
  std::vector<std::string> v;
  for (const auto& x : j[key]) {
    if (!x.is_string()) return std::nullopt;
    v.push_back(x.get<std::string>());
  }
  return v;
}

}  // namespace

void Api::rerank(const HttpRequest& req, ResponderP res) {
  RerankShape shape;
  shape.oai = req.path != "/api/rerank";
  auto fail = [&](const std::string& m) {
    res->send(shape.oai ? openai_error(400, m) : json_error(400, m));
  };
  auto j = body_json(req, *res);
  if (!j) return;
  // As llama-server: `texts` selects TEI's format; `query` must be a string; the documents a
  // non-empty array of strings (`documents`, else `texts`).
  shape.tei = j->contains("texts");
  if (!j->contains("query")) return fail("\"query\" must be provided");
  if (!(*j)["query"].is_string()) return fail("\"query\" must be a string");
  std::vector<std::string> docs;
  if (auto d = strings(*j, "documents"))
    docs = std::move(*d);
  else if (auto t = strings(*j, "texts"))
    docs = std::move(*t);
  if (docs.empty()) return fail("\"documents\" must be a non-empty string array");
  shape.top_n = int(std::min<size_t>(docs.size(), size_t(INT32_MAX)));
  if (j->contains("top_n") && (*j)["top_n"].is_number()) {
    const double n = (*j)["top_n"].get<double>();
    // llama-server would crash (std::length_error) on a negative count.
    if (n < 0) return fail("\"top_n\" must not be negative");
    shape.top_n = int(std::min(n, double(shape.top_n)));
  }
  auto flag = [&](const char* key, bool& dst) {
    if (j->contains(key) && (*j)[key].is_boolean()) dst = (*j)[key].get<bool>();
  };
  flag("return_text", shape.return_text);
  flag("return_documents", shape.return_documents);
  runtime::PromptSpec p;
  p.kind = runtime::PromptSpec::Kind::kRerank;
  p.query = (*j)["query"].get<std::string>();
  p.inputs = docs;
  p.truncate = false;  // llama-server refuses a pair longer than the context
  if (j->contains("truncate") && !(*j)["truncate"].is_null()) {
    if (!(*j)["truncate"].is_boolean()) return fail("field 'truncate' must be a boolean");
    p.truncate = (*j)["truncate"].get<bool>();
  }
  InferenceRequest r;
  if (!prepare(store_, sched_, *j, *res, shape.oai, j->value("options", json::object()), r)) return;
  shape.model = (*j)["model"].get<std::string>();
  auto sink = std::make_shared<RerankSink>(res, std::move(shape), std::move(docs));
  const bool oai = req.path != "/api/rerank";
  runtime::Job job = make_job(std::move(r), std::move(p), sink);
  if (auto st = sched_->submit(std::move(job)); !st)
    res->send(error_response(st, oai ? ApiFlavor::kOpenAI : ApiFlavor::kOllama));
}

}  // namespace hearth::server
