// server/beast_request.h — a parsed Boost.Beast request head turned into the server's
// HttpRequest. Shared by the HTTP layer and the fuzz harness that replays its parsing, so both
// build requests the same way.
#pragma once

#include <cctype>
#include <cstdint>
#include <string>

#include "server/http.h"

namespace hearth::server {

// Method, path and query split at '?', headers with lower-case names; no body.
template <class Msg>
HttpRequest to_request(const Msg& m) {
  HttpRequest r;
  r.method = std::string(m.method_string());
  const std::string target(m.target());
  const size_t q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) r.query = target.substr(q + 1);
  for (const auto& f : m) {
    std::string k(f.name_string());
    for (auto& c : k) c = char(std::tolower(uint8_t(c)));
    r.headers[k] = std::string(f.value());
  }
  return r;
}

}  // namespace hearth::server
