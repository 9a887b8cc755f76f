#include "server/router.h"

#include <array>

namespace kite::server {

namespace {

struct RouteEntry {
  std::string_view path;
  std::string_view method;
  Route route;
};

constexpr std::array<RouteEntry, 13> kRoutes = {{
    {"/", "GET", Route::kChatPage},
    {"/health", "GET", Route::kHealth},
    {"/version", "GET", Route::kVersion},
    {"/metrics", "GET", Route::kMetrics},
    {"/v1/models", "GET", Route::kModels},
    {"/v1/completions", "POST", Route::kCompletions},
    {"/v1/chat/completions", "POST", Route::kChatCompletions},
    {"/v1/messages", "POST", Route::kMessages},
    {"/v1/responses", "POST", Route::kResponses},
    {"/v1/embeddings", "POST", Route::kEmbeddings},
    {"/tokenize", "POST", Route::kTokenize},
    {"/detokenize", "POST", Route::kDetokenize},
    {"/v1/models/{id}", "GET", Route::kModel},
}};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a path segment; invalid escapes stay as they are.
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]);
      int lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

RouteMatch match_route(std::string_view method, std::string_view target) {
  RouteMatch m;
  size_t q = target.find_first_of("?#");
  m.path = target.substr(0, q);
  m.label = "other";
  m.head = method == "HEAD";
  std::string_view effective = m.head ? std::string_view("GET") : method;

  const RouteEntry* entry = nullptr;
  constexpr std::string_view kModelsPrefix = "/v1/models/";
  if (m.path.starts_with(kModelsPrefix) && m.path.size() > kModelsPrefix.size()) {
    entry = &kRoutes.back();
    m.model_id = percent_decode(m.path.substr(kModelsPrefix.size()));
  } else {
    for (const RouteEntry& e : kRoutes) {
      if (e.path == m.path) {
        entry = &e;
        break;
      }
    }
  }
  if (!entry) {
    m.status = 404;
    return m;
  }
  m.label = entry->path;
  m.allow = entry->method == "GET" ? "GET, HEAD, OPTIONS" : "POST, OPTIONS";
  if (method == "OPTIONS") {
    m.route = Route::kPreflight;
  } else if (effective == entry->method) {
    m.route = entry->route;
  } else {
    m.status = 405;
  }
  return m;
}

}  // namespace kite::server
