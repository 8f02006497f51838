#include "registry/client.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/version.h"
#include "registry/key.h"

namespace hearth::registry {
namespace {

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

int env_int(const char* name, int dflt) {
  const char* v = std::getenv(name);
  if (!v || !*v) return dflt;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return end && *end == 0 && x >= 0 && x < (1L << 30) ? int(x) : dflt;
}

size_t on_body(char* p, size_t sz, size_t n, void* ud) {
  auto* s = static_cast<std::string*>(ud);
  // A registry's JSON answers are small; a body past 16 MiB is not one of them.
  if (s->size() + sz * n > (16u << 20)) return 0;
  s->append(p, sz * n);
  return sz * n;
}

size_t on_header(char* p, size_t sz, size_t n, void* ud) {
  auto* h = static_cast<std::map<std::string, std::string>*>(ud);
  std::string line(p, sz * n);
  if (line.rfind("HTTP/", 0) == 0) {
    h->clear();  // a new response (after a redirect or 100-continue): keep only the last one's
    return sz * n;
  }
  const size_t c = line.find(':');
  if (c == std::string::npos) return sz * n;
  std::string k = line.substr(0, c);
  for (auto& ch : k) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  size_t b = c + 1, e = line.size();
  while (b < e && (line[b] == ' ' || line[b] == '\t')) ++b;
  while (e > b && (line[e - 1] == '\r' || line[e - 1] == '\n' || line[e - 1] == ' ')) --e;
  (*h)[k] = line.substr(b, e - b);
  return sz * n;
}

// Splits `Bearer realm="...",service="...",scope="..."` into its parameters.
std::map<std::string, std::string> challenge_params(std::string_view v) {
  std::map<std::string, std::string> out;
  if (v.size() < 7) return out;
  std::string_view s = v.substr(v.find(' ') == std::string_view::npos ? v.size() : v.find(' '));
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',')) ++i;
    const size_t eq = s.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string key(s.substr(i, eq - i));
    i = eq + 1;
    std::string val;
    if (i < s.size() && s[i] == '"') {
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        val += s[i++];
      }
      ++i;
    } else {
      while (i < s.size() && s[i] != ',') val += s[i++];
    }
    out[key] = val;
  }
  return out;
}

// Go's url.QueryEscape: unreserved bytes stay, a space is '+', everything else %XX.
std::string query_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += char(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

// Go's url.QueryUnescape ('+' is a space); a malformed escape is kept as it is.
std::string query_unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(uint8_t(s[i + 1])) &&
               std::isxdigit(uint8_t(s[i + 2]))) {
      out += char(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string random_nonce() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  return base64url_raw(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
}

}  // namespace

void set_transfer_options(void* curl_easy, const Tuning& t, bool follow) {
  CURL* c = static_cast<CURL*>(curl_easy);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, long(t.connect_seconds));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, long(t.stall_seconds));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
}

std::string user_agent() {
  return std::string("hearth/") + kVersion + " (amd64 linux)";
}

Tuning Tuning::from_env() {
  Tuning t;
  t.backoff_ms = env_int("HEARTH_PULL_BACKOFF_MS", t.backoff_ms);
  t.stall_seconds = std::max(1, env_int("HEARTH_PULL_STALL_SECONDS", t.stall_seconds));
  t.max_streams = std::max(1, env_int("HEARTH_PULL_STREAMS", t.max_streams));
  t.part_bytes = int64_t(std::max(1, env_int("HEARTH_PULL_PART_MB", int(t.part_bytes >> 20))))
                 << 20;
  return t;
}

Result<Endpoint> Endpoint::parse(std::string_view user_name, bool insecure) {
  Endpoint ep;
  ep.scheme = insecure ? "http" : "https";
  std::string_view s = user_name;
  if (s.rfind("http://", 0) == 0) {
    if (!insecure) return invalid_argument("insecure protocol http");
    ep.scheme = "http";
  } else if (s.rfind("https://", 0) == 0) {
    ep.scheme = "https";
  }
  HEARTH_ASSIGN_OR_RETURN(ep.name, store::ModelName::parse(s));
  return ep;
}

std::string Endpoint::base() const {
  return scheme + "://" + name.host;
}

std::string Endpoint::repo_url() const {
  return base() + "/v2/" + name.ns + "/" + name.model;
}

