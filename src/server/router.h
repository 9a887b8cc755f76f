// The route table of `kite serve`: (method, request target) -> the endpoint, or why not
// (404 unknown path, 405 known path with another method). Pure; the query string is ignored.
#pragma once

#include <string>
#include <string_view>

namespace kite::server {

enum class Route {
  kNone,             // no route: see RouteMatch::status
  kChatPage,         // GET /
  kHealth,           // GET /health
  kVersion,          // GET /version
  kMetrics,          // GET /metrics
  kModels,           // GET /v1/models
  kModel,            // GET /v1/models/{id}
  kCompletions,      // POST /v1/completions
  kChatCompletions,  // POST /v1/chat/completions
  kMessages,         // POST /v1/messages (Anthropic)
  kResponses,        // POST /v1/responses
  kEmbeddings,       // POST /v1/embeddings
  kTokenize,         // POST /tokenize
  kDetokenize,       // POST /detokenize
  kPreflight,        // OPTIONS on any known path (CORS)
};

struct RouteMatch {
  Route route = Route::kNone;
  int status = 200;        // 404 or 405 when route == kNone
  std::string_view path;   // the target without query string
  std::string_view label;  // bounded metrics label: the route pattern, or "other"
  std::string_view allow;  // methods the path accepts (for Allow / 405)
  std::string model_id;    // kModel: the {id} (percent-decoded)
  bool head = false;       // a HEAD request (answered as GET, without a body)
};

RouteMatch match_route(std::string_view method, std::string_view target);

}  // namespace kite::server
