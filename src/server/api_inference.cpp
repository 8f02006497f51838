// server/api_inference.cpp — inference: /api/generate, /api/chat, /api/ps, /api/embed and the
// OpenAI /v1/chat/completions and /v1/completions, on top of the scheduler.
//
// A handler validates the request, resolves the model in the store and hands a Job to the
// scheduler with a Sink that writes the answer in the endpoint's shape: NDJSON lines (Ollama,
// streaming by default), server-sent events (OpenAI, when stream is true) or one JSON body.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>

#include "base/json_depth.h"
#include "grammar/grammar.h"
#include "grammar/json_schema.h"
#include "runtime/scheduler.h"
#include "server/api.h"
#include "server/api_request.h"
#include "server/api_util.h"
#include "store/create.h"
#include "store/model.h"

namespace hearth::server {
namespace {

using runtime::Job;
using runtime::PromptSpec;
using runtime::Stats;

std::string now_rfc3339() {
  const auto t = std::chrono::system_clock::now().time_since_epoch();
  const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t).count();
  return rfc3339(ns / 1000000000, ns % 1000000000);
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// OpenAI's error shape.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

enum class Shape { kGenerate, kChat, kOaiChat, kOaiCompletion };

// OpenAI's n > 1: the n choices of one request are n jobs (seeds seed, seed + 1, ...) whose sinks
// share one response: one SSE stream whose chunks carry each choice's index, or one body sent
// when the last choice is done. The jobs run on the same model's runner thread, so the sinks'
// callbacks never overlap; the mutex guards against the scheduler thread all the same.
struct ChoiceGroup {
  std::mutex mu;
  int n = 1, done = 0;
  bool failed = false;
  std::shared_ptr<Stream> stream;
  std::vector<json> choices;
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

// Writes one request's answer in its endpoint's shape. Runner-thread callbacks are sequential;
// cancelled() may be asked from the scheduler thread too.
class ApiSink final : public runtime::Sink {
 public:
  ApiSink(ResponderP res, Shape shape, bool stream, std::string model)
      : res_(std::move(res)), shape_(shape), streaming_(stream), model_(std::move(model)) {
    if (!streaming_) res_->watch_disconnect();
    id_ = std::to_string(next_id_++ % 999);
    created_ = unix_now();
  }
  bool include_usage = false;
  bool drop_thinking = false;  // think: false — thinking a model writes anyway is not returned
  // Choice `index` of a group (n > 1 on /v1/chat/completions); the id is shared.
  void join(std::shared_ptr<ChoiceGroup> g, int index, const std::string& id) {
    group_ = std::move(g);
    index_ = index;
    id_ = id;
  }
  const std::string& id() const { return id_; }

  void on_start() override { open(); }

  void on_logprob(const runtime::TokenLogprob& lp) override {
    auto bytes = [](const std::string& s) {
      json b = json::array();
      for (unsigned char c : s) b.push_back(int(c));
      return b;
    };
    json e = {{"token", lp.token}, {"logprob", lp.logprob}, {"bytes", bytes(lp.token)}};
    json top = json::array();
    for (const auto& a : lp.top)
      top.push_back({{"token", a.token}, {"logprob", a.logprob}, {"bytes", bytes(a.token)}});
    e["top_logprobs"] = top;
    pending_lp_.push_back(e);
    all_lp_.push_back(std::move(e));
  }

  bool on_output(const parsers::Parsed& p) override {
    const std::string thinking = drop_thinking ? std::string() : p.thinking;
    text_ += p.content;
    thinking_ += thinking;
    json calls = json::array();
    for (const auto& c : p.calls) {
      calls.push_back(
          {{"id", call_id()}, {"index", n_calls_++}, {"name", c.name}, {"arguments", c.arguments}});
      calls_.push_back(calls.back());
    }
    if (!streaming_) return !res_->closed();
    if (p.content.empty() && thinking.empty() && calls.empty()) return true;
    open();
    switch (shape_) {
      case Shape::kGenerate: {
        json j = {{"model", model_}, {"created_at", now_rfc3339()}, {"response", p.content}};
        if (!thinking.empty()) j["thinking"] = thinking;
        j["done"] = false;
        attach_logprobs(j);
        return write_line(j);
      }
      case Shape::kChat: {
        json m = ollama_message(p.content, thinking, calls);
        json j = {
            {"model", model_}, {"created_at", now_rfc3339()}, {"message", m}, {"done", false}};
        attach_logprobs(j);
        return write_line(j);
      }
      case Shape::kOaiChat: {
        // Reasoning, content and calls each in their own chunk, as Ollama splits them.
        bool ok = true;
        if (!thinking.empty())
          ok = write_sse(oai_chunk({{"role", "assistant"},
                                    {"content", ""},
                                    {"reasoning", thinking},
                                    {"reasoning_content", thinking}},
                                   nullptr));
        if (ok && !p.content.empty())
          ok = write_sse(with_oai_logprobs(
              oai_chunk({{"role", "assistant"}, {"content", p.content}}, nullptr)));
        if (ok && !calls.empty())
          ok = write_sse(oai_chunk(
              {{"role", "assistant"}, {"content", ""}, {"tool_calls", oai_calls(calls)}}, nullptr));
        return ok;
      }
      case Shape::kOaiCompletion:
        return write_sse(oai_completion_chunk(p.content, nullptr));
    }
    return true;
  }

  bool on_text(const std::string& piece) override {
    text_ += piece;
    if (!streaming_) return !res_->closed();
    open();
    switch (shape_) {
      case Shape::kGenerate: {
        json j = {
            {"model", model_}, {"created_at", now_rfc3339()}, {"response", piece}, {"done", false}};
        attach_logprobs(j);
        return write_line(j);
      }
      case Shape::kChat: {
        json j = {{"model", model_},
                  {"created_at", now_rfc3339()},
                  {"message", {{"role", "assistant"}, {"content", piece}}},
                  {"done", false}};
        attach_logprobs(j);
        return write_line(j);
      }
      case Shape::kOaiChat: {
        json delta = {{"role", "assistant"}, {"content", piece}};
        return write_sse(with_oai_logprobs(oai_chunk(delta, nullptr)));
      }
      case Shape::kOaiCompletion: {
        json c = oai_completion_chunk(piece, nullptr);
        if (!pending_lp_.empty()) {
          c["choices"][0]["logprobs"] = completion_logprobs(pending_lp_);
          pending_lp_ = json::array();
        }
        return write_sse(c);
      }
    }
    return true;
  }

