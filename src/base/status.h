// base/status.h — the error type every fallible function returns.
//
// User input (model files, requests, templates) never aborts the process: it comes back as a
// Status with a code and a message in the "[layer] what; which thing; expected vs actual" style.
// Exceptions never cross layer boundaries.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace hearth {

// Each code has one HTTP status (server/errors.h); callers branch on codes, never on messages.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // bad input from the caller (400)
  kNotFound,           // unknown model, blob, file (404)
  kCorrupt,            // a file or blob is malformed (500: the store's content is wrong)
  kUnsupported,        // valid but not handled: architecture, type, version (400)
  kResourceExhausted,  // not enough memory for this request (500, as Ollama answers)
  kUnavailable,        // busy, queue full, shutting down: retry later (503)
  kCancelled,          // the client went away (499)
  kInternal,           // a bug (500)
  kPermissionDenied,   // refused by policy: origin, host, path (403)
  kTooLarge,           // a request or upload over its limit (413)
  kTimeout,            // the client stalled (408)
  kNoSpace,            // the disk is full (507)
  kIo,                 // a file operation failed (500)
};

const char* status_code_name(StatusCode c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string msg) : code_(code), msg_(std::move(msg)) {}
  static Status ok() { return {}; }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return msg_; }
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string msg_;
};

inline Status invalid_argument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status not_found(std::string m) {
  return {StatusCode::kNotFound, std::move(m)};
}
inline Status corrupt(std::string m) {
  return {StatusCode::kCorrupt, std::move(m)};
}
inline Status unsupported(std::string m) {
  return {StatusCode::kUnsupported, std::move(m)};
}
inline Status internal_error(std::string m) {
  return {StatusCode::kInternal, std::move(m)};
}

// Result<T>: a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}
  Result(Status s) : v_(std::move(s)) { assert(!std::get<Status>(v_).is_ok()); }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status ok_status;
    return is_ok() ? ok_status : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace hearth

// Propagate a non-ok Status from an expression returning Status.
#define HEARTH_RETURN_IF_ERROR(expr) \
  do {                               \
    ::hearth::Status _st = (expr);   \
    if (!_st.is_ok()) return _st;    \
  } while (0)

#define HEARTH_CONCAT_INNER(a, b) a##b
#define HEARTH_CONCAT(a, b) HEARTH_CONCAT_INNER(a, b)
// Assign the value of a Result<T> expression to `lhs`, or return its Status.
#define HEARTH_ASSIGN_OR_RETURN(lhs, expr)                                                     \
  auto HEARTH_CONCAT(_res_, __LINE__) = (expr);                                                \
  if (!HEARTH_CONCAT(_res_, __LINE__).is_ok()) return HEARTH_CONCAT(_res_, __LINE__).status(); \
  lhs = std::move(HEARTH_CONCAT(_res_, __LINE__)).value()

// Invariants only; never reachable from user input.
#define HEARTH_ASSERT(cond) assert(cond)
