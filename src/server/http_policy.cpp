#include "server/http_policy.h"

#include <algorithm>
#include <cctype>

namespace kite::server {

bool path_requires_auth(std::string_view path) { return path == "/v1" || path.starts_with("/v1/"); }

namespace {

// Constant time in the key's length: every byte is compared whatever matched before.
bool key_equals(std::string_view token, std::string_view api_key) {
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  unsigned diff = token.size() == api_key.size() ? 0u : 1u;
  for (size_t i = 0; i < api_key.size(); ++i) {
    unsigned char a = i < token.size() ? static_cast<unsigned char>(token[i]) : 0;
    diff |= a ^ static_cast<unsigned char>(api_key[i]);
  }
  return diff == 0 && !api_key.empty();
}

}  // namespace

bool bearer_matches(std::string_view authorization, std::string_view api_key) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  return key_equals(authorization.substr(kScheme.size()), api_key);
}

bool api_key_matches(std::string_view authorization, std::string_view x_api_key,
                     std::string_view api_key) {
  if (bearer_matches(authorization, api_key)) return true;
  return !x_api_key.empty() && key_equals(x_api_key, api_key);
}

std::string CorsPolicy::allow_origin(std::string_view origin) const {
  if (origin.empty() || allowed_origins.empty()) return "";
  for (const std::string& o : allowed_origins) {
    if (o == "*") return allow_credentials ? std::string(origin) : "*";
    if (o == origin) return std::string(origin);
  }
  return "";
}

}  // namespace kite::server
