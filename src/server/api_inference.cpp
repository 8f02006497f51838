// server/api_inference.cpp — inference: /api/generate, /api/chat, /api/ps, /api/embed and the
// OpenAI /v1/chat/completions and /v1/completions, on top of the scheduler.
#include "server/api.h"
#include "server/api_util.h"

namespace hearth::server {

void Api::generate(const HttpRequest&, ResponderP res) {
  res->send(json_error(501, "/api/generate is not implemented yet"));
}
void Api::chat(const HttpRequest&, ResponderP res) {
  res->send(json_error(501, "/api/chat is not implemented yet"));
}
void Api::ps(ResponderP res) {
  res->send(json_ok({{"models", json::array()}}));
}
void Api::embed(const HttpRequest&, ResponderP res) {
  res->send(json_error(501, "/api/embed is not implemented yet"));
}
void Api::v1_chat(const HttpRequest&, ResponderP res) {
  res->send(json_error(501, "/v1/chat/completions is not implemented yet"));
}
void Api::v1_completions(const HttpRequest&, ResponderP res) {
  res->send(json_error(501, "/v1/completions is not implemented yet"));
}

}  // namespace hearth::server
