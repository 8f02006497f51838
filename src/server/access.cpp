#include "server/access.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

namespace hearth::server {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(uint8_t(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "host:port", "[v6]:port", "host" -> host (lower-case, without brackets).
std::string host_part(const std::string& hostport) {
  std::string h = hostport;
  if (!h.empty() && h[0] == '[') {
    const size_t e = h.find(']');
    return lower(e == std::string::npos ? h.substr(1) : h.substr(1, e - 1));
  }
  if (std::count(h.begin(), h.end(), ':') == 1) h = h.substr(0, h.find(':'));
  return lower(h);
}

// Loopback, private (RFC 1918, fc00::/7, link-local) or unspecified.
bool local_ip(const std::string& h) {
  in_addr a4{};
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1) {
    const uint32_t ip = ntohl(a4.s_addr);
    const uint8_t b0 = uint8_t(ip >> 24), b1 = uint8_t(ip >> 16);
    return ip == 0 || b0 == 127 || b0 == 10 || (b0 == 172 && (b1 & 0xf0) == 16) ||
           (b0 == 192 && b1 == 168) || (b0 == 169 && b1 == 254);
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, h.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6) || IN6_IS_ADDR_LINKLOCAL(&a6))
      return true;
    if ((a6.s6_addr[0] & 0xfe) == 0xfc) return true;  // unique local
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
      char b[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &a6.s6_addr[12], b, sizeof b);
      return local_ip(b);
    }
  }
  return false;
}

std::vector<std::string> split_origins(const char* env) {
  std::vector<std::string> out;
  if (!env) return out;
  std::string s = env, cur;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == ',') {
      size_t b = cur.find_first_not_of(" \t"), e = cur.find_last_not_of(" \t");
      if (b != std::string::npos) out.push_back(cur.substr(b, e - b + 1));
      cur.clear();
    } else {
      cur += s[i];
    }
  }
  return out;
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& text) {
  const std::string p = lower(pattern), t = lower(text);
  // Iterative wildcard match with backtracking to the last '*'.
  size_t pi = 0, ti = 0, star = std::string::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (pi < p.size() && p[pi] == t[ti]) {
      ++pi;
      ++ti;
    } else if (star != std::string::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

AccessPolicy::AccessPolicy(std::vector<std::string> extra, bool loopback_only)
    : patterns_(std::move(extra)), loopback_only_(loopback_only) {
  for (const char* h : {"localhost", "127.0.0.1", "0.0.0.0"})
    for (const char* scheme : {"http", "https"}) {
      patterns_.push_back(std::string(scheme) + "://" + h);
      patterns_.push_back(std::string(scheme) + "://" + h + ":*");
    }
  patterns_.push_back("http://[::1]");
  patterns_.push_back("http://[::1]:*");
  for (const char* s : {"app", "file", "tauri", "vscode-webview", "vscode-file"})
    patterns_.push_back(std::string(s) + "://*");
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) == 0 && name[0]) local_names_.push_back(lower(name));
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) == 0) {
    for (ifaddrs* i = ifs; i; i = i->ifa_next) {
      if (!i->ifa_addr) continue;
      char b[INET6_ADDRSTRLEN] = {};
      if (i->ifa_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, b, sizeof b);
      else if (i->ifa_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, b, sizeof b);
      if (b[0]) local_names_.push_back(lower(b));
    }
    ::freeifaddrs(ifs);
  }
}

AccessPolicy AccessPolicy::from_env(bool loopback_only) {
  std::vector<std::string> extra = split_origins(std::getenv("HEARTH_ORIGINS"));
  for (auto& o : split_origins(std::getenv("OLLAMA_ORIGINS"))) extra.push_back(std::move(o));
  return AccessPolicy(std::move(extra), loopback_only);
}

bool AccessPolicy::host_allowed(const std::string& host_header) const {
  if (!loopback_only_ || host_header.empty()) return true;
  const std::string h = host_part(host_header);
  if (h.empty() || h == "localhost") return true;
  if (ends_with(h, ".localhost") || ends_with(h, ".local") || ends_with(h, ".internal"))
    return true;
  if (local_ip(h)) return true;
  return std::find(local_names_.begin(), local_names_.end(), h) != local_names_.end();
}

bool AccessPolicy::origin_allowed(const std::string& origin, const std::string& host_header) const {
  if (origin.empty()) return true;
  for (const auto& p : patterns_)
    if (glob_match(p, origin)) return true;
  // The server's own pages (same origin): the Host check already vouches for the name.
  if (!host_header.empty())
    for (const char* scheme : {"http://", "https://"})
      if (lower(origin) == scheme + lower(host_header)) return true;
  return false;
}

Status AccessPolicy::check(const std::string& host_header, const std::string& origin) const {
  if (!host_allowed(host_header))
    return Status(StatusCode::kPermissionDenied,
                  "host '" + host_header +
                      "' is not allowed: the server listens on loopback only (set HEARTH_HOST to "
                      "listen on other addresses)");
  if (!origin_allowed(origin, host_header))
    return Status(
        StatusCode::kPermissionDenied,
        "origin '" + origin + "' is not allowed; add it to HEARTH_ORIGINS (or OLLAMA_ORIGINS)");
  return Status::ok();
}

std::vector<std::pair<std::string, std::string>> AccessPolicy::cors_headers(
    const std::string& origin) const {
  if (origin.empty()) return {};
  return {{"Access-Control-Allow-Origin", origin}, {"Vary", "Origin"}};
}

std::vector<std::pair<std::string, std::string>> AccessPolicy::preflight_headers(
    const std::string& origin) const {
  auto h = cors_headers(origin);
  h.emplace_back("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
  // Ollama's list: what the official SDKs (OpenAI's x-stainless-* included) send.
  h.emplace_back("Access-Control-Allow-Headers",
                 "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, OpenAI-Beta, "
                 "x-stainless-arch, x-stainless-async, x-stainless-custom-poll-interval, "
                 "x-stainless-helper-method, x-stainless-lang, x-stainless-os, "
                 "x-stainless-package-version, x-stainless-poll-helper, x-stainless-retry-count, "
                 "x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout");
  h.emplace_back("Access-Control-Max-Age", "43200");
  return h;
}

}  // namespace hearth::server
