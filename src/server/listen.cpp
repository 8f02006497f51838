#include "server/listen.h"

#include <cstdlib>

namespace hearth::server {

Result<ListenAddress> parse_listen_address(const std::string& in) {
  ListenAddress a;
  std::string s = in;
  int default_port = 11434;
  if (auto p = s.find("://"); p != std::string::npos) {
    const std::string scheme = s.substr(0, p);
    if (scheme == "http")
      default_port = 80;
    else if (scheme == "https")
      default_port = 443;
    s = s.substr(p + 3);
  }
  if (auto slash = s.find('/'); slash != std::string::npos) s = s.substr(0, slash);
  a.port = default_port;
  std::string host = s, port;
  if (!s.empty() && s[0] == '[') {  // [v6]:port
    const size_t close = s.find(']');
    if (close == std::string::npos) return invalid_argument("invalid host '" + in + "'");
    host = s.substr(1, close - 1);
    if (close + 1 < s.size() && s[close + 1] == ':') port = s.substr(close + 2);
  } else if (auto c = s.rfind(':'); c != std::string::npos && s.find(':') == c) {
    host = s.substr(0, c);
    port = s.substr(c + 1);
  }
  if (!host.empty()) a.host = host;
  if (!port.empty()) {
    char* end = nullptr;
    const long v = std::strtol(port.c_str(), &end, 10);
    if (*end || v < 0 || v > 65535) return invalid_argument("invalid port in '" + in + "'");
    a.port = int(v);
  }
  return a;
}

Result<ListenAddress> listen_address_from_env() {
  for (const char* k : {"HEARTH_HOST", "OLLAMA_HOST"})
    if (const char* v = std::getenv(k); v && *v) return parse_listen_address(v);
  return ListenAddress{};
}

bool is_loopback_host(const std::string& host) {
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  return h == "localhost" || h == "::1" || h.rfind("127.", 0) == 0;
}

}  // namespace hearth::server
