// libFuzzer target: every input is a request body run through each request parser of the
// server (OpenAI's, the Anthropic Messages and the Responses translations). Inputs that start with
// an HTTP method are first framed by Beast's request parser (with the server's limits) and their
// body is given to the parsers too. Parsers must never crash, and what they accept must satisfy the
// invariants the engine relies on; every error must serialize to valid OpenAI-style JSON.
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "server/anthropic_request.h"
#include "server/openai_request.h"
#include "server/responses_request.h"

namespace {

namespace bj = boost::json;
namespace http = boost::beast::http;
using kite::server::ApiError;

void require(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

void check_error(const ApiError& e) {
  require(e.http_status >= 400 && e.http_status < 600, "error status");
  require(!e.message.empty(), "error message");
  bj::value v = bj::parse(kite::server::error_body(e));
  require(v.at("error").at("message").is_string(), "error body shape");
}

void check_params(const kite::SamplingParams& p, const kite::server::ParseContext& ctx) {
  require(p.n >= 1 && p.n <= 128, "n");
  require(p.max_tokens >= 1, "max_tokens");
  require(p.min_tokens >= 0 && p.min_tokens <= p.max_tokens, "min_tokens");
  require(p.temperature >= 0, "temperature");
  require(p.top_p > 0 && p.top_p <= 1, "top_p");
  require(p.top_k >= -1, "top_k");
  require(p.min_p >= 0 && p.min_p <= 1, "min_p");
  require(p.repetition_penalty > 0, "repetition_penalty");
  require(p.presence_penalty >= -2 && p.presence_penalty <= 2, "presence_penalty");
  require(p.frequency_penalty >= -2 && p.frequency_penalty <= 2, "frequency_penalty");
  require(!p.logprobs || (*p.logprobs >= 0 && *p.logprobs <= 20), "logprobs");
  for (const auto& [id, bias] : p.logit_bias) {
    require(id >= 0 && id < ctx.vocab_size && bias >= -100 && bias <= 100, "logit_bias");
  }
  for (int32_t id : p.stop_token_ids) require(id >= 0 && id < ctx.vocab_size, "stop_token_ids");
  for (const std::string& s : p.stop) require(!s.empty(), "stop");
}

void parse_all(std::string_view body, const kite::server::ParseContext& ctx) {
  auto c = kite::server::parse_completion_request(body, ctx);
  if (c.ok()) {
    require(!c.value().prompts.empty(), "prompts");
    for (const auto& p : c.value().prompts) {
      if (const auto* ids = std::get_if<std::vector<int32_t>>(&p)) {
        require(!ids->empty(), "token prompt");
        for (int32_t id : *ids) require(id >= 0 && id < ctx.vocab_size, "prompt id");
      } else {
        require(!std::get<std::string>(p).empty(), "text prompt");
      }
    }
    check_params(c.value().params, ctx);
  } else {
    check_error(c.error());
  }
  auto chat = kite::server::parse_chat_request(body, ctx);
  if (chat.ok()) {
    bj::value msgs = bj::parse(chat.value().messages_json);
    require(msgs.is_array() && !msgs.as_array().empty(), "messages");
    check_params(chat.value().params, ctx);
    if (chat.value().continue_final_message) {
      auto tagged = kite::server::tag_final_message(chat.value().messages_json);
      if (!tagged.ok()) check_error(tagged.error());
    }
  } else {
    check_error(chat.error());
  }
  auto msgs = kite::server::parse_messages_request(body, ctx);
  if (msgs.ok()) {
    bj::value m = bj::parse(msgs.value().messages_json);
    require(m.is_array() && !m.as_array().empty(), "anthropic messages");
    check_params(msgs.value().params, ctx);
  } else {
    check_error(msgs.error());
    bj::value v = bj::parse(kite::server::anthropic_error_body(msgs.error()));
    require(v.at("error").at("type").is_string(), "anthropic error body shape");
  }
  // One stored conversation with a tool call, for previous_response_id "resp_1".
  static const kite::server::PreviousResponseLookup previous =
      [](const std::string& id) -> std::optional<std::string> {
    if (id != "resp_1") return std::nullopt;
    return R"([{"role": "user", "content": "q"}, {"role": "assistant", "content": "",
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "f", "arguments": "{}"}}]}])";
  };
  auto resp = kite::server::parse_responses_request(body, ctx, previous);
  if (resp.ok()) {
    bj::value m = bj::parse(resp.value().chat.messages_json);
    require(m.is_array() && !m.as_array().empty(), "responses messages");
    require(bj::parse(resp.value().conversation_json).is_array(), "responses conversation");
    check_params(resp.value().chat.params, ctx);
  } else {
    check_error(resp.error());
  }
  auto tok = kite::server::parse_tokenize_request(body, ctx);
  if (tok.ok()) {
    require(tok.value().prompt.has_value() != tok.value().messages_json.has_value(), "tokenize");
  } else {
    check_error(tok.error());
  }
  auto detok = kite::server::parse_detokenize_request(body, ctx);
  if (!detok.ok()) check_error(detok.error());
  auto cut = kite::server::cut_at_continue_tag(body);
  if (cut.ok()) require(cut.value().size() <= body.size(), "cut");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const kite::server::ParseContext ctx = [] {
    kite::server::ParseContext c;
    c.served_model_names = {"tiny", "alias"};
    c.vocab_size = 2048;
    c.max_model_len = 512;
    return c;
  }();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  parse_all(input, ctx);

  if (input.starts_with("POST ") || input.starts_with("GET ")) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(1 << 20);
    parser.eager(true);
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(input.data(), input.size()), ec);
    if (!ec && parser.is_done()) parse_all(parser.get().body(), ctx);
  }
  return 0;
}
