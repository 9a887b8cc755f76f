// Where `kite chat` gets its replies: an Engine in this process (the model's chat template), or
// any OpenAI-compatible server (/v1/chat/completions with stream: true).
#pragma once

#include <atomic>
#include <boost/json.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "kite/engine.h"
#include "kite/status.h"

namespace kite::cli {

class ChatBackend {
 public:
  virtual ~ChatBackend() = default;
  // Streams the reply to `messages` through `on_text` and returns it in *reply. When `stop`
  // turns true the reply ends early: kAborted, with the text so far in *reply.
  virtual Status reply(const boost::json::array& messages,
                       const std::function<void(std::string_view)>& on_text,
                       const std::atomic<bool>& stop, std::string* reply) = 0;
  virtual std::string description() const = 0;
};

// The prompt of each turn is logged at debug level ("chat prompt: <JSON string>").
std::unique_ptr<ChatBackend> make_engine_chat_backend(std::shared_ptr<Engine> engine,
                                                      SamplingParams params,
                                                      std::optional<std::string> chat_template);

struct HttpChatOptions {
  std::string url;               // "http://host:8000", ".../v1" or ".../v1/chat/completions"
  std::string model;             // "" = the first of GET /v1/models
  std::string api_key;           // "" = $OPENAI_API_KEY (if set)
  boost::json::object sampling;  // extra request fields (temperature, max_tokens, ...)
};
// Checks the server (GET /v1/models) before the first turn.
Result<std::unique_ptr<ChatBackend>> make_http_chat_backend(HttpChatOptions options);

}  // namespace kite::cli
