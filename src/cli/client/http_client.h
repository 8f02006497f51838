// cli/client/http_client.h — the CLI's connection to `hearth serve` (libcurl): JSON requests and
// NDJSON streams, with the server address taken from HEARTH_HOST / OLLAMA_HOST as the server
// reads it.
#pragma once

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"

namespace hearth::cli {

struct HttpResult {
  long status = 0;
  std::string body;
};

class Client {
 public:
  // From HEARTH_HOST / OLLAMA_HOST (default 127.0.0.1:11434).
  static Result<Client> from_env();
  const std::string& base() const { return base_; }

  // HEAD /: false if no server answers.
  bool alive() const;
  Result<HttpResult> request(const std::string& method, const std::string& path,
                             const std::string& body = "") const;
  // POSTs `body` and calls on_line for each NDJSON line as it arrives; on_line returns false to
  // stop. `cancel`, when set from another thread or a signal handler, aborts the transfer.
  Result<long> stream(const std::string& path, const std::string& body,
                      const std::function<bool(const nlohmann::json&)>& on_line,
                      const std::atomic<bool>* cancel = nullptr) const;
  // Uploads a file as the body of a POST, with progress (bytes sent, total).
  Result<HttpResult> upload(const std::string& path, const std::string& file,
                            const std::function<void(int64_t, int64_t)>& progress) const;

 private:
  std::string base_;
};

// Prints "Error: <message>" (the server's JSON error when there is one) and exits 1.
[[noreturn]] void fail(const std::string& message);
// The "error" field of a JSON body, or the body itself.
std::string error_message(const HttpResult& r);
// HEAD / or exit with Ollama's "could not connect" message.
Client connect_or_exit();

}  // namespace hearth::cli
