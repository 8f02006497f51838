// server/api.h — the Ollama HTTP API on top of the store (and, later, the scheduler).
#pragma once

#include <memory>
#include <string>

#include "server/http.h"
#include "store/store.h"

namespace hearth::server {

class Api {
 public:
  explicit Api(store::Store& store) : store_(store) {}
  // Routes one request; always answers (JSON errors shaped as Ollama's).
  void handle(const HttpRequest& req, std::shared_ptr<Responder> res);

 private:
  void tags(std::shared_ptr<Responder> res);
  void copy(const HttpRequest& req, std::shared_ptr<Responder> res);
  void remove(const HttpRequest& req, std::shared_ptr<Responder> res);
  void blob(const HttpRequest& req, std::shared_ptr<Responder> res);
  store::Store& store_;
};

// RFC 3339 with nanoseconds in UTC ("2025-10-26T17:15:24.097767000Z").
std::string rfc3339(int64_t unix_seconds, int64_t nanos = 0);

}  // namespace hearth::server
