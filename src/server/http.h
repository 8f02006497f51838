// server/http.h — the HTTP layer: an asynchronous HTTP/1.1 server (Boost.Beast on Asio).
//
// One event loop serves every connection, so idle keep-alive clients and long streams cost a
// socket and a little memory each, never a thread. Handlers either answer at once
// (`Responder::send`) or open a stream (`Responder::stream`) that any thread may write to (the
// scheduler writes tokens as they come); a write to a stream whose client went away returns
// false, and `closed()` turns true as soon as the peer hangs up, so generation can stop.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace hearth::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::string query;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string body_file;  // streamed uploads: the body is in this temporary file instead
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
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

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 11434;
  size_t max_body = size_t(64) << 20;  // larger bodies get 413 (blob uploads stream to disk)
  // Paths whose POST bodies are streamed to a temporary file (e.g. "/api/blobs/"), any size.
  std::vector<std::string> file_body_prefixes;
  std::string upload_dir;  // where those temporary files go
  int io_threads = 1;
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

// {"error": message} with a status code, as Ollama shapes errors.
HttpResponse json_error(int status, const std::string& message);

}  // namespace hearth::server
