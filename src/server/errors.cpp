#include "server/errors.h"

#include <nlohmann/json.hpp>

namespace hearth::server {

int http_status(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kUnsupported:
      return 400;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kTimeout:
      return 408;
    case StatusCode::kTooLarge:
      return 413;
    case StatusCode::kCancelled:
      return 499;  // nginx's "client closed request", as Ollama uses it
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kNoSpace:
      return 507;
    case StatusCode::kCorrupt:
    case StatusCode::kResourceExhausted:  // Ollama: 500 "model requires more system memory"
    case StatusCode::kInternal:
    case StatusCode::kIo:
      return 500;
  }
  return 500;
}

HttpResponse json_error(int status, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = nlohmann::json{{"error", message}}.dump(-1, ' ', false,
                                                   nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse openai_error(int status, const std::string& message) {
  const char* type = status == 404  ? "not_found_error"
                     : status < 500 ? "invalid_request_error"
                                    : "api_error";
  HttpResponse r;
  r.status = status;
  r.body =
      nlohmann::json{
          {"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}}}}
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse error_response(const Status& s, ApiFlavor flavor) {
  const int status = http_status(s.code());
  return flavor == ApiFlavor::kOpenAI ? openai_error(status, s.message())
                                      : json_error(status, s.message());
}

}  // namespace hearth::server