  void on_done(const Stats& s) override {
    open();
    if (streaming_ && !stream_) return;  // the response was already used
    json stats = json::object();
    if (s.done_reason != "load") {
      stats["total_duration"] = s.total_ns;
      stats["load_duration"] = s.load_ns;
      stats["prompt_eval_count"] = s.prompt_eval_count;
      stats["prompt_eval_duration"] = s.prompt_eval_ns;
      stats["eval_count"] = s.eval_count;
      stats["eval_duration"] = s.eval_ns;
    } else if (s.load_ns > 0) {
      stats["total_duration"] = s.total_ns;
      stats["load_duration"] = s.load_ns;
    }
    const std::string oai_reason = s.done_reason == "length" ? "length"
                                   : !calls_.empty()         ? "tool_calls"
                                                             : "stop";
    json usage = {{"prompt_tokens", s.prompt_eval_count},
                  {"completion_tokens", s.eval_count},
                  {"total_tokens", s.prompt_eval_count + s.eval_count}};
    switch (shape_) {
      case Shape::kGenerate:
      case Shape::kChat: {
        json j = {{"model", model_}, {"created_at", now_rfc3339()}};
        if (shape_ == Shape::kGenerate) {
          j["response"] = streaming_ ? "" : text_;
          if (!streaming_ && !thinking_.empty()) j["thinking"] = thinking_;
        } else if (streaming_) {
          j["message"] = {{"role", "assistant"}, {"content", ""}};
        } else {
          j["message"] = ollama_message(text_, thinking_, calls_);
        }
        j["done"] = true;
        j["done_reason"] = s.done_reason;
        if (shape_ == Shape::kGenerate && !s.context.empty() && want_context)
          j["context"] = s.context;
        for (auto& [k, v] : stats.items()) j[k] = v;
        if (!streaming_ && !all_lp_.empty()) j["logprobs"] = all_lp_;
        if (streaming_) attach_logprobs(j);
        // hearth extension: an over-long prompt was shortened (Ollama does this silently).
        if (s.prompt_truncated > 0) j["prompt_truncated"] = s.prompt_truncated;
        if (s.prompt_cached > 0) j["prompt_cached"] = s.prompt_cached;
        if (streaming_) {
          write_line(j);
          stream_->end();
        } else {
          res_->send(json_ok(j));
        }
        return;
      }
      case Shape::kOaiChat: {
        if (group_) return group_done(oai_reason, usage);
        if (streaming_) {
          open();
          write_sse(oai_chunk(json::object(), oai_reason));
          if (include_usage) {
            json u = oai_chunk(json::object(), nullptr);
            u["choices"] = json::array();
            u["usage"] = usage;
            write_sse(u);
          }
          stream_->write("data: [DONE]\n\n");
          stream_->end();
          return;
        }
        json j = {{"id", "chatcmpl-" + id_},
                  {"object", "chat.completion"},
                  {"created", created_},
                  {"model", model_},
                  {"system_fingerprint", "fp_ollama"},
                  {"choices",
                   json::array(
                       {{{"index", 0},
                         {"message", oai_message()},
                         {"logprobs", all_lp_.empty() ? json(nullptr) : json{{"content", all_lp_}}},
                         {"finish_reason", oai_reason}}})},
                  {"usage", usage}};
        res_->send(json_ok(j));
        return;
      }
      case Shape::kOaiCompletion: {
        if (streaming_) {
          open();
          write_sse(oai_completion_chunk("", oai_reason));
          if (include_usage) {
            json u = oai_completion_chunk("", nullptr);
            u["choices"] = json::array();
            u["usage"] = usage;
            write_sse(u);
          }
          stream_->write("data: [DONE]\n\n");
          stream_->end();
          return;
        }
        json j = {{"id", "cmpl-" + id_},
                  {"object", "text_completion"},
                  {"created", created_},
                  {"model", model_},
                  {"system_fingerprint", "fp_ollama"},
                  {"choices",
                   json::array({{{"text", text_},
                                 {"index", 0},
                                 {"finish_reason", oai_reason},
                                 {"logprobs", all_lp_.empty() ? json(nullptr)
                                                              : completion_logprobs(all_lp_)}}})},
                  {"usage", usage}};
        res_->send(json_ok(j));
        return;
      }
    }
  }

  void on_error(const Status& error) override {
    if (group_) {
      std::lock_guard<std::mutex> lk(group_->mu);
      if (group_->failed) return;  // the first error answered for the whole group
      group_->failed = true;
    }
    const auto flavor = shape_ == Shape::kOaiChat || shape_ == Shape::kOaiCompletion
                            ? ApiFlavor::kOpenAI
                            : ApiFlavor::kOllama;
    if (stream_) {  // the status line is gone: the error becomes the last line of the stream
      if (flavor == ApiFlavor::kOpenAI)
        stream_->write("data: " + error_response(error, flavor).body + "\n\n");
      else
        write_line({{"error", error.message()}});
      stream_->end();
      return;
    }
    res_->send(error_response(error, flavor));
  }

  bool cancelled() const override {
    if (group_) {
      std::lock_guard<std::mutex> lk(group_->mu);
      if (group_->failed) return true;
      if (group_->stream) return group_->stream->closed();
    }
    return stream_ ? stream_->closed() : res_->closed();
  }

  bool want_context = true;

