#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "registry/key.h"
#include "server/errors.h"
#include "store/store.h"

namespace hearth::server {
namespace {

std::array<uint8_t, 32> sha256(const std::string& s) {
  std::array<uint8_t, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

bool env_true(const char* k) {
  const char* v = std::getenv(k);
  return v && *v && std::string(v) != "0" && std::string(v) != "false";
}

}  // namespace

ApiKey::ApiKey(const std::string& key) : digest_(sha256(key)) {}

bool ApiKey::matches(const std::string& authorization) const {
  // RFC 9110 §11.1: the scheme is case-insensitive, then one or more spaces, then the token.
  constexpr size_t kScheme = 6;  // "Bearer"
  if (authorization.size() <= kScheme + 1) return false;
  for (size_t i = 0; i < kScheme; ++i)
    if (std::tolower(uint8_t(authorization[i])) != "bearer"[i]) return false;
  size_t p = kScheme;
  if (authorization[p] != ' ') return false;
  while (p < authorization.size() && authorization[p] == ' ') ++p;
  const std::string token = trim(authorization.substr(p));
  if (token.empty()) return false;
  // Digests of both sides: equal length whatever was sent, so neither the comparison's time nor
  // a length check tells an attacker anything about the key.
  const auto got = sha256(token);
  return CRYPTO_memcmp(got.data(), digest_.data(), digest_.size()) == 0;
}

bool is_public_request(const std::string& method, const std::string& path) {
  if (method != "GET" && method != "HEAD") return false;
  return path == "/" || path.rfind("/ui/assets/", 0) == 0;
}

HttpResponse unauthorized_response(const std::string& path, bool key_sent) {
  // The key file's real path is not named: it would tell anyone on the network the account's
  // home directory.
  const std::string msg =
      std::string(key_sent ? "invalid API key" : "this server requires an API key") +
      ": send the header 'Authorization: Bearer <key>' (the hearth CLI sends $HEARTH_API_KEY). "
      "The key is the server's HEARTH_API_KEY, or else the contents of its key file "
      "(~/.hearth/api_key by default; the server logs the path when it starts)";
  HttpResponse r = path.rfind("/v1/", 0) == 0 ? openai_error(401, msg) : json_error(401, msg);
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

AuthEnv AuthEnv::from_env() {
  AuthEnv e;
  if (const char* k = std::getenv("HEARTH_API_KEY")) e.api_key = k;
  if (const char* f = std::getenv("HEARTH_API_KEY_FILE")) e.key_file = f;
  e.no_auth = env_true("HEARTH_NO_AUTH");
  e.home = registry::home_dir();
  return e;
}

Result<std::string> generate_api_key() {
  std::string bytes(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), int(bytes.size())) != 1)
    return internal_error("OpenSSL could not generate random bytes for an API key");
  return registry::base64url_raw(bytes);
}

Result<AuthSetup> resolve_api_key(const AuthEnv& env, bool loopback_only) {
  AuthSetup out;
  const std::string env_key = trim(env.api_key);
  if (env.no_auth) {
    if (!loopback_only || !env_key.empty())
      out.warning =
          "HEARTH_NO_AUTH is set: the API needs no key, anyone who can reach this server may use "
          "it";
    return out;
  }
  if (!env_key.empty()) {
    out.key = env_key;
    out.source = "HEARTH_API_KEY";
    return out;
  }
  if (loopback_only) return out;
  out.source = !env.key_file.empty() ? env.key_file : env.home + "/.hearth/api_key";
  struct stat st {};
  if (::stat(out.source.c_str(), &st) != 0) {
    if (errno != ENOENT) return store::io_error("cannot read the API key file", out.source, errno);
    HEARTH_ASSIGN_OR_RETURN(std::string key, generate_api_key());
    HEARTH_ASSIGN_OR_RETURN(bool created, registry::create_exclusive(out.source, key + "\n"));
    if (created) {  // else another server wrote one meanwhile: read that
      out.key = key;
      out.created = true;
      return out;
    }
    if (::stat(out.source.c_str(), &st) != 0)
      return store::io_error("cannot read the API key file", out.source, errno);
  }
  std::ifstream in(out.source, std::ios::binary);
  if (!in || !S_ISREG(st.st_mode))
    return Status(StatusCode::kIo, "cannot read the API key file '" + out.source + "'");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  out.key = trim(text);
  if (out.key.empty())
    return invalid_argument("the API key file '" + out.source +
                            "' is empty: put a key in it, or remove it to have one generated");
  if (st.st_mode & 077)
    out.warning = "the API key file '" + out.source +
                  "' can be read by other users of this machine (chmod 600 it)";
  return out;
}

}  // namespace hearth::server
