// tests/fuzz/http_harness.h — raw HTTP/1.1 request bytes through the server's request parsing
// and the whole API (server::Api::handle), with an in-process fake client that checks every
// answer. Used by fuzz_http.cpp (libFuzzer) and by the unit test that replays
// tests/fuzz/regressions/http/ (tests/unit/server/http_regressions_test.cpp).
//
// What it mirrors from src/server/http.cpp (Session): requests are read one after another from
// the input, each header with a request_parser<empty_body> (header limit 64 KiB). The access
// policy (Origin/Host rules of a loopback listener, as `hearth serve` has) refuses or answers
// preflights first. Then, for a method other than GET and HEAD, Api::start_upload decides:
// an early answer (bad digest, blob present, too large), a streamed upload (the body parsed
// with a request_parser<buffer_body> and written to the UploadSink piece by piece), or neither:
// the body is read with a request_parser<string_body> (limit max_body; a Content-Length over it
// is a 413 and the connection closes). A parse error, a truncated request or an answer before
// the handler ends the connection (the server answers 400/408/413/431 or the early answer and
// closes), as does an answer to a request without keep-alive. Each request becomes an
// HttpRequest as server::to_request (server/beast_request.h) builds it, and Api::handle runs on
// this thread (the server runs it on a worker pool).
//
// What it checks (Harness::run returns the first violation, or ""):
//  * Api::handle answers every request exactly once: one send() or one stream(), never both,
//    never twice, never none (unless the fake client hung up first, see below);
//  * no exception escapes Api::handle or Api::start_upload (the server logs it and answers a
//    generic 500 "internal error", the wrong answer for a request the API should have refused
//    with a 4xx); an early answer (access refusal, upload decision) is checked like any other;
//  * an error status (>= 400) carries a JSON object body with an "error" key (a HEAD answer may
//    have no body); any non-empty JSON-typed body parses;
//  * a streamed body is well formed: NDJSON is one JSON object per line, every line ending in
//    "\n"; server-sent events are "data: <JSON>\n\n" or "data: [DONE]\n\n"; nothing is written
//    after end(), and a stream the client did not leave is ended;
//  * every reference to the request's Responder and Stream is dropped within kAnswerTimeout
//    (handlers answer from other threads: /api/create's detached thread, the scheduler's
//    runners); a request still alive after that is reported as a hang (8 s: generous for a
//    slow but legitimate operation, e.g. a create that quantizes, and still under libFuzzer's
//    -timeout=10, so a hang is reported with the request that hung);
//  * no upload or store temporary file (blobs/.tmp-*, blobs/.quantize-*) is left behind.
//
// Cost bounds. The fake client "hangs up" (closed() turns true, writes fail) after
// kMaxClientPolls calls of closed() or kMaxStreamWrites stream writes, or kHangUpAfter of wall
// time, whichever comes first, so a generation with a large num_predict or num_ctx stops within
// a few decode steps (the runner polls once per step and once per token): what the fuzzer sends
// is never rewritten, and the cancellation paths get exercised too. The scheduler is small
// (one slot, one thread, batches of 32 tokens, a 256-token default context, a memory limit
// that refuses huge num_ctx at load).
//
// Every input runs with that real scheduler, none with a null one: the inference handlers check
// for a scheduler before anything else (prepare() answers 503 without one), so without it model
// resolution, options, keep_alive and prompt templating would never run. Under ASan a request
// that does not generate takes ~1-5 ms; one that generates 10-500 ms, mostly prompt evaluation
// (~2 ms per token for the 2-layer model; a repeated prompt is served from the slot's cache).
// Measured: 50-170 exec/s on 2 cores shared with other builds.
//
// The store lives in a temporary folder (on /dev/shm when there is one: every blob write
// fsyncs). After every input it is put back to the state it had after setup: files and folders
// that were not there are removed, manifests that changed are rewritten, blobs that were removed
// come back (hard links to a pristine copy). So creates, copies, deletes and uploads within one
// input see each other, but the store cannot grow from one input to the next. What the
// scheduler holds (loaded models, slot caches) carries over between inputs, except after an
// input that mentions keep_alive: then every model is unloaded, so no input inherits a
// keep_alive from an earlier one.
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "runtime/scheduler.h"
#include "server/access.h"
#include "server/api.h"
#include "server/beast_request.h"
#include "server/errors.h"
#include "server/http.h"
#include "store/create.h"
#include "store/store.h"

