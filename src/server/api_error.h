// ApiError: an OpenAI-style error response (`{"error": {"message", "type", "param", "code"}}`)
// with its HTTP status. Every user-causable problem the server finds becomes one of these.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "kite/status.h"

namespace kite::server {

struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";  // OpenAI's error types
  std::string param;  // the offending request field ("temperature", "messages[1].role"); "" = null
  std::string code;   // machine-readable ("invalid_value", "model_not_found"); "" = null
};

// The JSON body `{"error": {...}}` (param/code are null when empty).
std::string error_body(const ApiError& e);

// The same error in Anthropic's shape, for /v1/messages:
// `{"type": "error", "error": {"type": "invalid_request_error", "message": ...}}`, the type
// following the HTTP status as Anthropic's API does (400 invalid_request_error, 401
// authentication_error, 403 permission_error, 404 not_found_error, 413 request_too_large,
// 429 rate_limit_error, 503 overloaded_error, other 5xx api_error).
std::string anthropic_error_body(const ApiError& e);
// Anthropic's error type for an HTTP status.
std::string anthropic_error_type(int http_status);

// Constructors for the common cases (type and HTTP status follow OpenAI's conventions).
ApiError invalid_value(std::string param, std::string message);  // 400 invalid_value
ApiError invalid_type(std::string param, std::string message);   // 400 invalid_type
ApiError missing_field(std::string param);                       // 400 missing_required_parameter
ApiError unknown_field(std::string param);                       // 400 unknown_parameter
ApiError unsupported(std::string param, std::string message);    // 400 unsupported_value
ApiError model_not_found(std::string_view model);                // 404 model_not_found
ApiError not_found_path(std::string_view path);                  // 404 not_found
ApiError method_not_allowed(std::string_view method, std::string_view path);  // 405
ApiError body_too_large(size_t limit_bytes);       // 413 request_too_large
ApiError unauthorized();                           // 401 invalid_api_key (Bearer or x-api-key)
ApiError unavailable_error(std::string message);   // 503 service_unavailable
ApiError internal_error_api(std::string message);  // 500 internal_error

// Maps an engine Status (add_request, tokenize, apply_chat_template) to an ApiError.
// `param` names the request field the failure is attributed to ("prompt", "messages").
ApiError api_error_from_status(const Status& status, std::string param);

// T or an ApiError (the request parsers' result).
template <typename T>
class [[nodiscard]] ApiResult {
 public:
  ApiResult(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  ApiResult(ApiError error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return std::holds_alternative<T>(v_); }
  // REQUIRES: ok() / !ok().
  T& value() { return std::get<T>(v_); }
  const T& value() const { return std::get<T>(v_); }
  const ApiError& error() const { return std::get<ApiError>(v_); }

 private:
  std::variant<T, ApiError> v_;
};

}  // namespace kite::server
