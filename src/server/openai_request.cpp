#include "server/openai_request.h"

#include <fmt/format.h>

#include "server/request_common.h"

namespace kite::server {

namespace bj = boost::json;
using detail::kMaxLogprobs;

namespace {

// "prompt" (or the embeddings' "input"): a string, an array of strings, an array of token ids, or an array of such arrays.
std::vector<Prompt> read_prompts(FieldReader& r, const ParseContext& ctx,
                                 const std::string& key = "prompt") {
  std::vector<Prompt> prompts;
  const bj::value* v = r.find(key);
  if (!v) {
    if (r.ok()) r.fail(missing_field(key));
    return prompts;
  }
  if (v->is_string()) {
    if (v->get_string().empty()) {
      r.fail(invalid_value(key, fmt::format("'{}' must not be empty", key)));
    } else {
      prompts.emplace_back(std::string(v->get_string()));
    }
    return prompts;
  }
  if (!v->is_array()) {
    r.fail(invalid_type(key, fmt::format("'{}' must be a string, an array of strings, an array "
                                         "of token ids or an array of token-id arrays, got {}",
                                         key, json_kind_name(*v))));
    return prompts;
  }
  const bj::array& a = v->get_array();
  if (a.empty()) {
    r.fail(invalid_value(key, fmt::format("'{}' must not be empty", key)));
    return prompts;
  }
  if (a[0].is_string()) {
    for (size_t i = 0; i < a.size(); ++i) {
      std::string where = fmt::format("{}[{}]", key, i);
      if (!a[i].is_string()) {
        r.fail(invalid_type(where,
                            fmt::format("'{}' mixes strings and {}s", key, json_kind_name(a[i]))));
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
      std::string where = fmt::format("{}[{}]", key, i);
      auto ids = detail::read_token_ids(r, a[i], where, ctx.vocab_size, false);
      if (!ids) return {};
      prompts.emplace_back(std::move(*ids));
    }
  } else {
    auto ids = detail::read_token_ids(r, *v, key, ctx.vocab_size, false);
    if (!ids) return {};
    prompts.emplace_back(std::move(*ids));
  }
  return prompts;
}

// tools (already checked by read_template_options), tool_choice, parallel_tool_calls and
// chat_template_kwargs.enable_thinking.
void read_tools(FieldReader& r, ChatCompletionRequest& req) {
  if (!r.ok()) return;
  if (const bj::array* tools = r.array("tools")) {
    for (const bj::value& t : *tools) {
      const bj::object& fn = t.as_object().at("function").as_object();
      ToolFunction f;
      f.name = std::string(fn.at("name").as_string());
      auto params = fn.find("parameters");
      if (params != fn.end() && !params->value().is_null()) {
        if (!params->value().is_object()) {
          r.fail(invalid_type("tools", fmt::format("the parameters of tool '{}' must be a JSON "
                                                   "schema object", f.name)));
          return;
        }
        f.parameters_json = bj::serialize(params->value());
      } else {
        f.parameters_json = "{\"type\": \"object\"}";
      }
      req.tools.push_back(std::move(f));
    }
  }
  req.tool_choice.kind = req.tools.empty() ? ToolChoice::Kind::kNone : ToolChoice::Kind::kAuto;
  if (const bj::value* tc = r.find("tool_choice")) {
    if (tc->is_string()) {
      const std::string_view v = tc->get_string();
      if (v == "none") {
        req.tool_choice.kind = ToolChoice::Kind::kNone;
      } else if (v == "auto") {
        req.tool_choice.kind = ToolChoice::Kind::kAuto;
      } else if (v == "required") {
        req.tool_choice.kind = ToolChoice::Kind::kRequired;
      } else {
        r.fail(invalid_value("tool_choice", fmt::format("'tool_choice' must be none, auto, required "
                                                        "or a named function, got '{}'", v)));
        return;
      }
    } else if (tc->is_object()) {
      FieldReader cr(tc->get_object(), "tool_choice");
      cr.reject_unknown({"type", "function"});
      std::optional<std::string> type = cr.string("type");
      const bj::object* fn = cr.object("function");
      if (cr.ok() && (type.value_or("function") != "function" || !fn)) {
        cr.fail(invalid_value("tool_choice", "a named 'tool_choice' must be {\"type\": "
                                             "\"function\", \"function\": {\"name\": ...}}"));
      }
      std::optional<std::string> name;
      if (cr.ok()) {
        FieldReader nr(*fn, "tool_choice.function");
        name = nr.string("name");
        if (nr.ok() && !name) nr.fail(missing_field("tool_choice.function.name"));
        if (!nr.ok()) cr.fail(nr.error());
      }
      if (!cr.ok()) {
        r.fail(cr.error());
        return;
      }
      req.tool_choice.kind = ToolChoice::Kind::kNamed;
      req.tool_choice.name = *name;
    } else {
      r.fail(invalid_type("tool_choice", "'tool_choice' must be a string or an object"));
      return;
    }
  }
  const ToolChoice::Kind k = req.tool_choice.kind;
  if ((k == ToolChoice::Kind::kRequired || k == ToolChoice::Kind::kNamed) && req.tools.empty()) {
    r.fail(invalid_value("tool_choice", "'tool_choice' requires 'tools'"));
    return;
  }
  if (k == ToolChoice::Kind::kNamed) {
    bool found = false;
    for (const ToolFunction& f : req.tools) found = found || f.name == req.tool_choice.name;
    if (!found) {
      r.fail(invalid_value("tool_choice",
                           fmt::format("'tool_choice' names function '{}', which is not in 'tools'",
                                       req.tool_choice.name)));
      return;
    }
  }
  if ((k == ToolChoice::Kind::kRequired || k == ToolChoice::Kind::kNamed) &&
      req.params.structured_outputs) {
    r.fail(invalid_value("tool_choice", "tool_choice 'required' or a named function constrains "
                                        "the output: it cannot be combined with response_format "
                                        "or structured_outputs"));
    return;
  }
  req.parallel_tool_calls = r.boolean("parallel_tool_calls").value_or(true);
  if (const bj::object* kw = r.object("chat_template_kwargs")) {
    auto it = kw->find("enable_thinking");
    if (it != kw->end() && it->value().is_bool() && !it->value().get_bool()) {
      req.thinking_disabled = true;
    }
  }
}

// use_beam_search, length_penalty, early_stopping (vLLM's): n is the beam width. Beam search
// answers whole choices of text, so streaming, logprobs, echo and output constraints are 400s.
void read_beam_search(FieldReader& r, CompletionRequest& req) {
  std::optional<double> lp = r.number("length_penalty");
  r.boolean("early_stopping");
  if (!r.boolean("use_beam_search").value_or(false) || !r.ok()) return;
  BeamSearchOptions& b = req.beam_search;
  b.enabled = true;
  b.length_penalty = lp.value_or(1.0);
  b.temperature = r.has("temperature") ? req.params.temperature : 0.0;
  if (req.params.n > kMaxBeamWidth) {
    r.fail(invalid_value("n", fmt::format("beam search takes n (the beam width) up to {}, got {}",
                                          kMaxBeamWidth, req.params.n)));
  } else if (req.stream) {
    r.fail(unsupported("stream", "beam search answers whole: 'stream' must be false"));
  } else if (req.params.logprobs || req.params.prompt_logprobs || req.echo) {
    r.fail(unsupported("use_beam_search",
                       "beam search cannot be combined with logprobs, prompt_logprobs or echo"));
  } else if (req.params.structured_outputs) {
    r.fail(unsupported("use_beam_search",
                       "beam search cannot be combined with a structured-output constraint"));
  }
}

}  // namespace

ApiResult<CompletionRequest> parse_completion_request(std::string_view body,
                                                      const ParseContext& ctx) {
  ApiResult<bj::object> doc = detail::parse_body(body);
  if (!doc.ok()) return doc.error();
  FieldReader r(doc.value());
  r.reject_unknown(
      {"model", "prompt", "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs",
       "max_tokens", "n", "presence_penalty", "seed", "stop", "stream", "stream_options", "suffix",
       "temperature", "top_p", "user",
       // vLLM extensions
       "top_k", "min_p", "repetition_penalty", "min_tokens", "stop_token_ids", "ignore_eos",
       "skip_special_tokens", "spaces_between_special_tokens", "include_stop_str_in_output",
       "add_special_tokens", "prompt_logprobs", "priority", "return_token_ids", "response_format",
       "use_beam_search", "length_penalty",
       "early_stopping", "cache_salt", "structured_outputs", "guided_json", "guided_regex",
       "guided_choice", "guided_grammar", "guided_decoding_backend", "guided_whitespace_pattern"});
  CompletionRequest req;
  req.params = ctx.default_sampling;
  if (auto m = detail::read_model(r, ctx)) req.model = std::move(*m);
  req.prompts = read_prompts(r, ctx);
  detail::read_sampling_fields(r, ctx, req.params);
  detail::read_structured_outputs(r, req.params);
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
  req.cache_salt = detail::read_cache_salt(r);
  r.string("user");
  read_beam_search(r, req);
  detail::reject_unsupported_features(r, /*allow_beam_search=*/true);
  if (!r.ok()) return r.error();
  if (auto e = detail::check_choices(ctx, static_cast<int64_t>(req.prompts.size()), req.params.n)) {
    return *e;
  }
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
       "chat_template_kwargs", "priority", "return_token_ids", "prompt_logprobs", "cache_salt",
       "structured_outputs", "guided_json", "guided_regex", "guided_choice", "guided_grammar",
       "guided_decoding_backend", "guided_whitespace_pattern"});
  ChatCompletionRequest req;
  req.params = ctx.default_sampling;
  if (auto m = detail::read_model(r, ctx)) req.model = std::move(*m);
  if (auto msgs = detail::read_messages(r)) req.messages_json = std::move(*msgs);
  detail::read_sampling_fields(r, ctx, req.params);
  detail::read_structured_outputs(r, req.params);
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
  req.cache_salt = detail::read_cache_salt(r);
  r.string("user");
  read_tools(r, req);
  r.boolean("store");
  r.object("metadata");
  detail::reject_unsupported_features(r);
  if (!r.ok()) return r.error();
  if (auto e = detail::check_choices(ctx, 1, req.params.n)) return *e;
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

ApiResult<EmbeddingRequest> parse_embedding_request(std::string_view body,
                                                    const ParseContext& ctx) {
  ApiResult<bj::object> doc = detail::parse_body(body);
  if (!doc.ok()) return doc.error();
  FieldReader r(doc.value());
  r.reject_unknown({"model", "input", "encoding_format", "dimensions", "user",
                    // vLLM extensions
                    "add_special_tokens", "priority"});
  EmbeddingRequest req;
  if (auto m = detail::read_model(r, ctx)) req.model = std::move(*m);
  req.inputs = read_prompts(r, ctx, "input");
  if (auto f = r.string("encoding_format")) {
    if (*f == "base64") {
      req.base64 = true;
    } else if (*f != "float") {
      r.fail(invalid_value("encoding_format",
                           fmt::format("'encoding_format' must be 'float' or 'base64', got '{}'",
                                       *f)));
    }
  }
  if (auto d = r.integer("dimensions", 1)) req.dimensions = *d;
  (void)r.string("user");
  if (auto a = r.boolean("add_special_tokens")) req.add_special_tokens = *a;
  if (auto p = r.integer("priority", INT32_MIN, INT32_MAX)) req.priority = static_cast<int>(*p);
  if (!r.ok()) return r.error();
  return req;
}

}  // namespace kite::server
