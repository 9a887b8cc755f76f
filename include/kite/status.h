// Status and Result<T>: the error values that cross kite's module and API boundaries.
//
// Anything a user can cause (bad request, bad model file, out of memory, overload) is reported
// as a Status, never as an exception or a crash. Invariants inside a module use KITE_CHECK.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace kite {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // the caller's input is wrong (HTTP 400)
  kNotFound,           // a named thing does not exist (HTTP 404)
  kOutOfRange,         // a value past a limit, e.g. prompt longer than max_model_len (HTTP 400)
  kFailedPrecondition, // the system is not in a state to do this (HTTP 400/409)
  kResourceExhausted,  // memory, KV blocks or queue slots ran out (HTTP 503/507)
  kUnavailable,        // try again later: overload, shutting down (HTTP 503)
  kAborted,            // the request was aborted (client disconnect, shutdown)
  kDataLoss,           // a file is truncated or corrupt
  kUnimplemented,      // a known feature this build does not support
  kInternal,           // a bug in kite
};

// Returns "invalid_argument", "not_found", ... (stable; used in logs and error payloads).
std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: <message>", or "ok".
  std::string to_string() const;

  // Prefixes the message with context ("loading config.json: " + message). No-op when OK.
  Status with_context(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status ok_status() { return Status(); }
inline Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status out_of_range(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status failed_precondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status resource_exhausted(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
inline Status data_loss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Result<T>: a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<T, Status>, "use Status directly");

 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) v_ = Status(StatusCode::kInternal, "Result built from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // The error; OK when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const& { return ok() ? std::get<T>(v_) : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace kite

#define KITE_STATUS_CONCAT_INNER_(a, b) a##b
#define KITE_STATUS_CONCAT_(a, b) KITE_STATUS_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` (a Status) is not OK.
#define KITE_RETURN_IF_ERROR(expr)                  \
  do {                                              \
    ::kite::Status kite_status_tmp_ = (expr);       \
    if (!kite_status_tmp_.ok()) return kite_status_tmp_; \
  } while (0)

// `KITE_ASSIGN_OR_RETURN(auto x, f());` declares x from a Result or returns its Status.
#define KITE_ASSIGN_OR_RETURN(lhs, expr) \
  KITE_ASSIGN_OR_RETURN_IMPL_(KITE_STATUS_CONCAT_(kite_result_, __LINE__), lhs, expr)
#define KITE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