 private:
  void open() {
    if (!streaming_ || stream_) return;
    if (group_) {
      std::lock_guard<std::mutex> lk(group_->mu);
      if (group_->stream) {  // another choice opened it (and wrote the role chunk of its own)
        stream_ = group_->stream;
        write_sse(oai_chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
        return;
      }
      stream_ = res_->stream(200, "text/event-stream");
      group_->stream = stream_;
      if (stream_) write_sse(oai_chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
      return;
    }
    const bool sse = shape_ == Shape::kOaiChat || shape_ == Shape::kOaiCompletion;
    stream_ = res_->stream(200, sse ? "text/event-stream" : "application/x-ndjson");
    if (!stream_) return;
    if (shape_ == Shape::kOaiChat)  // the first chunk carries the role
      write_sse(oai_chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
  }
  // Logprobs not yet sent ride on the next chunk (Ollama: `logprobs` beside the text).
  void attach_logprobs(json& j) {
    if (pending_lp_.empty()) return;
    j["logprobs"] = pending_lp_;
    pending_lp_ = json::array();
  }
  json with_oai_logprobs(json chunk) {
    if (!pending_lp_.empty()) {
      chunk["choices"][0]["logprobs"] = {{"content", pending_lp_}};
      pending_lp_ = json::array();
    }
    return chunk;
  }
  // The legacy completions shape: parallel arrays, top_logprobs as {token: logprob} maps.
  static json completion_logprobs(const json& lps) {
    json tokens = json::array(), lp = json::array(), top = json::array(), off = json::array();
    int64_t at = 0;
    for (const auto& e : lps) {
      tokens.push_back(e["token"]);
      lp.push_back(e["logprob"]);
      json m = json::object();
      for (const auto& a : e["top_logprobs"]) m[a["token"].get<std::string>()] = a["logprob"];
      top.push_back(m);
      off.push_back(at);
      at += int64_t(e["token"].get<std::string>().size());
    }
    return {
        {"tokens", tokens}, {"token_logprobs", lp}, {"top_logprobs", top}, {"text_offset", off}};
  }
  // The end of one choice of a group; the last one finishes the response.
  void group_done(const std::string& reason, const json& usage) {
    std::unique_lock<std::mutex> lk(group_->mu);
    if (group_->failed) return;
    group_->prompt_tokens = usage["prompt_tokens"].get<int64_t>();
    group_->completion_tokens += usage["completion_tokens"].get<int64_t>();
    if (streaming_) {
      lk.unlock();
      open();
      write_sse(oai_chunk(json::object(), reason));
      lk.lock();
    } else {
      group_->choices.push_back(
          {{"index", index_},
           {"message", oai_message()},
           {"logprobs", all_lp_.empty() ? json(nullptr) : json{{"content", all_lp_}}},
           {"finish_reason", reason}});
    }
    if (++group_->done < group_->n) return;
    const json total = {{"prompt_tokens", group_->prompt_tokens},
                        {"completion_tokens", group_->completion_tokens},
                        {"total_tokens", group_->prompt_tokens + group_->completion_tokens}};
    if (streaming_) {
      if (include_usage) {
        json u = oai_chunk(json::object(), nullptr);
        u["choices"] = json::array();
        u["usage"] = total;
        write_sse(u);
      }
      if (stream_) {
        stream_->write("data: [DONE]\n\n");
        stream_->end();
      }
      return;
    }
    std::sort(group_->choices.begin(), group_->choices.end(),
              [](const json& a, const json& b) { return a["index"] < b["index"]; });
    res_->send(json_ok({{"id", "chatcmpl-" + id_},
                        {"object", "chat.completion"},
                        {"created", created_},
                        {"model", model_},
                        {"system_fingerprint", "fp_ollama"},
                        {"choices", group_->choices},
                        {"usage", total}}));
  }
  // Ollama's tool call: {id, function: {index, name, arguments: {...}}}.
  static json ollama_message(const std::string& content, const std::string& thinking,
                             const json& calls) {
    json m = {{"role", "assistant"}, {"content", content}};
    if (!thinking.empty()) m["thinking"] = thinking;
    if (!calls.empty()) {
      json tc = json::array();
      for (const auto& c : calls)
        tc.push_back(
            {{"id", c["id"]},
             {"function",
              {{"index", c["index"]}, {"name", c["name"]}, {"arguments", c["arguments"]}}}});
      m["tool_calls"] = tc;
    }
    return m;
  }
  // OpenAI's: {id, index, type, function: {name, arguments: "<JSON text>"}}.
  static json oai_calls(const json& calls) {
    json tc = json::array();
    for (const auto& c : calls)
      tc.push_back({{"id", c["id"]},
                    {"index", c["index"]},
                    {"type", "function"},
                    {"function", {{"name", c["name"]}, {"arguments", dump(c["arguments"])}}}});
    return tc;
  }
  json oai_message() const {
    json m = {{"role", "assistant"}, {"content", text_}};
    if (!thinking_.empty()) {
      m["reasoning"] = thinking_;          // Ollama's field
      m["reasoning_content"] = thinking_;  // llama-server's and DeepSeek's
    }
    if (!calls_.empty()) m["tool_calls"] = oai_calls(calls_);
    return m;
  }
  // Ollama's form: call_ and 8 characters of [a-z0-9].
  static std::string call_id() {
    static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::string id = "call_";
    for (int i = 0; i < 8; ++i) id += kChars[rng() % 36];
    return id;
  }
  bool write_line(const json& j) { return stream_ && stream_->write(dump(j) + "\n"); }
  bool write_sse(const json& j) { return stream_ && stream_->write("data: " + dump(j) + "\n\n"); }
  json oai_chunk(const json& delta, const json& finish) const {
    return {{"id", "chatcmpl-" + id_},
            {"object", "chat.completion.chunk"},
            {"created", created_},
            {"model", model_},
            {"system_fingerprint", "fp_ollama"},
            {"choices",
             json::array({{{"index", index_}, {"delta", delta}, {"finish_reason", finish}}})}};
  }
  json oai_completion_chunk(const std::string& text, const json& finish) const {
    return {
        {"id", "cmpl-" + id_},
        {"object", "text_completion"},
        {"created", created_},
        {"model", model_},
        {"system_fingerprint", "fp_ollama"},
        {"choices",
         json::array(
             {{{"text", text}, {"index", 0}, {"finish_reason", finish}, {"logprobs", nullptr}}})}};
  }

  ResponderP res_;
  Shape shape_;
  bool streaming_;
  std::string model_, text_, thinking_, id_;
  std::shared_ptr<ChoiceGroup> group_;
  int index_ = 0;
  json calls_ = json::array();  // every call so far: {id, index, name, arguments}
  json pending_lp_ = json::array(), all_lp_ = json::array();
  int n_calls_ = 0;
  int64_t created_ = 0;
  std::shared_ptr<Stream> stream_;
  static inline std::atomic<uint64_t> next_id_{0};
};

// Field readers that answer 400 on a wrong type; they return false after answering.
struct Fields {
  const json& j;
  Responder& res;
  bool oai = false;
  bool fail(const std::string& msg) {
    res.send(oai ? openai_error(400, msg) : json_error(400, msg));
    return false;
  }
  bool str(const char* k, std::string& out) {
    if (!j.contains(k) || j[k].is_null()) return true;
    if (!j[k].is_string()) return fail(std::string("field '") + k + "' must be a string");
    out = j[k].get<std::string>();
    return true;
  }
  bool opt_str(const char* k, std::optional<std::string>& out) {
    if (!j.contains(k) || j[k].is_null()) return true;
    if (!j[k].is_string()) return fail(std::string("field '") + k + "' must be a string");
    out = j[k].get<std::string>();
    return true;
  }
  bool boolean(const char* k, bool& out) {
    if (!j.contains(k) || j[k].is_null()) return true;
    if (!j[k].is_boolean()) return fail(std::string("field '") + k + "' must be a boolean");
    out = j[k].get<bool>();
    return true;
  }
};

}  // namespace

// Shared front half of every inference endpoint: the model by name, its options, keep_alive.

// The scheduler's job for a prepared request.
Job make_job(InferenceRequest r, PromptSpec p, std::shared_ptr<runtime::Sink> sink) {
  Job job;
  job.model = std::move(r.model);
  job.adapters = std::move(r.adapters);
  job.opt = std::move(r.opt);
  job.keep_alive = r.keep_alive;
  job.prompt = std::move(p);
  job.sink = std::move(sink);
  return job;
}

bool prepare(store::Store& st, runtime::Scheduler* sched, const json& j, Responder& res, bool oai,
             const json& options, InferenceRequest& out) {
  auto err = [&](int code, const std::string& m) {
    res.send(oai ? openai_error(code, m) : json_error(code, m));
    return false;
  };
  if (!sched) return err(503, "this server has no scheduler (inference is disabled)");
  std::string name;
  if (j.contains("model") && j["model"].is_string()) name = j["model"].get<std::string>();
  if (j.contains("model") && !j["model"].is_null() && !j["model"].is_string())
    return err(400, "field 'model' must be a string");
  if (name.empty()) return err(400, "model is required");
  auto n = store::ModelName::parse(name);
  if (!n) return err(400, "invalid model name");
  auto rec = store::resolve_model(st, *n);
  if (!rec) {
    if (rec.status().code() == StatusCode::kNotFound)
      return err(404, "model '" + name + "' not found");
    return err(http_status(rec.status().code()), rec.status().message());
  }
  out.model = std::move(*rec);
  if (auto st = select_adapters(j, out.model, out.adapters); !st) return err(400, st.message());
  auto o = runtime::merge_options(out.model.params, options);
  if (!o) return err(400, o.status().message());
  out.opt = std::move(*o);
  // logprobs: a bool (Ollama, OpenAI chat) or a count (OpenAI completions); top_logprobs 0-20.
  if (j.contains("logprobs") && !j["logprobs"].is_null()) {
    const json& l = j["logprobs"];
    if (l.is_boolean()) {
      out.opt.logprobs = l.get<bool>();
    } else if (l.is_number_integer() && l.get<int64_t>() >= 0 && l.get<int64_t>() <= 20) {
      out.opt.logprobs = true;
      out.opt.top_logprobs = int(l.get<int64_t>());
    } else {
      return err(400, "logprobs must be a boolean (or 0-20 on /v1/completions)");
    }
  }
  if (j.contains("top_logprobs") && !j["top_logprobs"].is_null()) {
    const json& t = j["top_logprobs"];
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > 20)
      return err(400, "top_logprobs must be between 0 and 20");
    out.opt.top_logprobs = int(t.get<int64_t>());
    if (out.opt.top_logprobs > 0) out.opt.logprobs = true;
  }
  if (j.contains("keep_alive") && !j["keep_alive"].is_null()) {
    auto ka = runtime::parse_keep_alive(j["keep_alive"]);
    if (!ka) return err(400, ka.status().message());
    out.keep_alive = *ka;
  }
  return true;
}

// Ollama's `format` ("json" or a JSON schema object) and llama-server's raw `grammar` (GBNF):
// compiled here so that a schema or grammar hearth cannot enforce is a 400 naming the problem
// before anything runs; the runner compiles the same text again for the matcher.
static bool read_constraints(const json& j, Responder& res, bool oai, PromptSpec& p) {
  auto fail = [&](const std::string& m) {
    res.send(oai ? openai_error(400, m) : json_error(400, m));
    return false;
  };
  if (j.contains("format") && !j["format"].is_null()) {
    const json& f = j["format"];
    if (f.is_string() && f == "") {
      // Ollama: an empty format is no format.
    } else if ((f.is_string() && f == "json") || f.is_object()) {
      if (auto g = grammar::json_schema_grammar(f); !g)
        return fail("invalid format: " + g.status().message());
      p.format = f;
    } else {
      return fail("invalid format: " + dump(f) +
                  "; expected \"json\" or a valid JSON Schema object");
    }
  }
  if (oai && j.contains("response_format") && !j["response_format"].is_null()) {
    const json& rf = j["response_format"];
    const std::string type = rf.is_object() ? rf.value("type", "") : "";
    if (type == "json_object") {
      p.format = "json";
    } else if (type == "json_schema") {
      if (!rf.contains("json_schema") || !rf["json_schema"].is_object() ||
          !rf["json_schema"].contains("schema") || !rf["json_schema"]["schema"].is_object())
        return fail("response_format.json_schema.schema must be an object");
      const json& sch = rf["json_schema"]["schema"];
      if (auto g = grammar::json_schema_grammar(sch); !g)
        return fail("invalid response_format: " + g.status().message());
      p.format = sch;
    } else if (type != "text") {
      return fail("response_format.type must be \"text\", \"json_object\" or \"json_schema\"");
    }
  }
  if (j.contains("grammar") && !j["grammar"].is_null()) {
    if (!j["grammar"].is_string()) return fail("field 'grammar' must be a string (GBNF)");
    const std::string g = j["grammar"].get<std::string>();
    if (!g.empty()) {
      if (auto parsed = grammar::Grammar::parse(g); !parsed)
        return fail("invalid grammar: " + parsed.status().message());
      p.grammar = g;
    }
  }
  if (p.format && !p.grammar.empty()) return fail("give either a format or a grammar, not both");
  if (j.contains("parallel_tool_calls") && !j["parallel_tool_calls"].is_null()) {
    if (!j["parallel_tool_calls"].is_boolean())
      return fail("field 'parallel_tool_calls' must be a boolean");
    p.parallel_tool_calls = j["parallel_tool_calls"].get<bool>();
  }
  // tool_choice (OpenAI's; on /api/chat a hearth extension, since Ollama ignores it): "auto",
  // "none", "required", or {"type": "function", "function": {"name": ...}}.
  if (j.contains("tool_choice") && !j["tool_choice"].is_null()) {
    const json& tc = j["tool_choice"];
    if (tc.is_string() && (tc == "auto" || tc == "none" || tc == "required")) {
      p.tool_choice = tc.get<std::string>();
    } else if (tc.is_object() && tc.contains("function") && tc["function"].is_object() &&
               tc["function"].contains("name") && tc["function"]["name"].is_string()) {
      p.tool_choice = tc["function"]["name"].get<std::string>();
      if (p.tool_choice == "auto" || p.tool_choice == "none" || p.tool_choice == "required")
        return fail("a function named like a tool_choice mode cannot be forced");
    } else {
      return fail(
          "tool_choice must be \"auto\", \"none\", \"required\" or "
          "{\"type\": \"function\", \"function\": {\"name\": ...}}");
    }
    const bool has_tools = p.tools && p.tools->is_array() && !p.tools->empty();
    if (!has_tools && p.tool_choice != "auto" && p.tool_choice != "none")
      return fail("tool_choice \"" + p.tool_choice + "\" needs tools");
    if (p.tool_choice != "auto" && p.tool_choice != "none" && (p.format || !p.grammar.empty()))
      return fail("tool_choice forcing a call cannot be combined with a format or grammar");
  }
  return true;
}

static bool read_think(const json& j, Responder& res, std::optional<bool>& think) {
  if (!j.contains("think") || j["think"].is_null()) return true;
  const json& t = j["think"];
  if (t.is_boolean()) {
    think = t.get<bool>();
    return true;
  }
  if (t.is_string() && (t == "low" || t == "medium" || t == "high" || t == "max")) {
    think = true;
    return true;
  }
  res.send(json_error(400, "invalid think value: " + dump(t)));
  return false;
}

// Empty prompt / messages: load the model (or unload it with keep_alive 0).
static void load_or_unload(runtime::Scheduler& sched, InferenceRequest& r, ResponderP res,
                           Shape shape, bool stream) {
  const std::string name = r.model.name.display();
  if (r.keep_alive && r.keep_alive->count() == 0) {
    sched.unload(r.model.model_path);
    json j = {{"model", name}, {"created_at", now_rfc3339()}};
    if (shape == Shape::kChat)
      j["message"] = {{"role", "assistant"}, {"content", ""}};
    else
      j["response"] = "";
    j["done"] = true;
    j["done_reason"] = "unload";
    return res->send(json_ok(j));
  }
  PromptSpec load;
  load.kind = PromptSpec::Kind::kLoadOnly;
  Job job =
      make_job(std::move(r), std::move(load), std::make_shared<ApiSink>(res, shape, stream, name));
  if (auto st = sched.submit(std::move(job)); !st) res->send(error_response(st));
}

void Api::generate(const HttpRequest& req, ResponderP res) {
  auto j = body_json(req, *res);
  if (!j) return;
  Fields f{*j, *res};
  PromptSpec p;
  p.kind = PromptSpec::Kind::kGenerate;
  bool stream = true;
  if (!f.str("prompt", p.prompt) || !f.str("suffix", p.suffix) || !f.opt_str("system", p.system) ||
      !f.opt_str("template", p.template_override) || !f.boolean("raw", p.raw) ||
      !f.boolean("stream", stream))
    return;
  if (j->contains("options") && !(*j)["options"].is_null() && !(*j)["options"].is_object())
    return res->send(json_error(400, "field 'options' must be an object"));
  if (j->contains("context") && !(*j)["context"].is_null()) {
    const json& c = (*j)["context"];
    if (!c.is_array()) return res->send(json_error(400, "field 'context' must be an array"));
    for (const auto& x : c) {
      if (!x.is_number_integer())
        return res->send(json_error(400, "field 'context' must hold token ids"));
      p.context.push_back(x.get<int32_t>());
    }
  }
  if (p.raw && (p.template_override || p.system || !p.context.empty()))
    return res->send(json_error(400, "raw mode does not support template, system, or context"));
  if (j->contains("images") && (*j)["images"].is_array() && !(*j)["images"].empty())
    return res->send(json_error(400, "this model does not support images"));
  if (!read_constraints(*j, *res, false, p) || !read_think(*j, *res, p.think)) return;
  InferenceRequest r;
  if (!prepare(store_, sched_, *j, *res, false, j->value("options", json::object()), r)) return;
  for (int32_t t : p.context)
    if (t < 0) return res->send(json_error(400, "field 'context' holds an invalid token id"));
  if (p.prompt.empty() && p.suffix.empty())
    return load_or_unload(*sched_, r, res, Shape::kGenerate, stream);
  const std::string name = r.model.name.display();
  auto sink = std::make_shared<ApiSink>(res, Shape::kGenerate, stream, name);
  sink->want_context = !p.raw;
  sink->drop_thinking = p.think && !*p.think;
  Job job = make_job(std::move(r), std::move(p), sink);
  if (auto st = sched_->submit(std::move(job)); !st) res->send(error_response(st));
}

// Ollama messages: objects with a string role; content a string (or null with tool calls).
static bool read_messages(const json& j, Responder& res, bool oai, json& out) {
  auto err = [&](const std::string& m) {
    res.send(oai ? openai_error(400, m) : json_error(400, m));
    return false;
  };
  if (!j.contains("messages") || j["messages"].is_null()) {
    out = json::array();
    return true;
  }
  if (!j["messages"].is_array()) return err("field 'messages' must be an array");
  out = json::array();
  for (const auto& m : j["messages"]) {
    if (!m.is_object()) return err("each message must be an object");
    if (!m.contains("role") || !m["role"].is_string()) return err("each message needs a role");
    json x = m;
    if (m.contains("content") && m["content"].is_array()) {
      // OpenAI content parts: text parts are joined; images are not supported yet.
      std::string text;
      for (const auto& part : m["content"]) {
        if (part.is_object() && part.contains("type") && part["type"] == "text" &&
            part.contains("text") && part["text"].is_string())
          text += part["text"].get<std::string>();
        else
          return err("only text content parts are supported by this model");
      }
      x["content"] = text;
    } else if (m.contains("content") && !m["content"].is_null() && !m["content"].is_string()) {
      return err("message content must be a string");
    }
    if (oai && x.contains("tool_calls") && x["tool_calls"].is_array()) {
      // OpenAI sends arguments as a JSON string; templates want the object.
      for (auto& tc : x["tool_calls"])
        if (tc.contains("function") && tc["function"].contains("arguments") &&
            tc["function"]["arguments"].is_string()) {
          auto a = parse_json_bounded<json>(tc["function"]["arguments"].get<std::string>());
          if (a.is_discarded()) return err("invalid tool call arguments");
          tc["function"]["arguments"] = a;
        }
    }
    if (m.contains("images") && m["images"].is_array() && !m["images"].empty())
      return err("this model does not support images");
    out.push_back(std::move(x));
  }
  return true;
}

void Api::chat(const HttpRequest& req, ResponderP res) {
  auto j = body_json(req, *res);
  if (!j) return;
  Fields f{*j, *res};
  PromptSpec p;
  p.kind = PromptSpec::Kind::kChat;
  bool stream = true;
  if (!f.boolean("stream", stream)) return;
  if (!read_messages(*j, *res, false, p.messages)) return;
  if (j->contains("tools") && !(*j)["tools"].is_null()) {
    if (!(*j)["tools"].is_array())
      return res->send(json_error(400, "field 'tools' must be an array"));
    p.tools = (*j)["tools"];
  }
  if (j->contains("options") && !(*j)["options"].is_null() && !(*j)["options"].is_object())
    return res->send(json_error(400, "field 'options' must be an object"));
  if (!read_constraints(*j, *res, false, p) || !read_think(*j, *res, p.think)) return;
  InferenceRequest r;
  if (!prepare(store_, sched_, *j, *res, false, j->value("options", json::object()), r)) return;
  if (p.messages.empty()) return load_or_unload(*sched_, r, res, Shape::kChat, stream);
  auto sink = std::make_shared<ApiSink>(res, Shape::kChat, stream, r.model.name.display());
  sink->drop_thinking = p.think && !*p.think;
  Job job = make_job(std::move(r), std::move(p), sink);
  if (auto st = sched_->submit(std::move(job)); !st) res->send(error_response(st));
}

void Api::ps(ResponderP res) {
  json models = json::array();
  if (sched_) {
    for (const auto& m : sched_->loaded()) {
      const auto exp =
          std::chrono::duration_cast<std::chrono::nanoseconds>(m.expires_at.time_since_epoch())
              .count();
      models.push_back(
          {{"name", m.name},
           {"model", m.name},
           {"size", m.size},
           {"digest", m.digest},
           {"details", details_json(store::stored_model_details(store_, m.record.manifest))},
           {"expires_at", rfc3339(exp / 1000000000, exp % 1000000000)},
           {"size_vram", 0},
           {"context_length", m.context_length}});
    }
  }
  res->send(json_ok({{"models", models}}));
}

// OpenAI sampling fields -> Ollama options (temperature and top_p default to 1.0, as Ollama's
// compatibility layer sets them).
static bool oai_options(const json& j, Responder& res, json& opt, bool& stream,
                        bool& include_usage) {
  auto err = [&](const std::string& m) {
    res.send(openai_error(400, m));
    return false;
  };
  opt = json::object();
  opt["temperature"] = 1.0;
  opt["top_p"] = 1.0;
  for (const char* k : {"temperature", "top_p", "frequency_penalty", "presence_penalty"}) {
    if (!j.contains(k) || j[k].is_null()) continue;
    if (!j[k].is_number()) return err(std::string("field '") + k + "' must be a number");
    opt[k] = j[k];
  }
  if (j.contains("seed") && !j["seed"].is_null()) {
    if (!j["seed"].is_number_integer()) return err("field 'seed' must be an integer");
    opt["seed"] = j["seed"];
  }
  for (const char* k : {"max_tokens", "max_completion_tokens"}) {
    if (!j.contains(k) || j[k].is_null()) continue;
    if (!j[k].is_number_integer()) return err(std::string("field '") + k + "' must be an integer");
    opt["num_predict"] = j[k];
  }
  if (j.contains("stop") && !j["stop"].is_null()) {
    if (j["stop"].is_string())
      opt["stop"] = json::array({j["stop"]});
    else if (j["stop"].is_array())
      opt["stop"] = j["stop"];
    else
      return err("field 'stop' must be a string or an array of strings");
  }
  stream = false;
  if (j.contains("stream") && !j["stream"].is_null()) {
    if (!j["stream"].is_boolean()) return err("field 'stream' must be a boolean");
    stream = j["stream"].get<bool>();
  }
  include_usage = false;
  if (j.contains("stream_options") && j["stream_options"].is_object() &&
      j["stream_options"].contains("include_usage")) {
    const json& u = j["stream_options"]["include_usage"];
    if (!u.is_null() && !u.is_boolean())
      return err("field 'stream_options.include_usage' must be a boolean");
    include_usage = u.is_boolean() && u.get<bool>();
  }
  return true;
}

void Api::v1_chat(const HttpRequest& req, ResponderP res) {
  auto j = body_json(req, *res);
  if (!j) return;
  json opt;
  bool stream, usage;
  if (!oai_options(*j, *res, opt, stream, usage)) return;
  PromptSpec p;
  p.kind = PromptSpec::Kind::kChat;
  if (!read_messages(*j, *res, true, p.messages)) return;
  if (p.messages.empty()) return res->send(openai_error(400, "[] is too short - 'messages'"));
  if (j->contains("tools") && (*j)["tools"].is_array() && !(*j)["tools"].empty())
    p.tools = (*j)["tools"];
  if (!read_constraints(*j, *res, true, p)) return;
  // reasoning_effort (or reasoning.effort): "none" turns thinking off, any level on.
  {
    json effort;
    if (j->contains("reasoning_effort")) effort = (*j)["reasoning_effort"];
    if (j->contains("reasoning") && (*j)["reasoning"].is_object() &&
        (*j)["reasoning"].contains("effort"))
      effort = (*j)["reasoning"]["effort"];
    if (!effort.is_null()) {
      static const char* kLevels[] = {"minimal", "low", "medium", "high", "max", "xhigh", "ultra"};
      if (effort == "none") {
        p.think = false;
      } else if (effort.is_string() && std::find(std::begin(kLevels), std::end(kLevels),
                                                 effort.get<std::string>()) != std::end(kLevels)) {
        p.think = true;
      } else {
        return res->send(openai_error(400, "invalid reasoning_effort: " + dump(effort)));
      }
    }
  }
  int n = 1;
  if (j->contains("n") && !(*j)["n"].is_null()) {
    const json& x = (*j)["n"];
    if (!x.is_number_integer() || x.get<int64_t>() < 1 || x.get<int64_t>() > 8)
      return res->send(openai_error(400, "n must be an integer from 1 to 8"));
    n = int(x.get<int64_t>());
  }
  InferenceRequest r;
  if (!prepare(store_, sched_, *j, *res, true, opt, r)) return;
  const std::string name = j->value("model", "");
  std::shared_ptr<ChoiceGroup> group;
  if (n > 1) {
    group = std::make_shared<ChoiceGroup>();
    group->n = n;
  }
  std::string id;
  for (int i = 0; i < n; ++i) {
    auto sink = std::make_shared<ApiSink>(res, Shape::kOaiChat, stream, name);
    sink->include_usage = usage;
    sink->drop_thinking = p.think && !*p.think;
    if (group) {
      if (i == 0) id = sink->id();
      sink->join(group, i, id);
    }
    Job job = make_job(r, p, sink);
    // Different choices: different seeds (each one reproducible from the request's seed).
    if (i > 0 && job.opt.sampler.seed >= 0) job.opt.sampler.seed += i;
    if (auto st = sched_->submit(std::move(job)); !st) {
      sink->on_error(Status(StatusCode::kUnavailable, st.message()));
      return;
    }
  }
}

void Api::v1_completions(const HttpRequest& req, ResponderP res) {
  auto j = body_json(req, *res);
  if (!j) return;
  json opt;
  bool stream, usage;
  if (!oai_options(*j, *res, opt, stream, usage)) return;
  if (j->contains("n") && !(*j)["n"].is_null() && (*j)["n"] != 1)
    return res->send(openai_error(400, "only n = 1 is supported on /v1/completions"));
  PromptSpec p;
  p.kind = PromptSpec::Kind::kGenerate;
  p.raw = true;  // OpenAI completions send the prompt as is
  if (!j->contains("prompt") || !(*j)["prompt"].is_string())
    return res->send(openai_error(400, "field 'prompt' must be a string"));
  p.prompt = (*j)["prompt"].get<std::string>();
  if (j->contains("suffix") && (*j)["suffix"].is_string()) {
    p.suffix = (*j)["suffix"].get<std::string>();
    if (!p.suffix.empty()) p.raw = false;
  }
  InferenceRequest r;
  if (!prepare(store_, sched_, *j, *res, true, opt, r)) return;
  const std::string name = j->value("model", "");
  auto sink = std::make_shared<ApiSink>(res, Shape::kOaiCompletion, stream, name);
  sink->include_usage = usage;
  Job job = make_job(std::move(r), std::move(p), sink);
  if (auto st = sched_->submit(std::move(job)); !st) res->send(openai_error(503, st.message()));
}

// ---- OpenAI Responses API (/v1/responses): text, function tools, structured output, streaming.

namespace {

std::string random_id(const char* prefix) {
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kChars[rng() % 36];
  return id;
}

// Writes a Responses answer: one response object, or typed server-sent events
// (response.created ... response.output_text.delta ... response.completed).
class ResponsesSink final : public runtime::Sink {
 public:
  ResponsesSink(ResponderP res, bool stream, std::string model)
      : res_(std::move(res)), streaming_(stream), model_(std::move(model)) {
    if (!streaming_) res_->watch_disconnect();
    id_ = random_id("resp_");
    created_ = unix_now();
  }
  bool drop_thinking = false;