std::string url_host(std::string_view url) {
  const size_t p = url.find("://");
  if (p == std::string_view::npos) return "";
  std::string_view rest = url.substr(p + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  std::string h(rest);
  for (auto& c : h) c = char(std::tolower(static_cast<unsigned char>(c)));
  return h;
}

std::string resolve_url(const std::string& base, const std::string& location) {
  if (location.find("://") != std::string::npos) return location;
  const size_t p = base.find("://");
  if (p == std::string::npos) return location;
  const size_t path = base.find('/', p + 3);
  const std::string origin = path == std::string::npos ? base : base.substr(0, path);
  if (!location.empty() && location[0] == '/') return origin + location;
  // Relative to the base's directory.
  std::string dir = path == std::string::npos ? origin + "/" : base.substr(0, base.rfind('/') + 1);
  if (const size_t q = dir.find('?'); q != std::string::npos) dir = dir.substr(0, q);
  return dir + location;
}

Result<std::string> token_request_url(const std::string& realm, const std::string& service,
                                      const std::string& scope, int64_t ts,
                                      const std::string& nonce) {
  const size_t scheme_end = realm.find("://");
  if (scheme_end == std::string::npos) return invalid_argument("token realm is not a URL");
  const size_t hash = realm.find('#');
  const std::string no_frag = realm.substr(0, hash);
  const size_t q = no_frag.find('?');
  const std::string base = no_frag.substr(0, q);
  // The realm's own query parameters, then the ones Ollama adds; url.Values.Encode sorts the
  // keys (byte order, as std::map) and keeps each key's values in the order they were added.
  std::map<std::string, std::vector<std::string>> values;
  if (q != std::string::npos) {
    std::string_view rest = std::string_view(no_frag).substr(q + 1);
    while (!rest.empty()) {
      const std::string_view pair = rest.substr(0, rest.find('&'));
      rest.remove_prefix(std::min(rest.size(), pair.size() + 1));
      if (pair.empty()) continue;
      const size_t eq = pair.find('=');
      values[query_unescape(pair.substr(0, eq))].push_back(
          eq == std::string_view::npos ? "" : query_unescape(pair.substr(eq + 1)));
    }
  }
  values["service"].push_back(service);
  // Each space-separated scope is its own parameter (an empty scope is one empty value).
  for (size_t i = 0;;) {
    const size_t sp = scope.find(' ', i);
    values["scope"].push_back(scope.substr(i, sp == std::string::npos ? sp : sp - i));
    if (sp == std::string::npos) break;
    i = sp + 1;
  }
  values["ts"].push_back(std::to_string(ts));
  values["nonce"].push_back(nonce);
  std::string query;
  for (const auto& [k, vs] : values)
    for (const auto& v : vs) {
      if (!query.empty()) query += '&';
      query += query_escape(k) + "=" + query_escape(v);
    }
  return base + "?" + query;
}

std::string token_request_signed_string(const std::string& url) {
  unsigned char d[32];
  unsigned int n = 0;
  EVP_Digest("", 0, d, &n, EVP_sha256(), nullptr);
  static const char* hexd = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < n; ++i) {
    hex += hexd[d[i] >> 4];
    hex += hexd[d[i] & 15];
  }
  return "GET," + url + "," + base64_encode(hex);
}

Client::Client(Endpoint ep, Tuning t) : ep_(std::move(ep)), t_(t) {
  static CurlGlobal global;
}

std::vector<std::string> Client::auth_headers(const std::string& url) const {
  std::lock_guard<std::mutex> l(mu_);
  if (token_.empty()) return {};
  std::string h = url_host(url);
  std::string mine = ep_.name.host;
  for (auto& c : mine) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (h != mine) return {};
  return {"Authorization: Bearer " + token_};
}

Result<Reply> Client::request(const std::string& method, const std::string& url,
                              const std::vector<std::string>& headers, const std::string& body,
                              bool follow) {
  Body b;
  b.text = &body;
  return perform(method, url, headers, b, follow);
}

Result<Reply> Client::send_file(const std::string& method, const std::string& url,
                                const std::vector<std::string>& headers, int fd, int64_t offset,
                                int64_t length, const std::function<void(int64_t)>& sent) {
  Body b;
  b.fd = fd;
  b.offset = offset;
  b.length = length;
  if (sent) b.sent = &sent;
  return perform(method, url, headers, b, true);
}

namespace {

size_t read_file_body(char* out, size_t sz, size_t n, void* ud) {
  auto* b = static_cast<Client::Body*>(ud);
  const int64_t want = std::min<int64_t>(int64_t(sz * n), b->length - b->pos);
  if (want <= 0) return 0;
  const ssize_t got = ::pread(b->fd, out, size_t(want), b->offset + b->pos);
  if (got <= 0) return CURL_READFUNC_ABORT;
  b->pos += got;
  if (b->sent) (*b->sent)(b->pos);
  return size_t(got);
}

}  // namespace

