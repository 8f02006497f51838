// registry/client.h — talking to an Ollama-protocol registry (Docker registry v2 paths) over
// libcurl: where a name lives, plain requests with the bearer-token challenge answered, and the
// blob URLs a download reads from.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/name.h"

namespace hearth::registry {

struct Reply {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names; the last response's
  std::string effective_url;                   // after redirects
};

// Where requests for one model go: scheme://host/v2/<ns>/<model>/...
struct Endpoint {
  std::string scheme = "https";  // "http" with --insecure (or a name given as http://...)
  store::ModelName name;

  // Parses a user's name: `[http[s]://][host[:port]/][ns/]model[:tag]`. An http:// name needs
  // `insecure` (as Ollama: "insecure protocol http").
  static Result<Endpoint> parse(std::string_view user_name, bool insecure);
  std::string base() const;      // scheme://host
  std::string repo_url() const;  // scheme://host/v2/ns/model
  std::string manifest_url() const { return repo_url() + "/manifests/" + name.tag; }
  std::string blob_url(std::string_view digest) const {
    return repo_url() + "/blobs/" + std::string(digest);
  }
};

// Settings read from the environment once (tests shorten the waits).
struct Tuning {
  int retries = 6;         // per part, as Ollama
  int backoff_ms = 1000;   // first retry's wait, doubled each time
  int stall_seconds = 30;  // a part that receives nothing this long is restarted
  int connect_seconds = 30;
  int max_streams = 16;           // concurrent transfers across all blobs of a pull
  int64_t part_bytes = 16 << 20;  // ranged part size for large blobs
  // HEARTH_PULL_BACKOFF_MS, HEARTH_PULL_STALL_SECONDS, HEARTH_PULL_STREAMS, HEARTH_PULL_PART_MB.
  static Tuning from_env();
};

// One registry conversation: requests carry the token a 401 challenge earned.
class Client {
 public:
  explicit Client(Endpoint ep, Tuning t = Tuning::from_env());
  const Endpoint& endpoint() const { return ep_; }
  const Tuning& tuning() const { return t_; }

  // A request to the registry. `follow`: redirects are followed (the Authorization header is
  // never sent to another host). A 401 with a Bearer challenge is answered once and retried.
  Result<Reply> request(const std::string& method, const std::string& url,
                        const std::vector<std::string>& headers = {}, const std::string& body = "",
                        bool follow = true);
  // The same with `length` bytes of file `fd` from `offset` as the body (an upload), calling
  // `sent(bytes so far)` as they go.
  Result<Reply> send_file(const std::string& method, const std::string& url,
                          const std::vector<std::string>& headers, int fd, int64_t offset,
                          int64_t length, const std::function<void(int64_t)>& sent = {});
  // Authorization header lines for a request to `url` (empty for another host than the
  // registry's own).
  std::vector<std::string> auth_headers(const std::string& url) const;
  // A bearer token sent from the first request on (HF_TOKEN) rather than one a 401 challenge
  // earns; like that one, only to the endpoint's own host.
  void set_token(std::string token) {
    std::lock_guard<std::mutex> l(mu_);
    token_ = std::move(token);
  }

  // A request body: text, or a region of a file (read as curl sends it).
  struct Body {
    const std::string* text = nullptr;
    int fd = -1;
    int64_t offset = 0, length = 0, pos = 0;
    const std::function<void(int64_t)>* sent = nullptr;
  };

 private:
  Status answer_challenge(const std::string& www_authenticate);
  Result<Reply> perform(const std::string& method, const std::string& url,
                        const std::vector<std::string>& headers, Body body, bool follow);
  Endpoint ep_;
  Tuning t_;
  mutable std::mutex mu_;
  std::string token_;
};

// The host[:port] of a URL ("" if none).
std::string url_host(std::string_view url);
// Resolves a Location header against the URL it answered.
std::string resolve_url(const std::string& base, const std::string& location);

// The token request of a Bearer challenge as Ollama builds it (ollama: server/auth.go): the
// realm with its own query parameters plus service, each space-separated scope, ts (unix seconds)
// and nonce, all encoded as Go's url.Values.Encode (keys sorted, QueryEscape'd values).
Result<std::string> token_request_url(const std::string& realm, const std::string& service,
                                      const std::string& scope, int64_t ts,
                                      const std::string& nonce);
// What the user's key signs for it: `GET,<url>,<base64 of the hex sha256 of the empty body>`.
std::string token_request_signed_string(const std::string& url);

// What every registry transfer sets: redirects (`follow`, at most 10, HTTP(S) only), the
// connect timeout, a stall (no byte for stall_seconds) ending the transfer, no signals.
void set_transfer_options(void* curl_easy, const Tuning& t, bool follow);

// A user agent like Ollama's ("hearth/<version> (amd64 linux)").
std::string user_agent();

}  // namespace hearth::registry