  void on_start() override {
    if (!streaming_ || stream_) return;
    stream_ = res_->stream(200, "text/event-stream");
    json r = response("in_progress");
    event("response.created", {{"response", r}});
    event("response.in_progress", {{"response", r}});
  }

  bool on_text(const std::string& piece) override { return content(piece); }

  bool on_output(const parsers::Parsed& p) override {
    if (!drop_thinking) reasoning_ += p.thinking;
    if (!p.content.empty() && !content(p.content)) return false;
    for (const auto& c : p.calls) {
      close_message();
      json item = {{"type", "function_call"},        {"id", random_id("fc_")},
                   {"call_id", random_id("call_")},  {"name", c.name},
                   {"arguments", dump(c.arguments)}, {"status", "completed"}};
      const int index = int(output_.size());
      output_.push_back(item);
      has_calls_ = true;
      if (streaming_) {
        json added = item;
        added["arguments"] = "";
        added["status"] = "in_progress";
        event("response.output_item.added", {{"output_index", index}, {"item", added}});
        event("response.function_call_arguments.delta",
              {{"item_id", item["id"]}, {"output_index", index}, {"delta", item["arguments"]}});
        event("response.function_call_arguments.done",
              {{"item_id", item["id"]}, {"output_index", index}, {"arguments", item["arguments"]}});
        event("response.output_item.done", {{"output_index", index}, {"item", item}});
      }
    }
    return streaming_ ? !(stream_ && stream_->closed()) : !res_->closed();
  }