Result<Reply> Client::perform(const std::string& method, const std::string& url,
                              const std::vector<std::string>& headers, Body body, bool follow) {
  for (int attempt = 0;; ++attempt) {
    CURL* c = curl_easy_init();
    if (!c) return Status(StatusCode::kInternal, "curl_easy_init failed");
    Reply r;
    curl_slist* hl = nullptr;
    for (const auto& h : headers) hl = curl_slist_append(hl, h.c_str());
    for (const auto& h : auth_headers(url)) hl = curl_slist_append(hl, h.c_str());
    const std::string ua = "User-Agent: " + user_agent();
    hl = curl_slist_append(hl, ua.c_str());
    hl = curl_slist_append(hl, "Expect:");  // no 100-continue round trip
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    set_transfer_options(c, t_, follow);
    if (body.fd >= 0) {
      body.pos = 0;
      curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(c, CURLOPT_READFUNCTION, read_file_body);
      curl_easy_setopt(c, CURLOPT_READDATA, &body);
      curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, curl_off_t(body.length));
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    } else if (method == "HEAD") {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (method != "GET") {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.text->data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.text->size()));
    }
    const CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    char* eff = nullptr;
    curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
    if (eff) r.effective_url = eff;
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
      return Status(StatusCode::kUnavailable, method + " " + url + ": " + curl_easy_strerror(rc));
    if (r.status == 401 && attempt == 0) {
      const auto it = r.headers.find("www-authenticate");
      if (it != r.headers.end() && it->second.rfind("Bearer", 0) == 0) {
        HEARTH_RETURN_IF_ERROR(answer_challenge(it->second));
        continue;
      }
    }
    return r;
  }
}

// Ollama's token flow (ollama: server/auth.go): GET <realm>?<query> signed with the user's
// ed25519 key answers {"token": ...} (or "access_token"), then every request carries it as a
// bearer token. A realm on another host than the registry is refused, as Ollama refuses it: the
// token request would tell that host what we pull, and carries our signature.
Status Client::answer_challenge(const std::string& www_authenticate) {
  auto p = challenge_params(www_authenticate);
  const std::string realm = p["realm"];
  if (realm.empty()) return Status(StatusCode::kPermissionDenied, "unauthorized: no token realm");
  std::string mine = ep_.name.host;
  for (auto& c : mine) c = char(std::tolower(static_cast<unsigned char>(c)));
  const std::string realm_host = url_host(realm);
  const auto bare = [](std::string h) { return h.substr(0, h.find(':')); };
  if (bare(realm_host) != bare(mine))
    return Status(StatusCode::kPermissionDenied,
                  "unauthorized: token realm " + realm_host + " is not the registry " + mine);
  HEARTH_ASSIGN_OR_RETURN(
      const std::string url,
      token_request_url(realm, p["service"], p["scope"], std::time(nullptr), random_nonce()));
  auto key = load_or_create_key();
  if (!key)
    return Status(StatusCode::kPermissionDenied,
                  "unauthorized: no key to sign the token request: " + key.status().message());
  HEARTH_ASSIGN_OR_RETURN(const std::string signature,
                          key->key.authorization(token_request_signed_string(url)));
  CURL* c = curl_easy_init();
  if (!c) return Status(StatusCode::kInternal, "curl_easy_init failed");
  std::string body;
  const std::string ua = "User-Agent: " + user_agent();
  const std::string auth = "Authorization: " + signature;
  curl_slist* hl = curl_slist_append(nullptr, ua.c_str());
  hl = curl_slist_append(hl, auth.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, long(t_.connect_seconds));
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  const CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK)
    return Status(StatusCode::kUnavailable,
                  "token request: " + std::string(curl_easy_strerror(rc)));
  if (status != 200) {
    std::string msg = "unauthorized: token request answered " + std::to_string(status);
    if (!body.empty()) msg += ": " + body.substr(0, 512);
    if (status == 401 || status == 403)
      msg += " (signed with " + key->path + "; its public key \"" + key->key.authorized_key() +
             "\" must be known to the registry, e.g. added to your ollama.com account; " +
             "`hearth key` shows it)";
    return Status(StatusCode::kPermissionDenied, msg);
  }
  auto j = nlohmann::json::parse(body, nullptr, false);
  std::string tok;
  if (j.is_object()) {
    if (j.contains("token") && j["token"].is_string()) tok = j["token"];
    if (tok.empty() && j.contains("access_token") && j["access_token"].is_string())
      tok = j["access_token"];
  }
  if (tok.empty()) return Status(StatusCode::kPermissionDenied, "unauthorized: no token");
  std::lock_guard<std::mutex> l(mu_);
  token_ = tok;
  return Status::ok();
}

}  // namespace hearth::registry
