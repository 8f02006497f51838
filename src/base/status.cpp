#include "base/status.h"

namespace hearth {

const char* status_code_name(StatusCode c) {
  switch (c) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kInvalidArgument:
      return "invalid argument";
    case StatusCode::kNotFound:
      return "not found";
    case StatusCode::kCorrupt:
      return "corrupt";
    case StatusCode::kUnsupported:
      return "unsupported";
    case StatusCode::kResourceExhausted:
      return "resource exhausted";
    case StatusCode::kUnavailable:
      return "unavailable";
    case StatusCode::kCancelled:
      return "cancelled";
    case StatusCode::kInternal:
      return "internal";
    case StatusCode::kPermissionDenied:
      return "permission denied";
    case StatusCode::kTooLarge:
      return "too large";
    case StatusCode::kTimeout:
      return "timeout";
    case StatusCode::kNoSpace:
      return "no space";
    case StatusCode::kIo:
      return "i/o error";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return msg_;
}

}  // namespace hearth
