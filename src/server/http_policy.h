// Access policy of the HTTP API: API-key authentication and CORS.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kite::server {

// True when `path` is under /v1 (the OpenAI API) or is /tokenize or /detokenize (they run the
// tokenizer and the chat template, so they cost what the API costs), which --api-key protects.
// /health, /metrics, /version and the chat page stay open (probes and scrapers need no key).
bool path_requires_auth(std::string_view path);

// True when the Authorization header carries "Bearer <api_key>" (constant-time comparison of the
// key; the scheme is case-insensitive).
bool bearer_matches(std::string_view authorization, std::string_view api_key);

// Request framing by RFC 9112 section 6: the HTTP status that refuses a request's
// Transfer-Encoding / Content-Length pair (then the connection must close), or 0 when it is
// fine. `transfer_encoding` is the header's value ("" when absent). 501: a coding other than
// chunked (gzip, identity, ...); 400: chunked not last or twice, or Transfer-Encoding together
// with Content-Length (a request-smuggling pattern behind proxies).
int framing_error_status(std::string_view transfer_encoding, bool has_transfer_encoding,
                         bool has_content_length);

// True when the request carries the key as "Authorization: Bearer <key>" or as Anthropic's
// "x-api-key: <key>" (constant-time comparison).
bool api_key_matches(std::string_view authorization, std::string_view x_api_key,
                     std::string_view api_key);

struct CorsPolicy {
  std::vector<std::string> allowed_origins;  // exact origins, or "*" for any; empty: no CORS
  bool allow_credentials = false;

  // The Access-Control-Allow-Origin value for a request from `origin`, or "" when that origin
  // is not allowed (or the request has no Origin header).
  std::string allow_origin(std::string_view origin) const;
};

// Methods and headers a preflight may ask for.
inline constexpr std::string_view kCorsAllowMethods = "GET, POST, OPTIONS";
inline constexpr std::string_view kCorsAllowHeaders =
    "Authorization, Content-Type, X-Api-Key, Anthropic-Version";
inline constexpr std::string_view kCorsMaxAge = "600";

}  // namespace kite::server