  void on_done(const runtime::Stats& s) override {
    close_message();
    if (!reasoning_.empty())  // first, as OpenAI orders reasoning before the answer
      output_.insert(
          output_.begin(),
          json{{"type", "reasoning"},
               {"id", random_id("rs_")},
               {"summary", json::array({{{"type", "summary_text"}, {"text", reasoning_}}})},
               // hearth: the model's thinking itself (OpenAI keeps it hidden)
               {"content", json::array({{{"type", "reasoning_text"}, {"text", reasoning_}}})}});
    const bool cut = s.done_reason == "length";
    json r = response(cut ? "incomplete" : "completed");
    if (cut) r["incomplete_details"] = {{"reason", "max_output_tokens"}};
    r["usage"] = {{"input_tokens", s.prompt_eval_count},
                  {"input_tokens_details", {{"cached_tokens", s.prompt_cached}}},
                  {"output_tokens", s.eval_count},
                  {"output_tokens_details", {{"reasoning_tokens", 0}}},
                  {"total_tokens", s.prompt_eval_count + s.eval_count}};
    if (streaming_) {
      event(cut ? "response.incomplete" : "response.completed", {{"response", r}});
      if (stream_) stream_->end();
    } else {
      res_->send(json_ok(r));
    }
  }

  void on_error(const Status& error) override {
    if (stream_) {
      event("error", {{"code", nullptr}, {"message", error.message()}, {"param", nullptr}});
      stream_->end();
      return;
    }
    res_->send(error_response(error, ApiFlavor::kOpenAI));
  }

