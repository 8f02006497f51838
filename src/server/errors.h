// server/errors.h — the one path from an error to an HTTP answer.
//
// Every layer below the server returns a typed Status; here, and only here, its code becomes an
// HTTP status and its message a body shaped as the client's API expects: Ollama's
// {"error": "..."} or OpenAI's {"error": {"message", "type", "param", "code"}}. Exception text
// never reaches a client: the HTTP layer logs it and answers a generic 500.
#pragma once

#include <string>

#include "base/status.h"
#include "server/http.h"

namespace hearth::server {

enum class ApiFlavor { kOllama, kOpenAI };

// 400 InvalidArgument/Unsupported, 403 PermissionDenied, 404 NotFound, 408 Timeout,
// 413 TooLarge, 499 Cancelled, 503 Unavailable, 507 NoSpace, 500 everything else.
int http_status(StatusCode code);

// {"error": message} with a status code, as Ollama shapes errors.
HttpResponse json_error(int status, const std::string& message);
// OpenAI's error object; `type` follows the status as Ollama's OpenAI layer names it.
HttpResponse openai_error(int status, const std::string& message);

// The answer for a failed Status.
HttpResponse error_response(const Status& s, ApiFlavor flavor = ApiFlavor::kOllama);

}  // namespace hearth::server