namespace hearth::fuzz_http {

namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

// The smallest weights fixture (2 MB): a 2-layer Qwen2 with the real Qwen chat template (tools).
inline constexpr const char* kFixture = "qwen2-Q4_K_M.gguf";
inline constexpr auto kAnswerTimeout = std::chrono::seconds(8);  // under -timeout=10
inline constexpr auto kHangUpAfter = std::chrono::milliseconds(1500);
inline constexpr int kMaxClientPolls = 128;
inline constexpr int kMaxStreamWrites = 256;
inline constexpr size_t kMaxBody = size_t(64) << 20;  // ServerOptions::max_body
inline constexpr size_t kHeaderLimit = 64 * 1024;     // Session::read_header

// One request's answer, as the fake client sees it. Shared by the responder, its stream and the
// harness, so a handler that answers late never touches freed memory.
struct Exchange {
  std::mutex mu;
  std::condition_variable cv;
  int live = 0;  // Responder and Stream objects not yet destroyed
  int sends = 0, streams = 0, ends = 0;
  int status = 0;
  std::string content_type, body;
  std::vector<std::string> problems;
  // The client's patience.
  Clock::time_point t0 = Clock::now();
  int polls = 0, writes = 0;
  bool hung_up = false;

  bool poll() {  // under mu
    if (!hung_up && (++polls > kMaxClientPolls || Clock::now() - t0 > kHangUpAfter)) hung_up = true;
    return hung_up;
  }
  void born() {
    std::lock_guard<std::mutex> lk(mu);
    ++live;
  }
  void died() {
    std::lock_guard<std::mutex> lk(mu);
    if (--live == 0) cv.notify_all();
  }
};

class FakeStream final : public server::Stream {
 public:
  explicit FakeStream(std::shared_ptr<Exchange> x) : x_(std::move(x)) { x_->born(); }
  ~FakeStream() override { x_->died(); }
  bool write(std::string piece) override {
    std::lock_guard<std::mutex> lk(x_->mu);
    if (x_->ends > 0) x_->problems.push_back("stream written after end()");
    if (x_->hung_up || ++x_->writes > kMaxStreamWrites || x_->poll()) {
      x_->hung_up = true;
      return false;
    }
    x_->body += piece;
    return true;
  }
  void end() override {
    std::lock_guard<std::mutex> lk(x_->mu);
    ++x_->ends;
  }
  bool closed() const override {
    std::lock_guard<std::mutex> lk(x_->mu);
    return x_->poll();
  }

 private:
  std::shared_ptr<Exchange> x_;
};

class FakeResponder final : public server::Responder {
 public:
  explicit FakeResponder(std::shared_ptr<Exchange> x) : x_(std::move(x)) { x_->born(); }
  ~FakeResponder() override { x_->died(); }
  void send(server::HttpResponse r) override {
    std::lock_guard<std::mutex> lk(x_->mu);
    if (++x_->sends + x_->streams > 1) {
      x_->problems.push_back("answered more than once (send after " +
                             std::string(x_->streams ? "stream" : "send") + ")");
      return;
    }
    x_->status = r.status;
    x_->content_type = r.content_type;
    x_->body = std::move(r.body);
  }
  std::shared_ptr<server::Stream> stream(int status, const std::string& content_type) override {
    {
      std::lock_guard<std::mutex> lk(x_->mu);
      if (x_->sends + ++x_->streams > 1) {
        x_->problems.push_back("answered more than once (stream after " +
                               std::string(x_->sends ? "send" : "stream") + ")");
        return nullptr;  // as SessionResponder does
      }
      x_->status = status;
      x_->content_type = content_type;
    }
    return std::make_shared<FakeStream>(x_);
  }
  bool closed() const override {
    std::lock_guard<std::mutex> lk(x_->mu);
    return x_->poll();
  }

