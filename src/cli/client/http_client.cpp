#include "cli/client/http_client.h"

#include <curl/curl.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "registry/key.h"
#include "server/listen.h"

namespace hearth::cli {
namespace {

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
};

CURL* easy() {
  static CurlGlobal g;
  return curl_easy_init();
}

size_t to_string(char* p, size_t s, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, s * n);
  return s * n;
}

struct StreamState {
  std::string buf;
  const std::function<bool(const nlohmann::json&)>* on_line;
  bool stop = false;
  std::string raw;  // non-NDJSON body (errors)
};

size_t to_lines(char* p, size_t s, size_t n, void* ud) {
  auto* st = static_cast<StreamState*>(ud);
  st->buf.append(p, s * n);
  size_t nl;
  while ((nl = st->buf.find('\n')) != std::string::npos) {
    std::string line = st->buf.substr(0, nl);
    st->buf.erase(0, nl + 1);
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) {
      st->raw += line;
      continue;
    }
    if (!(*st->on_line)(j)) {
      st->stop = true;
      return 0;  // aborts the transfer
    }
  }
  return s * n;
}

int cancel_check(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* c = static_cast<const std::atomic<bool>*>(ud);
  return c && c->load() ? 1 : 0;
}

}  // namespace

Result<Client> Client::from_env() {
  HEARTH_ASSIGN_OR_RETURN(auto addr, server::listen_address_from_env());
  Client c;
  std::string host = addr.host;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  c.base_ = "http://" + host + ":" + std::to_string(addr.port);
  std::string key;
  if (const char* k = std::getenv("HEARTH_API_KEY"); k && *k) {
    key = k;
  } else if (server::is_loopback_host(host)) {
    // The key file a server on this machine uses; never sent to another host.
    const char* f = std::getenv("HEARTH_API_KEY_FILE");
    std::ifstream in(f && *f ? std::string(f) : registry::home_dir() + "/.hearth/api_key");
    if (in) key.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const size_t b = key.find_first_not_of(" \t\r\n");
  key = b == std::string::npos ? "" : key.substr(b, key.find_last_not_of(" \t\r\n") - b + 1);
  if (!key.empty()) c.auth_ = "Authorization: Bearer " + key;
  return c;
}

curl_slist* Client::with_key(curl_slist* h) const {
  return auth_.empty() ? h : curl_slist_append(h, auth_.c_str());
}

bool Client::alive() const {
  CURL* h = easy();
  curl_easy_setopt(h, CURLOPT_URL, (base_ + "/").c_str());
  curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
  const CURLcode rc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(h);
  return rc == CURLE_OK && code == 200;
}

Result<HttpResult> Client::request(const std::string& method, const std::string& path,
                                   const std::string& body) const {
  CURL* h = easy();
  HttpResult r;
  curl_slist* hdr = with_key(curl_slist_append(nullptr, "Content-Type: application/json"));
  curl_easy_setopt(h, CURLOPT_URL, (base_ + path).c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "HEAD") curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  if (!body.empty()) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.size()));
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_string);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
  const CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  if (rc != CURLE_OK)
    return Status(StatusCode::kUnavailable,
                  std::string("request failed: ") + curl_easy_strerror(rc));
  return r;
}

Result<long> Client::stream(const std::string& path, const std::string& body,
                            const std::function<bool(const nlohmann::json&)>& on_line,
                            const std::atomic<bool>* cancel) const {
  CURL* h = easy();
  StreamState st;
  st.on_line = &on_line;
  curl_slist* hdr = with_key(curl_slist_append(nullptr, "Content-Type: application/json"));
  curl_easy_setopt(h, CURLOPT_URL, (base_ + path).c_str());
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_lines);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &st);
  if (cancel) {
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, cancel_check);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, cancel);
  }
  const CURLcode rc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  if (!st.buf.empty()) {  // a last line without a newline, or a non-streamed error body
    auto j = nlohmann::json::parse(st.buf, nullptr, false);
    if (!j.is_discarded() && !st.stop)
      on_line(j);
    else
      st.raw += st.buf;
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK || (rc == CURLE_WRITE_ERROR && st.stop)) return code;
  if (rc != CURLE_OK)
    return Status(StatusCode::kUnavailable,
                  std::string("request failed: ") + curl_easy_strerror(rc));
  return code;
}

Result<HttpResult> Client::upload(const std::string& path, const std::string& file,
                                  const std::function<void(int64_t, int64_t)>& progress) const {
  FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) return not_found("cannot open " + file);
  std::fseek(f, 0, SEEK_END);
  const long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  CURL* h = easy();
  HttpResult r;
  curl_easy_setopt(h, CURLOPT_URL, (base_ + path).c_str());
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_READDATA, f);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(size));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_string);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
  curl_slist* hdr = with_key(curl_slist_append(nullptr, "Expect:"));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  struct P {
    const std::function<void(int64_t, int64_t)>* fn;
  } p{&progress};
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(
      h, CURLOPT_XFERINFOFUNCTION,
      +[](void* ud, curl_off_t, curl_off_t, curl_off_t ut, curl_off_t un) -> int {
        auto* pp = static_cast<P*>(ud);
        if (*pp->fn) (*pp->fn)(int64_t(un), int64_t(ut));
        return 0;
      });
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &p);
  const CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  std::fclose(f);
  if (rc != CURLE_OK)
    return Status(StatusCode::kUnavailable,
                  std::string("upload failed: ") + curl_easy_strerror(rc));
  return r;
}

void fail(const std::string& message) {
  std::fprintf(stderr, "Error: %s\n", message.c_str());
  std::exit(1);
}

std::string error_message(const HttpResult& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("error")) {
    const auto& e = j["error"];
    if (e.is_string()) return e.get<std::string>();
    if (e.is_object() && e.contains("message") && e["message"].is_string())
      return e["message"].get<std::string>();
  }
  if (!r.body.empty()) return r.body;
  return "the server answered " + std::to_string(r.status);
}

Client connect_or_exit() {
  auto c = Client::from_env();
  if (!c) fail(c.status().message());
  if (!c->alive()) fail("could not connect to hearth server, run 'hearth serve' to start it");
  return *c;
}

}  // namespace hearth::cli