  bool cancelled() const override { return stream_ ? stream_->closed() : res_->closed(); }

 private:
  json response(const std::string& status) const {
    return {{"id", id_},
            {"object", "response"},
            {"created_at", created_},
            {"status", status},
            {"model", model_},
            {"output", status == "in_progress" ? json::array() : output_},
            {"parallel_tool_calls", true},
            {"tool_choice", "auto"},
            {"tools", json::array()},
            {"error", nullptr},
            {"incomplete_details", nullptr}};
  }
  void event(const char* type, json data) {
    if (!stream_) return;
    json j = {{"type", type}, {"sequence_number", seq_++}};
    for (auto& [k, v] : data.items()) j[k] = v;
    stream_->write(std::string("event: ") + type + "\ndata: " + dump(j) + "\n\n");
  }
  bool content(const std::string& piece) {
    if (msg_index_ < 0) {
      msg_index_ = int(output_.size());
      msg_id_ = random_id("msg_");
      output_.push_back(json::object());  // filled when the message closes
      if (streaming_) {
        event("response.output_item.added", {{"output_index", msg_index_},
                                             {"item",
                                              {{"type", "message"},
                                               {"id", msg_id_},
                                               {"status", "in_progress"},
                                               {"role", "assistant"},
                                               {"content", json::array()}}}});
        event("response.content_part.added",
              {{"item_id", msg_id_},
               {"output_index", msg_index_},
               {"content_index", 0},
               {"part", {{"type", "output_text"}, {"text", ""}, {"annotations", json::array()}}}});
      }
    }
    text_ += piece;
    if (streaming_)
      event("response.output_text.delta", {{"item_id", msg_id_},
                                           {"output_index", msg_index_},
                                           {"content_index", 0},
                                           {"delta", piece}});
    return streaming_ ? !(stream_ && stream_->closed()) : !res_->closed();
  }
  void close_message() {
    if (msg_index_ < 0 || msg_closed_) return;
    msg_closed_ = true;
    const json part = {{"type", "output_text"}, {"text", text_}, {"annotations", json::array()}};
    const json item = {{"type", "message"},
                       {"id", msg_id_},
                       {"status", "completed"},
                       {"role", "assistant"},
                       {"content", json::array({part})}};
    output_[size_t(msg_index_)] = item;
    if (streaming_) {
      event("response.output_text.done", {{"item_id", msg_id_},
                                          {"output_index", msg_index_},
                                          {"content_index", 0},
                                          {"text", text_}});
      event("response.content_part.done", {{"item_id", msg_id_},
                                           {"output_index", msg_index_},
                                           {"content_index", 0},
                                           {"part", part}});
      event("response.output_item.done", {{"output_index", msg_index_}, {"item", item}});
    }
  }