 private:
  std::shared_ptr<Exchange> x_;
};

// Ollama error shape: {"error": "..."} or OpenAI's {"error": {"message": ...}}.
// Ollama's {"error": ...} (or OpenAI's object), or — from the registry API under /v2/ — the
// Docker registry's {"errors": [{"code", "message"}]}.
inline bool is_error_json(const std::string& s) {
  auto j = nlohmann::json::parse(s, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  if (j.contains("errors") && j["errors"].is_array() && !j["errors"].empty() &&
      j["errors"][0].is_object() && j["errors"][0].contains("message"))
    return true;
  return j.contains("error") && (j["error"].is_string() || j["error"].is_object());
}

// Checks one finished exchange; returns the problem or "".
inline std::string check_answer(Exchange& x, const std::string& method) {
  if (!x.problems.empty()) return x.problems.front();
  if (x.sends + x.streams == 0) return x.hung_up ? "" : "no answer";
  if (x.status < 100 || x.status > 599) return "status " + std::to_string(x.status);
  const bool json_type = x.content_type.rfind("application/json", 0) == 0;
  if (x.sends) {
    if (x.status >= 400 && !(method == "HEAD" && x.body.empty()) && !is_error_json(x.body))
      return "error " + std::to_string(x.status) +
             " without a JSON {\"error\": ...} body: " + x.body.substr(0, 200);
    if (json_type && !x.body.empty() &&
        nlohmann::json::parse(x.body, nullptr, false).is_discarded())
      return "JSON answer that does not parse: " + x.body.substr(0, 200);
    return "";
  }
  // A stream.
  if (!x.hung_up && x.ends == 0) return "stream never ended";
  if (x.content_type == "application/x-ndjson") {
    if (!x.body.empty() && x.body.back() != '\n') return "NDJSON stream without a final newline";
    size_t b = 0;
    while (b < x.body.size()) {
      const size_t e = x.body.find('\n', b);
      const std::string line = x.body.substr(b, e - b);
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        return "NDJSON line that is not a JSON object: " + line.substr(0, 200);
      b = e + 1;
    }
    return "";
  }
  if (x.content_type == "text/event-stream") {
    size_t b = 0;
    while (b < x.body.size()) {
      const size_t e = x.body.find("\n\n", b);
      if (e == std::string::npos) return "SSE event without its blank line";
      const std::string ev = x.body.substr(b, e - b);
      if (ev.rfind("data: ", 0) != 0) return "SSE event without data: " + ev.substr(0, 200);
      const std::string data = ev.substr(6);
      if (data != "[DONE]") {
        auto j = nlohmann::json::parse(data, nullptr, false);
        if (j.is_discarded() || !j.is_object())
          return "SSE data that is not a JSON object: " + data.substr(0, 200);
      }
      b = e + 2;
    }
    return "";
  }
  return "stream of unexpected content type " + x.content_type;
}

// The store, the scheduler and the two Apis (with and without a scheduler), made once.
class Harness {
 public:
  // `shared_dir` holds fixtures/ (HEARTH_SHARED_DIR). Errors go to `error` (empty on success).
  explicit Harness(const std::string& shared_dir, std::string* error) {
    *error = setup(shared_dir);
  }
  ~Harness() {
    api_.reset();
    sched_.reset();  // joins the runners before the store goes
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
    if (!pristine_.empty()) fs::remove_all(pristine_, ec);
  }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  const std::string& root() const { return root_; }
  // For the fuzzer's log.
  std::string last_request;

  // Runs every request in `data` in order, as one connection. Returns the first problem ("" if
  // none); a hang is "timeout: ...". The store is reset afterwards.
  std::string run(std::string_view data) {
    last_request.clear();
    std::string problem = run_requests(data);
    if (problem.rfind("timeout", 0) == 0) return problem;  // a handler still holds the store
    if (std::string e = reset_store(); !e.empty() && problem.empty()) problem = e;
    // A keep_alive stays with the loaded model (and "0" or "1ns" unload it some time later):
    // start the next input from no loaded model rather than from this input's keep_alive.
    if (data.find("keep_alive") != std::string_view::npos) unload_all();
    return problem;
  }

 private:
  std::string setup(const std::string& shared_dir) {
    // Folders left by earlier runs that crashed (their process is gone).
    const std::string tmp = fs::is_directory("/dev/shm") && ::access("/dev/shm", W_OK) == 0
                                ? "/dev/shm"
                                : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(tmp, ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("hearth-fuzz-http-", 0) != 0) continue;
      const long pid = std::strtol(n.c_str() + 17, nullptr, 10);
      if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
    }
    std::string t = tmp + "/hearth-fuzz-http-" + std::to_string(::getpid()) + "-XXXXXX";
    if (!::mkdtemp(t.data())) return "cannot create a folder in " + tmp;
    root_ = t + "/store";
    pristine_ = t + "/pristine";
    store_ = std::make_unique<store::Store>(root_);
    fs::create_directories(root_ + "/blobs", ec);
    fs::create_directories(pristine_, ec);
    if (ec) return "cannot create " + root_ + ": " + ec.message();

    // "tiny": the fixture as is. "tiny-tmpl": the same weights with every Modelfile layer (a Go
    // template, system, parameters, messages, license), so /api/show and the Go-template path
    // of generation have something to work with.
    const std::string fixture = shared_dir + "/fixtures/" + kFixture;
    store::CreateSpec a;
    a.gguf_path = fixture;
    if (auto s = store::create_model(*store_, *store::ModelName::parse("tiny"), a); !s)
      return "cannot create the model from " + fixture + ": " + s.message();
    store::CreateSpec b;
    b.from_model = *store::ModelName::parse("tiny");
    b.template_text =
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
        "<|im_start|>assistant\n";
    b.system = "You are terse.";
    b.params =
        nlohmann::ordered_json{{"num_ctx", 128}, {"num_predict", 8}, {"stop", {"<|im_end|>"}}};
    b.messages = nlohmann::ordered_json::array(
        {{{"role", "user"}, {"content", "hi"}}, {{"role", "assistant"}, {"content", "hello"}}});
    b.licenses = std::vector<std::string>{"MIT"};
    if (auto s = store::create_model(*store_, *store::ModelName::parse("tiny-tmpl"), b); !s)
      return "cannot create tiny-tmpl: " + s.message();

    // The snapshot reset_store() goes back to.
    for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      const std::string rel = relative(it->path());
      snapshot_.insert(rel);
      if (!it->is_regular_file()) continue;
      if (rel.rfind("manifests/", 0) == 0) {
        std::ifstream in(it->path(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        manifests_[rel] = ss.str();
      } else {
        fs::create_hard_link(it->path(), pristine_ + "/" + it->path().filename().string(), ec);
        if (ec) return "cannot link " + it->path().string() + ": " + ec.message();
      }
    }
    if (ec) return "cannot list " + root_ + ": " + ec.message();

    runtime::SchedulerOptions o;
    o.num_parallel = 1;
    o.max_loaded = 2;
    o.max_queue = 4;
    o.default_ctx = 256;
    o.n_threads = 1;
    o.n_batch = 32;
    // Scheduler::estimate_bytes counts 256 MiB of scratch: this leaves ~64 MiB for KV, so a
    // num_ctx of millions is refused at load instead of allocated.
    o.memory_limit = (int64_t(256) << 20) + (int64_t(64) << 20);
    sched_ = std::make_unique<runtime::Scheduler>(o);
    api_ = std::make_unique<server::Api>(*store_, sched_.get());
    // A loopback listener with one extra allowed origin pattern, as `hearth serve` sets it up
    // from HEARTH_ORIGINS (fixed here: the environment does not change what a run does).
    access_ = std::make_unique<server::AccessPolicy>(
        std::vector<std::string>{"https://*.example.com"}, true);
    return "";
  }

  void unload_all() {
    for (const auto& m : sched_->loaded()) sched_->unload(m.model_path);
    const auto t0 = Clock::now();
    while (!sched_->loaded().empty() && Clock::now() - t0 < std::chrono::seconds(2))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  std::string relative(const fs::path& p) const { return p.string().substr(root_.size() + 1); }

  // Puts the store back to the snapshot. Returns a problem found on the way ("" if none):
  // temporary files left behind.
  std::string reset_store() {
    std::string problem;
    std::error_code ec;
    std::vector<fs::path> extra;
    for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      const std::string rel = relative(it->path());
      if (snapshot_.count(rel)) continue;
      const std::string name = it->path().filename().string();
      if (problem.empty() && (name.rfind(".tmp-", 0) == 0 || name.rfind(".quantize-", 0) == 0))
        problem = "temporary file left in the store: " + rel;
      extra.push_back(it->path());
      if (it->is_directory()) it.disable_recursion_pending();
    }
    for (const auto& p : extra) fs::remove_all(p, ec);
    for (const auto& rel : snapshot_) {
      const fs::path p = fs::path(root_) / rel;
      if (auto m = manifests_.find(rel); m != manifests_.end()) {
        std::ifstream in(p, std::ios::binary);
        std::stringstream ss;
        if (in) ss << in.rdbuf();
        if (!in || ss.str() != m->second) {
          fs::create_directories(p.parent_path(), ec);
          std::ofstream(p, std::ios::binary | std::ios::trunc) << m->second;
        }
      } else if (rel.rfind("blobs/", 0) == 0 && !fs::exists(p, ec)) {
        fs::create_directories(p.parent_path(), ec);
        fs::create_hard_link(fs::path(pristine_) / p.filename(), p, ec);
      } else if (!fs::exists(p, ec)) {
        fs::create_directories(p, ec);
      }
    }
    return problem;
  }

  // Feeds `p` from data[off...] until `done(p)`; false on a parse error or truncated input.
  template <class Parser, class Done>
  static bool feed(Parser& p, std::string_view data, size_t& off, Done done) {
    while (!done(p)) {
      beast::error_code ec;
      const size_t n = p.put(boost::asio::buffer(data.data() + off, data.size() - off), ec);
      off += n;
      if (ec) return false;  // need_more: the client stopped sending; else a parse error
      if (n == 0) return false;
    }
    return true;
  }

  std::string run_requests(std::string_view data) {
    size_t off = 0;
    int index = 0;
    while (off < data.size()) {
      // Session::read_header / on_header.
      http::request_parser<http::empty_body> hp;
      hp.header_limit(kHeaderLimit);
      hp.body_limit(std::numeric_limits<std::uint64_t>::max());
      if (!feed(hp, data, off, [](auto& p) { return p.is_header_done(); }))
        return "";  // 400/408/413/431 from the HTTP layer, then the connection closes
      const auto& h = hp.get();
      server::HttpRequest head = server::to_request(h);
      last_request = "request " + std::to_string(index++) + ": " + head.method + " " + head.path;
      // Browser rules before anything else.
      if (Status st = access_->check(head.header("host"), head.header("origin")); !st)
        return check_early(server::error_response(st), head.method);
      (void)access_->cors_headers(head.header("origin"));
      if (h.method() == http::verb::options) {
        const bool body = hp.chunked() || (hp.content_length() && *hp.content_length() > 0);
        if (!head.header("access-control-request-method").empty())
          (void)access_->preflight_headers(head.header("origin"));
        if (!h.keep_alive() || body) return "";  // 204, then closed
        continue;                                // 204; the body, if any, is the next request
      }
      server::HttpRequest req;
      bool keep_alive = true;
      server::UploadDecision d;
      if (h.method() != http::verb::get && h.method() != http::verb::head)
        d = call([&] { return api_->start_upload(head); }, &last_thrown_);
      if (!last_thrown_.empty())
        return last_request + ": exception escaped Api::start_upload: " + last_thrown_;
      if (d.answer) return check_early(std::move(*d.answer), head.method);  // then closed
      if (d.sink) {
        // Session::read_upload / on_upload, with 4 KiB pieces (the server's are 256 KiB) so
        // that the sink sees several.
        http::request_parser<http::buffer_body> up(std::move(hp));
        up.body_limit(std::numeric_limits<std::uint64_t>::max());
        std::array<char, 4096> chunk;
        while (!up.is_done()) {
          auto& body = up.get().body();
          body.data = chunk.data();
          body.size = chunk.size();
          body.more = true;
          beast::error_code ec;
          const size_t n = up.put(boost::asio::buffer(data.data() + off, data.size() - off), ec);
          off += n;
          if (ec == http::error::need_buffer) ec = {};
          const size_t got = chunk.size() - body.size;
          if (got > 0) {
            Status st = d.sink->write(chunk.data(), got);
            if (!st) return check_early(server::error_response(st), head.method);
          }
          if (ec || (n == 0 && got == 0)) return "";  // truncated or malformed: dropped
        }
        req = server::to_request(up.get());
        req.upload = std::move(d.sink);
        keep_alive = up.get().keep_alive();
      } else {
        if (auto len = hp.content_length(); len && *len > kMaxBody) return "";  // 413, closed
        http::request_parser<http::string_body> bp(std::move(hp));
        bp.body_limit(kMaxBody);
        if (!feed(bp, data, off, [](auto& p) { return p.is_done(); })) return "";
        req = server::to_request(bp.get());
        req.body = std::move(bp.get().body());
        keep_alive = bp.get().keep_alive();
      }
      if (std::string problem = answer(req); !problem.empty()) return problem;
      if (!keep_alive) return "";
    }
    return "";
  }

  template <class F>
  static auto call(F f, std::string* thrown) -> decltype(f()) {
    thrown->clear();
    try {
      return f();
    } catch (const std::exception& e) {
      *thrown = e.what();
    } catch (...) {
      *thrown = "(not a std::exception)";
    }
    return {};
  }

  // An answer the HTTP layer sends before the handler runs (access refusal, upload decision).
  std::string check_early(server::HttpResponse r, const std::string& method) {
    Exchange x;
    x.sends = 1;
    x.status = r.status;
    x.content_type = r.content_type;
    x.body = std::move(r.body);
    if (std::string p = check_answer(x, method); !p.empty())
      return last_request + " (status " + std::to_string(x.status) + ", before the handler): " + p;
    return "";
  }

  // One request through Api::handle, waiting until the API has let go of it.
  std::string answer(const server::HttpRequest& req) {
    auto x = std::make_shared<Exchange>();
    std::string thrown;
    {
      auto res = std::make_shared<FakeResponder>(x);
      try {
        api_->handle(req, std::move(res));
      } catch (const std::exception& e) {
        thrown = e.what();
      } catch (...) {
        thrown = "(not a std::exception)";
      }
    }
    std::unique_lock<std::mutex> lk(x->mu);
    if (!x->cv.wait_for(lk, kAnswerTimeout, [&] { return x->live == 0; }))
      return "timeout: " + last_request + " still held by the server after " +
             std::to_string(kAnswerTimeout.count()) + " s (sends " + std::to_string(x->sends) +
             ", streams " + std::to_string(x->streams) + ")";
    if (!thrown.empty()) return last_request + ": exception escaped Api::handle: " + thrown;
    if (std::string p = check_answer(*x, req.method); !p.empty())
      return last_request + " (status " + std::to_string(x->status) + "): " + p;
    return "";
  }

  std::string root_, pristine_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<runtime::Scheduler> sched_;
  std::unique_ptr<server::Api> api_;
  std::unique_ptr<server::AccessPolicy> access_;
  std::string last_thrown_;
  std::set<std::string> snapshot_;
  std::map<std::string, std::string> manifests_;
};

}  // namespace hearth::fuzz_http
