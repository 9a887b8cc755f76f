// GET /, /health, /version, /metrics, /v1/models[/{id}]; POST /tokenize, /detokenize; dispatch.
#include <fmt/format.h>

#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "core/version.h"
#include "server/chat_page.h"
#include "server/handlers.h"
#include "server/openai_response.h"
#include "server/prep_pool.h"

namespace kite::server {

namespace asio = boost::asio;
namespace bj = boost::json;
using asio::awaitable;

namespace {

constexpr const char* kJson = "application/json";

awaitable<void> send_json(Exchange& ex, int status, const bj::value& v) {
  std::string body = bj::serialize(v);
  co_await ex.send_body(status, kJson, body);
}

bj::object model_card(const LoadedModel& m, const std::string& name, const ServerConfig& cfg) {
  bj::object card;
  card["id"] = name;
  card["object"] = "model";
  card["created"] = m.created;
  card["owned_by"] = "kite";
  card["root"] = cfg.model_path.empty() ? m.served_model_names[0] : cfg.model_path;
  card["parent"] = nullptr;
  card["max_model_len"] = m.info.max_model_len;
  card["permission"] = bj::array();
  // kite extension: lets the chat page pick chat or plain completion.
  card["has_chat_template"] = m.info.has_chat_template;
  return card;
}

}  // namespace

const std::string& TokenTextCache::operator()(int32_t id) {
  auto it = cache_.find(id);
  if (it != cache_.end()) return it->second;
  Result<std::string> text = engine_.detokenize({id}, /*skip_special_tokens=*/false);
  return cache_.emplace(id, text.ok() ? sanitize_utf8(std::move(*text)) : std::string())
      .first->second;
}

ApiResult<std::string> render_chat(const ServerConfig& config, const Engine& engine,
                                   const std::string& messages_json,
                                   const ChatTemplateOptions& options, bool continue_final) {
  if (options.chat_template && !config.trust_request_chat_template) {
    return invalid_value("chat_template",
                         "a chat_template in the request is refused: the server runs only its "
                         "model's template unless started with --trust-request-chat-template");
  }
  std::string messages = messages_json;
  if (continue_final) {
    ApiResult<std::string> tagged = tag_final_message(messages_json);
    if (!tagged.ok()) return tagged.error();
    messages = std::move(tagged.value());
  }
  Result<std::string> rendered = engine.apply_chat_template(messages, options);
  if (!rendered.ok()) {
    // A tripped template guard is kOutOfRange, which is no context-length error here.
    if (rendered.status().code() == StatusCode::kOutOfRange) {
      return invalid_value("messages", rendered.status().message());
    }
    return api_error_from_status(rendered.status(), "messages");
  }
  if (!continue_final) return std::move(*rendered);
  return cut_at_continue_tag(*rendered);
}

awaitable<std::shared_ptr<const LoadedModel>> require_model(Exchange& ex) {
  ServerState& state = ex.state();
  if (state.draining()) {
    co_await ex.send_error(unavailable_error("The server is shutting down"));
    co_return nullptr;
  }
  std::shared_ptr<const LoadedModel> model = state.model();
  if (!model) {
    co_await ex.send_error(
        unavailable_error("The model is still loading; retry when GET /health returns 200"));
    co_return nullptr;
  }
  co_return model;
}

awaitable<void> handle_chat_page(Exchange& ex) {
  std::string page(chat_page_html());
  co_await ex.send_body(200, "text/html; charset=utf-8", page);
}

awaitable<void> handle_health(Exchange& ex) {
  ServerState& state = ex.state();
  if (state.draining()) {
    co_await ex.send_error(unavailable_error("The server is shutting down"));
  } else if (!state.model()) {
    co_await ex.send_error(unavailable_error("The model is still loading"));
  } else {
    std::string body = "{}";
    co_await ex.send_body(200, kJson, body);
  }
}

awaitable<void> handle_version(Exchange& ex) {
  bj::object v;
  v["version"] = KITE_VERSION_STRING;
  v["commit"] = KITE_GIT_COMMIT;
  co_await send_json(ex, 200, v);
}

awaitable<void> handle_metrics(Exchange& ex) {
  ServerState& state = ex.state();
  std::shared_ptr<const LoadedModel> model = state.model();
  std::string text;
  if (model) {
    EngineStats stats = model->engine->stats();
    text = state.metrics().render(&stats, &model->info);
  } else {
    text = state.metrics().render(nullptr, nullptr);
  }
  text += state.prep_pool().render_metrics();
  co_await ex.send_body(200, "text/plain; version=0.0.4; charset=utf-8", text);
}

awaitable<void> handle_models(Exchange& ex) {
  std::shared_ptr<const LoadedModel> model = co_await require_model(ex);
  if (!model) co_return;
  const ServerConfig& cfg = ex.state().config();
  if (ex.route().route == Route::kModel) {
    for (const std::string& name : model->served_model_names) {
      if (name == ex.route().model_id) {
        bj::value card = model_card(*model, name, cfg);
        co_await send_json(ex, 200, card);
        co_return;
      }
    }
    co_await ex.send_error(model_not_found(ex.route().model_id));
    co_return;
  }
  bj::array data;
  for (const std::string& name : model->served_model_names) {
    data.emplace_back(model_card(*model, name, cfg));
  }
  bj::object body;
  body["object"] = "list";
  body["data"] = std::move(data);
  co_await send_json(ex, 200, body);
}

awaitable<void> handle_tokenize(Exchange& ex) {
  std::shared_ptr<const LoadedModel> model = co_await require_model(ex);
  if (!model) co_return;
  const Engine& engine = *model->engine;
  // Parsing, the template and the tokenizer run on the preparation pool (prep_pool.h).
  std::optional<ApiResult<TokenizeRequest>> parsed;
  std::optional<ApiResult<std::string>> rendered;
  std::optional<Result<std::vector<int32_t>>> tokenized;
  if (!co_await run_prepared(ex, [&](const PrepToken& token) {
        parsed.emplace(parse_tokenize_request(ex.request().body(), model->parse_context));
        if (!parsed->ok()) return;
        const TokenizeRequest& req = parsed->value();
        if (req.messages_json) {
          rendered.emplace(render_chat(ex.state().config(), engine, *req.messages_json,
                                       req.template_options, req.continue_final_message));
        } else {
          rendered.emplace(*req.prompt);
        }
        if (rendered->ok() && !token.expired()) {
          tokenized.emplace(engine.tokenize(rendered->value(), req.add_special_tokens));
        }
      })) {
    co_return;
  }
  if (!parsed->ok()) {
    co_await ex.send_error(parsed->error());
    co_return;
  }
  const TokenizeRequest& req = parsed->value();
  if (!rendered->ok()) {
    co_await ex.send_error(rendered->error());
    co_return;
  }
  const Result<std::vector<int32_t>>& ids = *tokenized;
  if (!ids.ok()) {
    co_await ex.send_error(
        api_error_from_status(ids.status(), req.messages_json ? "messages" : "prompt"));
    co_return;
  }
  // The output is capped as vLLM's: a prompt no request could use is refused, so the answer
  // (and its token_strs) stays within max_model_len entries.
  if (static_cast<int64_t>(ids->size()) > model->info.max_model_len) {
    const ApiError error{
        400,
        fmt::format("This model's maximum context length is {} tokens; the prompt has {} tokens",
                    model->info.max_model_len, ids->size()),
        "invalid_request_error", req.messages_json ? "messages" : "prompt",
        "context_length_exceeded"};
    co_await ex.send_error(error);
    co_return;
  }
  bj::object body;
  body["count"] = ids->size();
  body["max_model_len"] = model->info.max_model_len;
  bj::array tokens;
  tokens.reserve(ids->size());
  for (int32_t id : *ids) tokens.emplace_back(id);
  body["tokens"] = std::move(tokens);
  if (req.return_token_strs) {
    TokenTextCache token_text(engine);
    bj::array strs;
    for (int32_t id : *ids) strs.emplace_back(token_text(id));
    body["token_strs"] = std::move(strs);
  } else {
    body["token_strs"] = nullptr;
  }
  co_await send_json(ex, 200, body);
}

awaitable<void> handle_detokenize(Exchange& ex) {
  std::shared_ptr<const LoadedModel> model = co_await require_model(ex);
  if (!model) co_return;
  // A body of up to --max-request-body-bytes of ids: on the preparation pool too.
  std::optional<ApiResult<DetokenizeRequest>> parsed;
  std::optional<Result<std::string>> decoded;
  if (!co_await run_prepared(ex, [&](const PrepToken&) {
        parsed.emplace(parse_detokenize_request(ex.request().body(), model->parse_context));
        if (parsed->ok()) {
          decoded.emplace(
              model->engine->detokenize(parsed->value().tokens, /*skip_special_tokens=*/false));
        }
      })) {
    co_return;
  }
  if (!parsed->ok()) {
    co_await ex.send_error(parsed->error());
    co_return;
  }
  Result<std::string>& text = *decoded;
  if (!text.ok()) {
    co_await ex.send_error(api_error_from_status(text.status(), "tokens"));
    co_return;
  }
  bj::object body;
  body["prompt"] = sanitize_utf8(std::move(*text));
  co_await send_json(ex, 200, body);
}

awaitable<void> dispatch(Exchange& ex) {
  switch (ex.route().route) {
    case Route::kChatPage:
      co_await handle_chat_page(ex);
      break;
    case Route::kHealth:
      co_await handle_health(ex);
      break;
    case Route::kVersion:
      co_await handle_version(ex);
      break;
    case Route::kMetrics:
      co_await handle_metrics(ex);
      break;
    case Route::kModels:
    case Route::kModel:
      co_await handle_models(ex);
      break;
    case Route::kCompletions:
      co_await handle_completions(ex);
      break;
    case Route::kChatCompletions:
      co_await handle_chat_completions(ex);
      break;
    case Route::kMessages:
      co_await handle_messages(ex);
      break;
    case Route::kResponses:
      co_await handle_responses(ex);
      break;
    case Route::kEmbeddings:
      co_await handle_embeddings(ex);
      break;
    case Route::kTokenize:
      co_await handle_tokenize(ex);
      break;
    case Route::kDetokenize:
      co_await handle_detokenize(ex);
      break;
    case Route::kPreflight:
    case Route::kNone:
      co_await ex.send_error(not_found_path(ex.route().path));
      break;
  }
}

}  // namespace kite::server
