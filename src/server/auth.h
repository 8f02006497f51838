// server/auth.h — the API key a server asks for once it is reachable from other machines.
//
// The browser rules (server/access.h) stop web pages; they do nothing against another machine on
// the network calling the API directly. So a listener that is not loopback-only requires
// `Authorization: Bearer <key>` on every request except the public ones: GET/HEAD of `/` (the
// "Ollama is running" probe and the UI page) and `/ui/assets/*` (the UI's static files), plus
// CORS preflights, which the HTTP layer answers from the origin policy before this check.
//
// The key: HEARTH_API_KEY, else the file HEARTH_API_KEY_FILE (default ~/.hearth/api_key), created
// 0600 with a random key the first time a server starts beyond loopback without one. A loopback
// server needs no key unless HEARTH_API_KEY is set. HEARTH_NO_AUTH=1 turns the check off.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/status.h"
#include "server/http.h"

namespace hearth::server {

class ApiKey {
 public:
  // `key` must not be empty.
  explicit ApiKey(const std::string& key);
  // Whether an Authorization header value carries the key: "Bearer <key>", the scheme in any
  // case. Compared as SHA-256 digests with CRYPTO_memcmp, so the time taken does not depend on
  // how much of the key was right, nor on its length.
  bool matches(const std::string& authorization) const;

 private:
  std::array<uint8_t, 32> digest_{};
};

// Requests served without the key (the static UI and the probe).
bool is_public_request(const std::string& method, const std::string& path);

// The 401 for a request without the right key: Ollama's error shape, OpenAI's under /v1/,
// with `WWW-Authenticate: Bearer` and a message saying where the key comes from.
HttpResponse unauthorized_response(const std::string& path, bool key_sent);

// What decides the key, read from the environment by api_key_from_env (separate for tests).
struct AuthEnv {
  std::string api_key;   // HEARTH_API_KEY
  std::string key_file;  // HEARTH_API_KEY_FILE
  bool no_auth = false;  // HEARTH_NO_AUTH
  std::string home;      // the home directory, for the default key file
  static AuthEnv from_env();
};

struct AuthSetup {
  std::string key;       // empty: no key required
  std::string source;    // "HEARTH_API_KEY" or the key file's path
  bool created = false;  // the key file was written now
  std::string warning;   // to log (HEARTH_NO_AUTH in effect, a key file others can read)
};

// The server's key. `loopback_only`: the listener is reachable from this machine only. Errors:
// a key file that cannot be read or written, or is empty.
Result<AuthSetup> resolve_api_key(const AuthEnv& env, bool loopback_only);

// A new random key: 32 bytes from OpenSSL's generator, unpadded base64url (43 characters).
Result<std::string> generate_api_key();

}  // namespace hearth::server
