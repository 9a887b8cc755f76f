#include "server/api_error.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "server/openai_response.h"

namespace kite::server {

namespace bj = boost::json;

std::string error_body(const ApiError& e) {
  bj::object err;
  // Messages and params quote the request (a path, a key), which may be any bytes: the body
  // stays valid UTF-8 (invalid sequences become U+FFFD).
  err["message"] = sanitize_utf8(e.message);
  err["type"] = e.type;
  err["param"] = e.param.empty() ? bj::value(nullptr) : bj::value(sanitize_utf8(e.param));
  err["code"] = e.code.empty() ? bj::value(nullptr) : bj::value(e.code);
  bj::object body;
  body["error"] = std::move(err);
  return bj::serialize(body);
}

std::string anthropic_error_type(int http_status) {
  switch (http_status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
      return "overloaded_error";
    default:
      return http_status >= 500 ? "api_error" : "invalid_request_error";
  }
}

std::string anthropic_error_body(const ApiError& e) {
  bj::object err;
  err["type"] = anthropic_error_type(e.http_status);
  err["message"] = e.message;
  bj::object body;
  body["type"] = "error";
  body["error"] = std::move(err);
  return bj::serialize(body);
}

ApiError invalid_value(std::string param, std::string message) {
  return {400, std::move(message), "invalid_request_error", std::move(param), "invalid_value"};
}

ApiError invalid_type(std::string param, std::string message) {
  return {400, std::move(message), "invalid_request_error", std::move(param), "invalid_type"};
}

ApiError missing_field(std::string param) {
  std::string msg = fmt::format("Missing required parameter: '{}'.", param);
  return {400, std::move(msg), "invalid_request_error", std::move(param),
          "missing_required_parameter"};
}

ApiError unknown_field(std::string param) {
  std::string msg = fmt::format("Unrecognized request argument supplied: {}", param);
  return {400, std::move(msg), "invalid_request_error", std::move(param), "unknown_parameter"};
}

ApiError unsupported(std::string param, std::string message) {
  return {400, std::move(message), "invalid_request_error", std::move(param), "unsupported_value"};
}

ApiError model_not_found(std::string_view model) {
  return {404, fmt::format("The model `{}` does not exist.", model), "invalid_request_error",
          "model", "model_not_found"};
}

ApiError not_found_path(std::string_view path) {
  return {404, fmt::format("No route for {}", path), "invalid_request_error", "", "not_found"};
}

ApiError method_not_allowed(std::string_view method, std::string_view path) {
  return {405, fmt::format("Method {} is not allowed for {}", method, path),
          "invalid_request_error", "", "method_not_allowed"};
}

ApiError body_too_large(size_t limit_bytes) {
  return {413, fmt::format("Request body is larger than the limit of {} bytes", limit_bytes),
          "invalid_request_error", "", "request_too_large"};
}

ApiError unauthorized() {
  return {401,
          "Incorrect or missing API key: send it as 'Authorization: Bearer <key>' or "
          "'x-api-key: <key>'",
          "invalid_request_error", "", "invalid_api_key"};
}

ApiError unavailable_error(std::string message) {
  return {503, std::move(message), "server_error", "", "service_unavailable"};
}

ApiError internal_error_api(std::string message) {
  return {500, std::move(message), "server_error", "", "internal_error"};
}

ApiError api_error_from_status(const Status& status, std::string param) {
  switch (status.code()) {
    case StatusCode::kOk:
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
      return internal_error_api(status.message());
    case StatusCode::kInvalidArgument:
      return invalid_value(std::move(param), status.message());
    case StatusCode::kOutOfRange:
      return {400, status.message(), "invalid_request_error", std::move(param),
              "context_length_exceeded"};
    case StatusCode::kNotFound:
      return {404, status.message(), "invalid_request_error", std::move(param), "not_found"};
    case StatusCode::kFailedPrecondition:
      return {400, status.message(), "invalid_request_error", std::move(param),
              "failed_precondition"};
    case StatusCode::kUnimplemented:
      return unsupported(std::move(param), status.message());
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable:
      return unavailable_error(status.message());
    case StatusCode::kAborted:
      return {503, status.message(), "server_error", "", "aborted"};
  }
  return internal_error_api(status.message());
}

}  // namespace kite::server
