// server/api_models.cpp — model management: /api/show, /api/create, /v1/models.
#include "server/api.h"
#include "server/api_util.h"

namespace hearth::server {

void Api::show(const HttpRequest&, ResponderP res) {
  res->send(json_error(501, "/api/show is not implemented yet"));
}

void Api::create(const HttpRequest&, ResponderP res) {
  res->send(json_error(501, "/api/create is not implemented yet"));
}

void Api::v1_models(const HttpRequest&, ResponderP res) {
  res->send(json_error(501, "/v1/models is not implemented yet"));
}

}  // namespace hearth::server
