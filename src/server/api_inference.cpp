// server/api_inference.cpp — inference: /api/generate, /api/chat, /api/ps, /api/embed and the
// OpenAI /v1/chat/completions and /v1/completions, on top of the scheduler.
//
// A handler validates the request, resolves the model in the store and hands a Job to the
// scheduler with a Sink that writes the answer in the endpoint's shape: NDJSON lines (Ollama,
// streaming by default), server-sent events (OpenAI, when stream is true) or one JSON body.
#include <atomic>
#include <chrono>
#include <mutex>

#include "base/json_depth.h"
#include "runtime/scheduler.h"
#include "server/api.h"
#include "server/api_util.h"
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

  void on_start() override { open(); }

  bool on_text(const std::string& piece) override {
    text_ += piece;
    if (!streaming_) return !res_->closed();
    open();
    switch (shape_) {
      case Shape::kGenerate:
        return write_line({{"model", model_},
                           {"created_at", now_rfc3339()},
                           {"response", piece},
                           {"done", false}});
      case Shape::kChat:
        return write_line({{"model", model_},
                           {"created_at", now_rfc3339()},
                           {"message", {{"role", "assistant"}, {"content", piece}}},
                           {"done", false}});
      case Shape::kOaiChat: {
        json delta = {{"role", "assistant"}, {"content", piece}};
        return write_sse(oai_chunk(delta, nullptr));
      }
      case Shape::kOaiCompletion:
        return write_sse(oai_completion_chunk(piece, nullptr));
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
    const std::string oai_reason = s.done_reason == "length" ? "length" : "stop";
    json usage = {{"prompt_tokens", s.prompt_eval_count},
                  {"completion_tokens", s.eval_count},
                  {"total_tokens", s.prompt_eval_count + s.eval_count}};
    switch (shape_) {
      case Shape::kGenerate:
      case Shape::kChat: {
        json j = {{"model", model_}, {"created_at", now_rfc3339()}};
        if (shape_ == Shape::kGenerate)
          j["response"] = streaming_ ? "" : text_;
        else
          j["message"] = {{"role", "assistant"}, {"content", streaming_ ? "" : text_}};
        j["done"] = true;
        j["done_reason"] = s.done_reason;
        if (shape_ == Shape::kGenerate && !s.context.empty() && want_context)
          j["context"] = s.context;
        for (auto& [k, v] : stats.items()) j[k] = v;
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
        json j = {
            {"id", "chatcmpl-" + id_},
            {"object", "chat.completion"},
            {"created", created_},
            {"model", model_},
            {"system_fingerprint", "fp_ollama"},
            {"choices", json::array({{{"index", 0},
                                      {"message", {{"role", "assistant"}, {"content", text_}}},
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
                  {"choices", json::array({{{"text", text_},
                                            {"index", 0},
                                            {"finish_reason", oai_reason},
                                            {"logprobs", nullptr}}})},
                  {"usage", usage}};
        res_->send(json_ok(j));
        return;
      }
    }
  }

  void on_error(const Status& error) override {
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

  bool cancelled() const override { return stream_ ? stream_->closed() : res_->closed(); }

  bool want_context = true;

 private:
  void open() {
    if (!streaming_ || stream_) return;
    const bool sse = shape_ == Shape::kOaiChat || shape_ == Shape::kOaiCompletion;
    stream_ = res_->stream(200, sse ? "text/event-stream" : "application/x-ndjson");
    if (!stream_) return;
    if (shape_ == Shape::kOaiChat)  // the first chunk carries the role
      write_sse(oai_chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
  }
  bool write_line(const json& j) { return stream_ && stream_->write(dump(j) + "\n"); }
  bool write_sse(const json& j) { return stream_ && stream_->write("data: " + dump(j) + "\n\n"); }
  json oai_chunk(const json& delta, const json& finish) const {
    return {
        {"id", "chatcmpl-" + id_},
        {"object", "chat.completion.chunk"},
        {"created", created_},
        {"model", model_},
        {"system_fingerprint", "fp_ollama"},
        {"choices", json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}};
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
  std::string model_, text_, id_;
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
struct InferenceRequest {
  store::ModelRecord model;
  runtime::GenOptions opt;
  std::optional<std::chrono::nanoseconds> keep_alive;
};

static bool prepare(store::Store& st, runtime::Scheduler* sched, const json& j, Responder& res,
                    bool oai, const json& options, InferenceRequest& out) {
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
  auto o = runtime::merge_options(out.model.params, options);
  if (!o) return err(400, o.status().message());
  out.opt = std::move(*o);
  if (j.contains("keep_alive") && !j["keep_alive"].is_null()) {
    auto ka = runtime::parse_keep_alive(j["keep_alive"]);
    if (!ka) return err(400, ka.status().message());
    out.keep_alive = *ka;
  }
  return true;
}

static bool check_format(const json& j, Responder& res) {
  // Accepted as Ollama does ("json" or a JSON-schema object); constrained decoding is not
  // implemented yet, so the format is not enforced.
  if (!j.contains("format") || j["format"].is_null()) return true;
  const json& f = j["format"];
  if ((f.is_string() && (f == "json" || f == "")) || f.is_object()) return true;
  res.send(json_error(
      400, "invalid format: " + dump(f) + "; expected \"json\" or a valid JSON Schema object"));
  return false;
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
  Job job;
  job.model = std::move(r.model);
  job.opt = std::move(r.opt);
  job.keep_alive = r.keep_alive;
  job.prompt.kind = PromptSpec::Kind::kLoadOnly;
  job.sink = std::make_shared<ApiSink>(res, shape, stream, name);
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
  if (!check_format(*j, *res) || !read_think(*j, *res, p.think)) return;
  InferenceRequest r;
  if (!prepare(store_, sched_, *j, *res, false, j->value("options", json::object()), r)) return;
  for (int32_t t : p.context)
    if (t < 0) return res->send(json_error(400, "field 'context' holds an invalid token id"));
  if (p.prompt.empty() && p.suffix.empty())
    return load_or_unload(*sched_, r, res, Shape::kGenerate, stream);
  const std::string name = r.model.name.display();
  auto sink = std::make_shared<ApiSink>(res, Shape::kGenerate, stream, name);
  sink->want_context = !p.raw;
  Job job;
  job.model = std::move(r.model);
  job.opt = std::move(r.opt);
  job.keep_alive = r.keep_alive;
  job.prompt = std::move(p);
  job.sink = sink;
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
  if (!check_format(*j, *res) || !read_think(*j, *res, p.think)) return;
  InferenceRequest r;
  if (!prepare(store_, sched_, *j, *res, false, j->value("options", json::object()), r)) return;
  if (p.messages.empty()) return load_or_unload(*sched_, r, res, Shape::kChat, stream);
  Job job;
  const std::string name = r.model.name.display();
  job.model = std::move(r.model);
  job.opt = std::move(r.opt);
  job.keep_alive = r.keep_alive;
  job.prompt = std::move(p);
  job.sink = std::make_shared<ApiSink>(res, Shape::kChat, stream, name);
  if (auto st = sched_->submit(std::move(job)); !st) res->send(error_response(st));
}

void Api::ps(ResponderP res) {
  json models = json::array();
  if (sched_) {
    for (const auto& m : sched_->loaded()) {
      const auto exp =
          std::chrono::duration_cast<std::chrono::nanoseconds>(m.expires_at.time_since_epoch())
              .count();
      models.push_back({{"name", m.name},
                        {"model", m.name},
                        {"size", m.size},
                        {"digest", m.digest},
                        {"details",
                         {{"parent_model", ""},
                          {"format", "gguf"},
                          {"family", ""},
                          {"families", json::array()},
                          {"parameter_size", ""},
                          {"quantization_level", ""}}},
                        {"expires_at", rfc3339(exp / 1000000000, exp % 1000000000)},
                        {"size_vram", 0},
                        {"context_length", m.context_length}});
    }
  }
  res->send(json_ok({{"models", models}}));
}

void Api::embed(const HttpRequest& req, ResponderP res) {
  const bool oai = req.path.rfind("/v1/", 0) == 0;
  auto j = body_json(req, *res);
  if (!j) return;
  const std::string name =
      j->contains("model") && (*j)["model"].is_string() ? (*j)["model"].get<std::string>() : "";
  const std::string msg = "\"" + name + "\" does not support embeddings";
  res->send(oai ? openai_error(400, msg) : json_error(400, msg));
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
  if (j.contains("n") && !j["n"].is_null() && j["n"] != 1) return err("only n = 1 is supported");
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
  InferenceRequest r;
  if (!prepare(store_, sched_, *j, *res, true, opt, r)) return;
  const std::string name = j->value("model", "");
  auto sink = std::make_shared<ApiSink>(res, Shape::kOaiChat, stream, name);
  sink->include_usage = usage;
  Job job;
  job.model = std::move(r.model);
  job.opt = std::move(r.opt);
  job.keep_alive = r.keep_alive;
  job.prompt = std::move(p);
  job.sink = sink;
  if (auto st = sched_->submit(std::move(job)); !st) res->send(openai_error(503, st.message()));
}

void Api::v1_completions(const HttpRequest& req, ResponderP res) {
  auto j = body_json(req, *res);
  if (!j) return;
  json opt;
  bool stream, usage;
  if (!oai_options(*j, *res, opt, stream, usage)) return;
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
  Job job;
  job.model = std::move(r.model);
  job.opt = std::move(r.opt);
  job.keep_alive = r.keep_alive;
  job.prompt = std::move(p);
  job.sink = sink;
  if (auto st = sched_->submit(std::move(job)); !st) res->send(openai_error(503, st.message()));
}

}  // namespace hearth::server
