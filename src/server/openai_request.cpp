#include "server/openai_request.h"

#include <fmt/format.h>

#include "server/request_common.h"

namespace kite::server {

namespace bj = boost::json;
using detail::kMaxLogprobs;

namespace {

// "prompt": a string, an array of strings, an array of token ids, or an array of such arrays.
std::vector<Prompt> read_prompts(FieldReader& r, const ParseContext& ctx) {
  std::vector<Prompt> prompts;
  const bj::value* v = r.find("prompt");
  if (!v) {
    if (r.ok()) r.fail(missing_field("prompt"));
    return prompts;
  }
  if (v->is_string()) {
    if (v->get_string().empty()) {
      r.fail(invalid_value("prompt", "'prompt' must not be empty"));
    } else {
      prompts.emplace_back(std::string(v->get_string()));
    }
    return prompts;
  }
  if (!v->is_array()) {
    r.fail(invalid_type("prompt", fmt::format("'prompt' must be a string, an array of strings, an "
                                              "array of token ids or an array of token-id "
                                              "arrays, got {}",
                                              json_kind_name(*v))));
    return prompts;
  }
  const bj::array& a = v->get_array();
  if (a.empty()) {
    r.fail(invalid_value("prompt", "'prompt' must not be empty"));
    return prompts;
  }
  if (a[0].is_string()) {
    for (size_t i = 0; i < a.size(); ++i) {
      std::string where = fmt::format("prompt[{}]", i);
      if (!a[i].is_string()) {
        r.fail(invalid_type(where,
                            fmt::format("'prompt' mixes strings and {}s", json_kind_name(a[i]))));
        return {};
      }
      if (a[i].get_string().empty()) {
        r.fail(invalid_value(where, fmt::format("'{}' must not be empty", where)));
        return {};
      }
      prompts.emplace_back(std::string(a[i].get_string()));
    }
  } else if (a[0].is_array()) {
    for (size_t i = 0; i < a.size(); ++i) {
      std::string where = fmt::format("prompt[{}]", i);
      auto ids = detail::read_token_ids(r, a[i], where, ctx.vocab_size, false);
      if (!ids) return {};
      prompts.emplace_back(std::move(*ids));
    }
  } else {
    auto ids = detail::read_token_ids(r, *v, "prompt", ctx.vocab_size, false);
    if (!ids) return {};
    prompts.emplace_back(std::move(*ids));
  }
  return prompts;
}

}  // namespace

ApiResult<CompletionRequest> parse_completion_request(std::string_view body,
                                                      const ParseContext& ctx) {
  ApiResult<bj::object> doc = detail::parse_body(body);
  if (!doc.ok()) return doc.error();
  FieldReader r(doc.value());
  r.reject_unknown({"model", "prompt", "best_of", "echo", "frequency_penalty", "logit_bias",
                    "logprobs", "max_tokens", "n", "presence_penalty", "seed", "stop", "stream",
                    "stream_options", "suffix", "temperature", "top_p", "user",
                    // vLLM extensions
                    "top_k", "min_p", "repetition_penalty", "min_tokens", "stop_token_ids",
                    "ignore_eos", "skip_special_tokens", "spaces_between_special_tokens",
                    "include_stop_str_in_output", "add_special_tokens", "prompt_logprobs",
                    "priority", "return_token_ids", "response_format", "use_beam_search"});
  CompletionRequest req;
  req.params = ctx.default_sampling;
  if (auto m = detail::read_model(r, ctx)) req.model = std::move(*m);
  req.prompts = read_prompts(r, ctx);
  detail::read_sampling_fields(r, ctx, req.params);
  detail::read_token_limits(r, {"max_tokens"}, std::nullopt, req.params);
  if (auto lp = r.integer("logprobs", 0, kMaxLogprobs)) req.params.logprobs = static_cast<int>(*lp);
  req.echo = r.boolean("echo").value_or(false);
  if (req.echo && req.params.logprobs && !req.params.prompt_logprobs) {
    req.params.prompt_logprobs = req.params.logprobs;
  }
  detail::read_stream(r, req.stream, req.stream_options);
  req.add_special_tokens = r.boolean("add_special_tokens").value_or(true);
  req.return_token_ids = r.boolean("return_token_ids").value_or(false);
  if (auto p = r.integer("priority", INT32_MIN, INT32_MAX)) req.priority = static_cast<int>(*p);
  r.string("user");
  detail::reject_unsupported_features(r);
  if (!r.ok()) return r.error();
  return req;
}

ApiResult<ChatCompletionRequest> parse_chat_request(std::string_view body,
                                                    const ParseContext& ctx) {
  ApiResult<bj::object> doc = detail::parse_body(body);
  if (!doc.ok()) return doc.error();
  FieldReader r(doc.value());
  r.reject_unknown(
      {"messages", "model", "audio", "frequency_penalty", "function_call", "functions",
       "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities",
       "n", "parallel_tool_calls", "prediction", "presence_penalty", "reasoning_effort",
       "response_format", "seed", "service_tier", "stop", "store", "stream", "stream_options",
       "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "web_search_options",
       "safety_identifier", "prompt_cache_key",
       // vLLM extensions
       "top_k", "min_p", "repetition_penalty", "min_tokens", "stop_token_ids", "ignore_eos",
       "skip_special_tokens", "spaces_between_special_tokens", "include_stop_str_in_output",
       "add_generation_prompt", "continue_final_message", "add_special_tokens", "chat_template",
       "chat_template_kwargs", "priority", "return_token_ids", "prompt_logprobs"});
  ChatCompletionRequest req;
  req.params = ctx.default_sampling;
  if (auto m = detail::read_model(r, ctx)) req.model = std::move(*m);
  if (auto msgs = detail::read_messages(r)) req.messages_json = std::move(*msgs);
  detail::read_sampling_fields(r, ctx, req.params);
  // OpenAI's chat default is "as many as fit": the engine caps max_tokens by the context left.
  std::optional<int64_t> default_max;
  if (ctx.max_model_len > 0) default_max = ctx.max_model_len;
  detail::read_token_limits(r, {"max_completion_tokens", "max_tokens"}, default_max, req.params);
  req.logprobs = r.boolean("logprobs").value_or(false);
  std::optional<int64_t> top = r.integer("top_logprobs", 0, kMaxLogprobs);
  if (top && !req.logprobs && r.ok()) {
    r.fail(invalid_value("top_logprobs", "'top_logprobs' requires 'logprobs' to be true"));
  }
  if (req.logprobs) {
    req.params.logprobs = static_cast<int>(top.value_or(0));
  } else {
    req.params.logprobs.reset();
  }
  detail::read_stream(r, req.stream, req.stream_options);
  detail::read_template_options(r, req.template_options, req.continue_final_message);
  req.add_special_tokens = r.boolean("add_special_tokens").value_or(false);
  req.return_token_ids = r.boolean("return_token_ids").value_or(false);
  if (auto p = r.integer("priority", INT32_MIN, INT32_MAX)) req.priority = static_cast<int>(*p);
  r.string("user");
  r.boolean("parallel_tool_calls");
  r.boolean("store");
  r.object("metadata");
  detail::reject_unsupported_features(r);
  if (!r.ok()) return r.error();
  return req;
}

ApiResult<TokenizeRequest> parse_tokenize_request(std::string_view body, const ParseContext& ctx) {
  ApiResult<bj::object> doc = detail::parse_body(body);
  if (!doc.ok()) return doc.error();
  FieldReader r(doc.value());
  TokenizeRequest req;
  if (r.has("messages")) {
    r.reject_unknown({"model", "messages", "add_generation_prompt", "continue_final_message",
                      "add_special_tokens", "chat_template", "chat_template_kwargs", "tools",
                      "return_token_strs"});
    if (r.has("prompt")) r.fail(invalid_value("prompt", "give either 'prompt' or 'messages'"));
    req.messages_json = detail::read_messages(r);
    detail::read_template_options(r, req.template_options, req.continue_final_message);
    req.add_special_tokens = r.boolean("add_special_tokens").value_or(false);
  } else {
    r.reject_unknown({"model", "prompt", "add_special_tokens", "return_token_strs"});
    req.prompt = r.string("prompt");
    if (r.ok() && !req.prompt) r.fail(missing_field("prompt"));
    req.add_special_tokens = r.boolean("add_special_tokens").value_or(true);
  }
  if (auto m = detail::read_model(r, ctx)) req.model = std::move(*m);
  req.return_token_strs = r.boolean("return_token_strs").value_or(false);
  if (!r.ok()) return r.error();
  return req;
}

ApiResult<DetokenizeRequest> parse_detokenize_request(std::string_view body,
                                                      const ParseContext& ctx) {
  ApiResult<bj::object> doc = detail::parse_body(body);
  if (!doc.ok()) return doc.error();
  FieldReader r(doc.value());
  r.reject_unknown({"model", "tokens"});
  DetokenizeRequest req;
  if (auto m = detail::read_model(r, ctx)) req.model = std::move(*m);
  const bj::value* tokens = r.find("tokens");
  if (r.ok() && !tokens) r.fail(missing_field("tokens"));
  if (r.ok()) {
    if (auto ids = detail::read_token_ids(r, *tokens, "tokens", ctx.vocab_size, true)) {
      req.tokens = std::move(*ids);
    }
  }
  if (!r.ok()) return r.error();
  return req;
}

ApiResult<std::string> tag_final_message(std::string_view messages_json) {
  boost::system::error_code ec;
  bj::value v = bj::parse(messages_json, ec);
  if (ec || !v.is_array() || v.get_array().empty() || !v.get_array().back().is_object()) {
    return invalid_value("messages", "'messages' must be a non-empty array of messages");
  }
  bj::object& last = v.get_array().back().get_object();
  auto it = last.find("content");
  if (it == last.end() || !it->value().is_string()) {
    return invalid_value("continue_final_message",
                         "continue_final_message is set but the final message has no text content "
                         "to continue");
  }
  std::string content(it->value().get_string());
  content += kContinueTag;
  it->value() = content;
  return bj::serialize(v);
}

ApiResult<std::string> cut_at_continue_tag(std::string_view rendered) {
  std::string_view tag = kContinueTag;
  std::string_view stripped_tag = tag.substr(0, tag.size() - 1);  // without the trailing space
  size_t loc = rendered.rfind(stripped_tag);
  if (loc == std::string_view::npos) {
    return invalid_value("continue_final_message",
                         "continue_final_message is set but the final message does not appear in "
                         "the rendered chat template");
  }
  std::string out(rendered.substr(0, loc));
  if (rendered.substr(loc, tag.size()) != tag) {
    // The template trimmed the whitespace after the message; trim what precedes the tag too.
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  }
  return out;
}

}  // namespace kite::server
