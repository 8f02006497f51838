// server/http.h — the HTTP layer: an asynchronous HTTP/1.1 server (Boost.Beast on Asio).
//
// One event loop serves every connection, so idle keep-alive clients and long streams cost a
// socket and a little memory each, never a thread. Handlers either answer at once
// (`Responder::send`) or open a stream (`Responder::stream`) that any thread may write to (the
// scheduler writes tokens as they come); a write to a stream whose client went away returns
// false, and `closed()` turns true as soon as the peer hangs up, so generation can stop.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace hearth::server {

// Receives a streamed request body (an upload) as it arrives, on the network thread: keep each
// call short (hash and write a piece). The handler gets it back in HttpRequest::upload.
class UploadSink {
 public:
  virtual ~UploadSink() = default;
  // One piece of the body; an error stops the upload and is answered (e.g. 413, 507).
  virtual Status write(const char* data, size_t n) = 0;
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::string query;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::shared_ptr<UploadSink> upload;  // streamed uploads: the body went here instead
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// A body sent from a file: `length` bytes from `offset` (a blob, or a range of one). The file is
// opened by the handler, so a name that changed meanwhile cannot swap the content.
struct FileBody {
  int fd = -1;  // owned: closed once sent
  uint64_t offset = 0, length = 0;
  FileBody() = default;
  FileBody(const FileBody&) = delete;
  FileBody& operator=(const FileBody&) = delete;
  ~FileBody();
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<FileBody> file;  // set: the body comes from here instead
};

// A chunked response body written piece by piece, from any thread.
class Stream {
 public:
  virtual ~Stream() = default;
  // Queues one piece; false if the client has gone (the piece is dropped).
  virtual bool write(std::string piece) = 0;
  // Ends the response (idempotent).
  virtual void end() = 0;
  // True once the client disconnected or a write failed.
  virtual bool closed() const = 0;
};

class Responder {
 public:
  virtual ~Responder() = default;
  // Answers once. Safe from any thread.
  virtual void send(HttpResponse r) = 0;
  // Starts a chunked response with this status and content type.
  virtual std::shared_ptr<Stream> stream(int status, const std::string& content_type) = 0;
  // For answers that take a while (generation without streaming): start noticing a hang-up, so
  // closed() turns true if the client leaves before send().
  virtual void watch_disconnect() {}
  virtual bool closed() const { return false; }
};

using Handler = std::function<void(const HttpRequest&, std::shared_ptr<Responder>)>;

// Decides, from a request's head (method, path, headers; no body yet), whether its body is an
// upload to stream into a sink. `answer` set: reply with it at once and read no body (a bad
// digest, a blob already present, no room on disk). Neither set: an ordinary in-memory body.
struct UploadDecision {
  std::shared_ptr<UploadSink> sink;
  std::optional<HttpResponse> answer;
};
using UploadStart = std::function<UploadDecision(const HttpRequest& head)>;

class AccessPolicy;
class ApiKey;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 11434;
  size_t max_body = size_t(64) << 20;  // larger in-memory bodies get 413
  UploadStart upload;                  // optional: streamed uploads
  // Browser access rules (Origin/Host, CORS); null: every request is served.
  std::shared_ptr<const AccessPolicy> access;
  // Set: every request but the public ones (server/auth.h) must carry this key; checked after
  // the browser rules, before any of the body is read.
  std::shared_ptr<const ApiKey> api_key;
  int io_threads = 1;
  // Handlers run here, never on the network thread: parsing a large body, hashing or file I/O
  // must not stall other clients' streams.
  int worker_threads = 8;
  // A connection idle (or a request head unfinished) this long is closed (408 if a request had
  // begun); an in-memory body must arrive within `body_timeout`; an upload may pause at most
  // `upload_idle_timeout` between pieces.
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds body_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds upload_idle_timeout{std::chrono::seconds(60)};
};

class HttpServer {
 public:
  explicit HttpServer(ServerOptions o, Handler h);
  ~HttpServer();
  // Binds and listens; errors name the address.
  Status start();
  int port() const;  // the bound port (useful with port 0)
  // Runs the event loop on the calling thread (plus io_threads - 1 helpers) until stop().
  void run();
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::server
