#include "server/http_policy.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace kite::server {

bool path_requires_auth(std::string_view path) {
  return path == "/v1" || path.starts_with("/v1/") || path == "/tokenize" || path == "/detokenize";
}

int framing_error_status(std::string_view transfer_encoding, bool has_transfer_encoding,
                         bool has_content_length) {
  if (!has_transfer_encoding) return 0;
  if (has_content_length) return 400;
  int num_chunked = 0;
  bool chunked_last = false;
  bool other = false;
  bool empty = true;
  size_t start = 0;
  while (start <= transfer_encoding.size()) {
    size_t comma = transfer_encoding.find(',', start);
    if (comma == std::string_view::npos) comma = transfer_encoding.size();
    std::string_view coding = transfer_encoding.substr(start, comma - start);
    while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t')) {
      coding.remove_prefix(1);
    }
    while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t')) {
      coding.remove_suffix(1);
    }
    if (!coding.empty()) {
      empty = false;
      std::string lower(coding);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      chunked_last = lower == "chunked";
      if (chunked_last) {
        ++num_chunked;
      } else {
        other = true;
      }
    }
    start = comma + 1;
  }
  if (empty || num_chunked != 1 || !chunked_last) return other && num_chunked == 0 ? 501 : 400;
  return other ? 501 : 0;
}

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
