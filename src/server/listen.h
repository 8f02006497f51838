// server/listen.h — the listen address from HEARTH_HOST or OLLAMA_HOST, parsed as Ollama does:
// "host", "host:port", ":port", "scheme://host:port"; default 127.0.0.1:11434.
#pragma once

#include <string>

#include "base/status.h"

namespace hearth::server {

struct ListenAddress {
  std::string host = "127.0.0.1";
  int port = 11434;
};

Result<ListenAddress> parse_listen_address(const std::string& s);
// HEARTH_HOST, else OLLAMA_HOST, else the default.
Result<ListenAddress> listen_address_from_env();
// 127.0.0.0/8, ::1, "localhost": the listener is reachable from this machine only.
bool is_loopback_host(const std::string& host);

}  // namespace hearth::server
