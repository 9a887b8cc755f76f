// Endpoint handlers (internal to src/server/). Each answers one routed request on its
// Exchange; none blocks its Asio thread on the engine.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "server/chat_output.h"
#include "server/http_session.h"
#include "server/prep_pool.h"

namespace kite::server {

boost::asio::awaitable<void> handle_chat_page(Exchange& ex);
boost::asio::awaitable<void> handle_health(Exchange& ex);
boost::asio::awaitable<void> handle_version(Exchange& ex);
boost::asio::awaitable<void> handle_metrics(Exchange& ex);
boost::asio::awaitable<void> handle_models(Exchange& ex);
boost::asio::awaitable<void> handle_tokenize(Exchange& ex);
boost::asio::awaitable<void> handle_detokenize(Exchange& ex);
boost::asio::awaitable<void> handle_completions(Exchange& ex);
boost::asio::awaitable<void> handle_chat_completions(Exchange& ex);
boost::asio::awaitable<void> handle_messages(Exchange& ex);
boost::asio::awaitable<void> handle_responses(Exchange& ex);
boost::asio::awaitable<void> handle_embeddings(Exchange& ex);

// The loaded model, or nullptr after answering 503 (loading / shutting down).
boost::asio::awaitable<std::shared_ptr<const LoadedModel>> require_model(Exchange& ex);

// The text a logprobs entry shows for a token (Engine::detokenize of that one token, special
// tokens kept), cached per request.
class TokenTextCache {
 public:
  explicit TokenTextCache(const Engine& engine) : engine_(engine) {}
  const std::string& operator()(int32_t id);

 private:
  const Engine& engine_;
  std::unordered_map<int32_t, std::string> cache_;
};

// Renders chat messages with the model's (or the request's) template, handling
// continue_final_message as transformers does. Errors name `messages`; a request's own
// template without config.trust_request_chat_template is refused (400, `chat_template`).
ApiResult<std::string> render_chat(const ServerConfig& config, const Engine& engine,
                                   const std::string& messages_json,
                                   const ChatTemplateOptions& options, bool continue_final);

// A chat request made ready for the engine: its output plan (reasoning, tool calls; sets the
// grammar of tool_choice required / named) and its engine request `request_id`: the prompt
// rendered with the chat template, the request's sampling params, add_special_tokens,
// priority and cache_salt. The chat, messages and responses endpoints all go through it.
struct PreparedChat {
  ChatOutputPlan plan;
  GenerateRequest request;
};
ApiResult<PreparedChat> prepare_chat(const LoadedModel& model, const ServerConfig& config,
                                     ChatCompletionRequest& req, std::string request_id);

// The front the chat-shaped endpoints share (chat completions, Anthropic messages, responses):
// on the preparation pool (prep_pool.h), `parse()` reads the body into `parsed` and prepare_chat
// readies the chat request `chat_of(parsed)` into `prepared`. False once the request has been
// answered: the client left, or either step failed (its error is sent here).
template <class Request, class Parse, class ChatOf>
boost::asio::awaitable<bool> parse_and_prepare_chat(Exchange& ex, const LoadedModel& model,
                                                    const std::string& id, Parse parse,
                                                    ChatOf chat_of,
                                                    std::optional<ApiResult<Request>>& parsed,
                                                    std::optional<ApiResult<PreparedChat>>& prepared) {
  if (!co_await run_prepared(ex, [&](const PrepToken&) {
        parsed.emplace(parse());
        if (parsed->ok()) {
          prepared.emplace(prepare_chat(model, ex.state().config(), chat_of(parsed->value()), id));
        }
      })) {
    co_return false;
  }
  if (!parsed->ok()) {
    co_await ex.send_error(parsed->error());
    co_return false;
  }
  if (!prepared->ok()) {
    co_await ex.send_error(prepared->error());
    co_return false;
  }
  co_return true;
}

}  // namespace kite::server
