// server/access.h — who may talk to the server from a browser: Ollama's Origin and Host rules.
//
// A web page on any origin can send "simple" cross-origin POSTs and, by DNS rebinding, make its
// own host name point at 127.0.0.1. So, as Ollama does:
//  - a request carrying an Origin header is served only if that origin is allowed: localhost,
//    127.0.0.1 and 0.0.0.0 on any port (http and https), the app schemes (app://, file://,
//    tauri://, vscode-webview://, vscode-file://), the server's own origin, and the patterns in
//    HEARTH_ORIGINS / OLLAMA_ORIGINS (comma-separated, `*` matches any run of characters);
//    allowed origins get CORS headers and answered preflights;
//  - while listening on loopback only, the Host header must name this machine (localhost,
//    *.localhost, *.local, *.internal, its host name, or a loopback/private/unspecified/own IP);
//    a rebinding attacker's name is refused with 403.
// Requests without an Origin header (curl, SDKs, the CLI) are not affected by the first rule.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace hearth::server {

class AccessPolicy {
 public:
  // From HEARTH_ORIGINS and OLLAMA_ORIGINS; `loopback_only`: the listener is 127.0.0.1/::1.
  static AccessPolicy from_env(bool loopback_only);
  AccessPolicy(std::vector<std::string> extra_origins, bool loopback_only);

  bool origin_allowed(const std::string& origin, const std::string& host_header) const;
  bool host_allowed(const std::string& host_header) const;

  // PermissionDenied (403 through server/errors.h) for a request that must be refused.
  Status check(const std::string& host_header, const std::string& origin) const;

  // Headers for an answer to an allowed cross-origin request (empty without an Origin).
  std::vector<std::pair<std::string, std::string>> cors_headers(const std::string& origin) const;
  // Extra headers answering a preflight (OPTIONS with Access-Control-Request-Method).
  std::vector<std::pair<std::string, std::string>> preflight_headers(
      const std::string& origin) const;

 private:
  std::vector<std::string> patterns_;
  bool loopback_only_;
  std::vector<std::string> local_names_;  // host name and interface addresses
};

// "*" matches any run of characters (incl. none); everything else literally, case-insensitive.
bool glob_match(const std::string& pattern, const std::string& text);

}  // namespace hearth::server