  ResponderP res_;
  bool streaming_;
  std::string model_, id_, text_, reasoning_, msg_id_;
  int64_t created_ = 0;
  int64_t seq_ = 0;
  int msg_index_ = -1;
  bool msg_closed_ = false, has_calls_ = false;
  json output_ = json::array();
  std::shared_ptr<Stream> stream_;
};

// Responses input items to chat messages: strings and message items (text parts), function calls
// (assistant tool_calls), their outputs (tool messages); reasoning items are dropped.
bool responses_input(const json& input, Responder& res, json& msgs) {
  auto fail = [&](const std::string& m) {
    res.send(openai_error(400, m));
    return false;
  };
  if (input.is_string()) {
    msgs.push_back({{"role", "user"}, {"content", input}});
    return true;
  }
  if (!input.is_array()) return fail("input must be a string or an array of items");
  for (const auto& it : input) {
    if (!it.is_object()) return fail("each input item must be an object");
    const std::string type = it.value("type", it.contains("role") ? "message" : "");
    if (type == "message") {
      std::string text;
      const json& c = it.contains("content") ? it["content"] : json("");
      if (c.is_string()) {
        text = c.get<std::string>();
      } else if (c.is_array()) {
        for (const auto& part : c) {
          const std::string pt = part.is_object() ? part.value("type", "") : "";
          if ((pt == "input_text" || pt == "output_text" || pt == "text") &&
              part.contains("text") && part["text"].is_string())
            text += part["text"].get<std::string>();
          else
            return fail("only text content parts are supported by this model (got '" + pt + "')");
        }
      } else {
        return fail("message content must be a string or an array of parts");
      }
      if (!it.contains("role") || !it["role"].is_string()) return fail("each message needs a role");
      msgs.push_back({{"role", it["role"]}, {"content", text}});
    } else if (type == "function_call") {
      if (!it.contains("name") || !it["name"].is_string())
        return fail("function_call items need a name");
      json args = json::object();
      if (it.contains("arguments") && it["arguments"].is_string()) {
        args = parse_json_bounded<json>(it["arguments"].get<std::string>());
        if (args.is_discarded()) return fail("invalid function_call arguments");
      }
      json call = {{"id", it.value("call_id", "")},
                   {"type", "function"},
                   {"function", {{"name", it["name"]}, {"arguments", args}}}};
      if (!msgs.empty() && msgs.back().value("role", "") == "assistant" &&
          msgs.back().contains("tool_calls"))
        msgs.back()["tool_calls"].push_back(call);  // parallel calls: one assistant turn
      else
        msgs.push_back(
            {{"role", "assistant"}, {"content", ""}, {"tool_calls", json::array({call})}});
    } else if (type == "function_call_output") {
      const json& out = it.contains("output") ? it["output"] : json("");
      msgs.push_back({{"role", "tool"},
                      {"tool_call_id", it.value("call_id", "")},
                      {"content", out.is_string() ? out.get<std::string>() : dump(out)}});
    } else if (type == "reasoning") {
      continue;
    } else {
      return fail("unsupported input item type '" + type + "'");
    }
  }
  return true;
}

}  // namespace

void Api::v1_responses(const HttpRequest& req, ResponderP res) {
  auto j = body_json(req, *res);
  if (!j) return;
  if (j->contains("previous_response_id") && !(*j)["previous_response_id"].is_null())
    return res->send(
        openai_error(400,
                     "previous_response_id is not supported: hearth keeps no responses; send the "
                     "conversation in input"));
  PromptSpec p;
  p.kind = PromptSpec::Kind::kChat;
  json msgs = json::array();
  if (j->contains("instructions") && (*j)["instructions"].is_string())
    msgs.push_back({{"role", "system"}, {"content", (*j)["instructions"]}});
  if (!j->contains("input")) return res->send(openai_error(400, "input is required"));
  if (!responses_input((*j)["input"], *res, msgs)) return;
  // The chat handler's message checks (roles, tool call arguments) on the converted input.
  json chat = {{"messages", msgs}};
  if (!read_messages(chat, *res, true, p.messages)) return;
  // Tools: {type: "function", name, description, parameters} -> the chat form.
  json c = json::object();
  if (j->contains("tools") && (*j)["tools"].is_array() && !(*j)["tools"].empty()) {
    json tools = json::array();
    for (const auto& t : (*j)["tools"]) {
      if (!t.is_object() || t.value("type", "") != "function" || !t.contains("name"))
        return res->send(openai_error(400, "only function tools are supported"));
      json f = {{"name", t["name"]}};
      if (t.contains("description")) f["description"] = t["description"];
      f["parameters"] = t.contains("parameters") ? t["parameters"] : json{{"type", "object"}};
      tools.push_back({{"type", "function"}, {"function", f}});
    }
    p.tools = tools;
  }
  if (j->contains("tool_choice")) {
    const json& tc = (*j)["tool_choice"];
    c["tool_choice"] = tc.is_object() && tc.value("type", "") == "function" && tc.contains("name")
                           ? json{{"type", "function"}, {"function", {{"name", tc["name"]}}}}
                           : tc;
  }
  if (j->contains("parallel_tool_calls")) c["parallel_tool_calls"] = (*j)["parallel_tool_calls"];
  if (j->contains("text") && (*j)["text"].is_object() && (*j)["text"].contains("format")) {
    const json& f = (*j)["text"]["format"];
    const std::string type = f.is_object() ? f.value("type", "") : "";
    if (type == "json_schema")
      c["response_format"] = {{"type", "json_schema"},
                              {"json_schema", {{"schema", f.value("schema", json::object())}}}};
    else if (type == "json_object")
      c["response_format"] = {{"type", "json_object"}};
    else if (type != "text")
      return res->send(
          openai_error(400, "text.format.type must be text, json_object or json_schema"));
  }
  if (!read_constraints(c, *res, true, p)) return;
  if (j->contains("reasoning") && (*j)["reasoning"].is_object() &&
      (*j)["reasoning"].contains("effort") && (*j)["reasoning"]["effort"].is_string())
    p.think = (*j)["reasoning"]["effort"] != "none";
  json o = json::object();
  if (j->contains("stream")) o["stream"] = (*j)["stream"];
  for (const char* k : {"temperature", "top_p", "seed"})
    if (j->contains(k)) o[k] = (*j)[k];
  if (j->contains("max_output_tokens")) o["max_tokens"] = (*j)["max_output_tokens"];
  json opt;
  bool stream, usage;
  if (!oai_options(o, *res, opt, stream, usage)) return;
  InferenceRequest r;
  if (!prepare(store_, sched_, *j, *res, true, opt, r)) return;
  auto sink = std::make_shared<ResponsesSink>(res, stream, j->value("model", ""));
  sink->drop_thinking = p.think && !*p.think;
  Job job = make_job(std::move(r), std::move(p), sink);
  if (auto st = sched_->submit(std::move(job)); !st) res->send(openai_error(503, st.message()));
}

}  // namespace hearth::server
