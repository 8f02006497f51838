// cli/client/http_client.h — the CLI's connection to `hearth serve` (libcurl): JSON requests and
// NDJSON streams, with the server address taken from HEARTH_HOST / OLLAMA_HOST as the server
// reads it. A server reachable beyond loopback asks for an API key (server/auth.h): the client
// sends HEARTH_API_KEY, or, for a server on this machine, the key file the server wrote.
#pragma once

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"

struct curl_slist;

namespace hearth::cli {

struct HttpResult {
  long status = 0;
  std::string body;
};

class Client {
 public:
  // From HEARTH_HOST / OLLAMA_HOST (default 127.0.0.1:11434) and the key: HEARTH_API_KEY, else
  // when the server is on this machine, HEARTH_API_KEY_FILE or ~/.hearth/api_key if it exists.
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
  // The Authorization header (if there is a key) added to `h`.
  curl_slist* with_key(curl_slist* h) const;
  std::string base_;
  std::string auth_;  // "Authorization: Bearer <key>", or empty
};

// Prints "Error: <message>" (the server's JSON error when there is one) and exits 1.
[[noreturn]] void fail(const std::string& message);
// The "error" field of a JSON body, or the body itself.
std::string error_message(const HttpResult& r);
// HEAD / or exit with Ollama's "could not connect" message.
Client connect_or_exit();

}  // namespace hearth::cli
