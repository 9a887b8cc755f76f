#include "server/responses_request.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <set>
#include <unordered_map>

#include "server/request_common.h"

namespace kite::server {

namespace bj = boost::json;

namespace {

struct Conversation {
  bj::array messages;                                  // chat-shaped
  std::unordered_map<std::string, std::string> calls;  // call_id -> function name
  std::set<std::string> answered;
  std::string pending_reasoning;  // a reasoning item's text, for the next assistant message
};

// The text of a message's content: a string or a list of input_text / output_text parts.
std::optional<std::string> read_parts(FieldReader& r, const bj::value& v, const std::string& where,
                                      bool assistant) {
  if (v.is_string()) return std::string(v.get_string());
  if (!v.is_array()) {
    r.fail(invalid_type(where, fmt::format("'{}' must be a string or an array of content parts, "
                                           "got {}",
                                           where, json_kind_name(v))));
    return std::nullopt;
  }
  std::string text;
  const bool ok = read_objects(r, v.get_array(), where, [&](FieldReader& pr, size_t) {
    const std::string& at = pr.path_prefix();
    std::optional<std::string> type = pr.string("type");
    if (pr.ok() && !type) pr.fail(missing_field(at + ".type"));
    if (pr.ok()) {
      if (*type == "input_text" || *type == "output_text" || *type == "text") {
        pr.reject_unknown({"type", "text", "annotations", "logprobs"});
        std::optional<std::string> t = pr.string("text");
        if (pr.ok() && !t) pr.fail(missing_field(at + ".text"));
        if (pr.ok()) {
          if (!text.empty()) text += "\n";
          text += *t;
        }
      } else if (*type == "refusal") {
        // An assistant's refusal part carries no text the template shows.
      } else if (*type == "input_image" || *type == "input_file" || *type == "input_audio") {
        pr.fail(unsupported(at + ".type",
                            fmt::format("content parts of type '{}' are not supported (kite "
                                        "serves text)",
                                        *type)));
      } else {
        pr.fail(invalid_value(at + ".type",
                              fmt::format("unknown content part type '{}' (expected {})", *type,
                                          assistant ? "output_text" : "input_text")));
      }
    }
  });
  if (!ok) return std::nullopt;
  return text;
}

// The last message when it is an assistant message that tool calls may join, else a new one.
bj::object& assistant_message(Conversation& c) {
  if (c.messages.empty() || c.messages.back().as_object().at("role").as_string() != "assistant") {
    bj::object m;
    m["role"] = "assistant";
    m["content"] = "";
    if (!c.pending_reasoning.empty()) m["reasoning_content"] = c.pending_reasoning;
    c.pending_reasoning.clear();
    c.messages.emplace_back(std::move(m));
  }
  return c.messages.back().as_object();
}

bool read_item(FieldReader& r, const bj::value& v, const std::string& at, Conversation& c) {
  if (!v.is_object()) {
    r.fail(invalid_type(at, fmt::format("'{}' must be an object", at)));
    return false;
  }
  FieldReader ir(v.get_object(), at);
  std::optional<std::string> type = ir.string("type");
  if (ir.ok() && !type) {
    if (ir.has("role")) {
      type = "message";  // EasyInputMessage: {role, content}
    } else {
      ir.fail(missing_field(at + ".type"));
    }
  }
  if (!ir.ok()) {
    r.fail(ir.error());
    return false;
  }
  if (*type == "message") {
    ir.reject_unknown({"type", "role", "content", "id", "status", "phase"});
    std::optional<std::string> role = ir.string("role");
    if (ir.ok() && !role) ir.fail(missing_field(at + ".role"));
    if (ir.ok() && *role != "user" && *role != "system" && *role != "developer" &&
        *role != "assistant") {
      ir.fail(invalid_value(at + ".role",
                            fmt::format("'{}.role' must be user, system, developer or assistant, "
                                        "got '{}'",
                                        at, *role)));
    }
    const bj::value* content = ir.find("content");
    if (ir.ok() && !content) ir.fail(missing_field(at + ".content"));
    std::optional<std::string> text;
    if (ir.ok()) text = read_parts(ir, *content, at + ".content", *role == "assistant");
    if (!ir.ok()) {
      r.fail(ir.error());
      return false;
    }
    bj::object m;
    m["role"] = *role;
    m["content"] = *text;
    if (*role == "assistant" && !c.pending_reasoning.empty()) {
      m["reasoning_content"] = c.pending_reasoning;
      c.pending_reasoning.clear();
    }
    c.messages.emplace_back(std::move(m));
    return true;
  }
  if (*type == "function_call") {
    ir.reject_unknown({"type", "id", "call_id", "name", "arguments", "status"});
    std::optional<std::string> call_id = ir.string("call_id");
    std::optional<std::string> name = ir.string("name");
    std::optional<std::string> arguments = ir.string("arguments");
    ir.string("id");
    ir.string("status");
    if (ir.ok() && !call_id) ir.fail(missing_field(at + ".call_id"));
    if (ir.ok() && !name) ir.fail(missing_field(at + ".name"));
    if (ir.ok() && !arguments) ir.fail(missing_field(at + ".arguments"));
    if (ir.ok() && c.calls.contains(*call_id)) {
      ir.fail(invalid_value(at + ".call_id",
                            fmt::format("function_call call_id '{}' is used twice", *call_id)));
    }
    if (!ir.ok()) {
      r.fail(ir.error());
      return false;
    }
    c.calls[*call_id] = *name;
    // The arguments text as the model wrote it, as /v1/chat/completions passes tool_calls.
    bj::object fn;
    fn["name"] = *name;
    fn["arguments"] = *arguments;
    bj::object call;
    call["id"] = *call_id;
    call["type"] = "function";
    call["function"] = std::move(fn);
    bj::object& m = assistant_message(c);
    if (!m.contains("tool_calls")) m["tool_calls"] = bj::array();
    m["tool_calls"].as_array().emplace_back(std::move(call));
    return true;
  }
  if (*type == "function_call_output") {
    ir.reject_unknown({"type", "id", "call_id", "output", "status"});
    std::optional<std::string> call_id = ir.string("call_id");
    ir.string("id");
    ir.string("status");
    const bj::value* output = ir.find("output");
    if (ir.ok() && !call_id) ir.fail(missing_field(at + ".call_id"));
    if (ir.ok() && !output) ir.fail(missing_field(at + ".output"));
    if (ir.ok() && !c.calls.contains(*call_id)) {
      ir.fail(invalid_value(at + ".call_id",
                            fmt::format("No tool call found for function call output with call_id "
                                        "'{}': it must answer an earlier function_call",
                                        *call_id)));
    }
    if (ir.ok() && c.answered.contains(*call_id)) {
      ir.fail(
          invalid_value(at + ".call_id",
                        fmt::format("call_id '{}' has two function_call_output items", *call_id)));
    }
    std::optional<std::string> text;
    if (ir.ok()) text = read_parts(ir, *output, at + ".output", false);
    if (!ir.ok()) {
      r.fail(ir.error());
      return false;
    }
    c.answered.insert(*call_id);
    bj::object m;
    m["role"] = "tool";
    m["tool_call_id"] = *call_id;
    m["name"] = c.calls[*call_id];
    m["content"] = *text;
    c.messages.emplace_back(std::move(m));
    return true;
  }
  if (*type == "reasoning") {
    ir.reject_unknown({"type", "id", "summary", "content", "encrypted_content", "status"});
    if (const bj::array* content = ir.array("content")) {
      for (const bj::value& part : *content) {
        if (part.is_object() && part.as_object().contains("text") &&
            part.as_object().at("text").is_string()) {
          c.pending_reasoning += std::string(part.as_object().at("text").as_string());
        }
      }
    }
    if (!ir.ok()) {
      r.fail(ir.error());
      return false;
    }
    return true;
  }
  if (*type == "item_reference" || *type == "file_search_call" || *type == "web_search_call" ||
      *type == "computer_call" || *type == "computer_call_output" ||
      *type == "image_generation_call" || *type == "code_interpreter_call" ||
      *type == "local_shell_call" || *type == "mcp_call" || *type == "custom_tool_call") {
    r.fail(unsupported(at + ".type", fmt::format("input items of type '{}' are not supported "
                                                 "(kite serves message, function_call, "
                                                 "function_call_output and reasoning)",
                                                 *type)));
    return false;
  }
  r.fail(
      invalid_value(at + ".type", fmt::format("unknown input item type '{}' (expected message, "
                                              "function_call, function_call_output or reasoning)",
                                              *type)));
  return false;
}

void read_function_tools(FieldReader& r, ResponsesRequest& req) {
  const bj::array* tools = r.array("tools");
  if (!tools) return;
  req.tools_json = bj::serialize(*tools);
  bj::array openai_tools;
  std::set<std::string> names;
  read_objects(r, *tools, "tools", [&](FieldReader& tr, size_t) {
    const std::string& at = tr.path_prefix();
    std::optional<std::string> type = tr.string("type");
    if (tr.ok() && !type) tr.fail(missing_field(at + ".type"));
    if (tr.ok() && *type != "function") {
      tr.fail(unsupported(at + ".type", fmt::format("tools of type '{}' are not supported (kite "
                                                    "serves function tools)",
                                                    *type)));
    }
    tr.reject_unknown({"type", "name", "description", "parameters", "strict"});
    std::optional<std::string> name = tr.string("name");
    std::optional<std::string> description = tr.string("description");
    const bj::object* params = tr.object("parameters");
    tr.boolean("strict");
    if (tr.ok() && !name) tr.fail(missing_field(at + ".name"));
    if (tr.ok() && !names.insert(*name).second) {
      tr.fail(invalid_value(at + ".name", fmt::format("function name '{}' is used twice", *name)));
    }
    if (!tr.ok()) return;
    ToolFunction f;
    f.name = *name;
    f.parameters_json = params ? bj::serialize(*params) : std::string(R"({"type": "object"})");
    req.chat.tools.push_back(f);
    bj::object fn;
    fn["name"] = *name;
    if (description) fn["description"] = *description;
    if (params) fn["parameters"] = *params;
    bj::object tool;
    tool["type"] = "function";
    tool["function"] = std::move(fn);
    openai_tools.emplace_back(std::move(tool));
  });
  req.chat.template_options.tools_json = bj::serialize(openai_tools);
}

void read_tool_choice(FieldReader& r, ResponsesRequest& req) {
  if (!r.ok()) return;
  ChatCompletionRequest& chat = req.chat;
  chat.tool_choice.kind = chat.tools.empty() ? ToolChoice::Kind::kNone : ToolChoice::Kind::kAuto;
  req.tool_choice_json = chat.tools.empty() ? "\"none\"" : "\"auto\"";
  const bj::value* tc = r.find("tool_choice");
  if (!tc) return;
  req.tool_choice_json = bj::serialize(*tc);
  if (tc->is_string()) {
    const std::string_view v = tc->get_string();
    if (v == "none") {
      chat.tool_choice.kind = ToolChoice::Kind::kNone;
    } else if (v == "auto") {
      chat.tool_choice.kind = ToolChoice::Kind::kAuto;
    } else if (v == "required") {
      chat.tool_choice.kind = ToolChoice::Kind::kRequired;
    } else {
      r.fail(invalid_value("tool_choice", fmt::format("'tool_choice' must be none, auto, required "
                                                      "or a named function, got '{}'",
                                                      v)));
      return;
    }
  } else if (tc->is_object()) {
    FieldReader cr(tc->get_object(), "tool_choice");
    std::optional<std::string> type = cr.string("type");
    std::optional<std::string> name = cr.string("name");
    if (cr.ok() && type != "function") {
      cr.fail(unsupported("tool_choice.type",
                          "a named 'tool_choice' must be {\"type\": "
                          "\"function\", \"name\": ...}"));
    }
    cr.reject_unknown({"type", "name"});
    if (cr.ok() && !name) cr.fail(missing_field("tool_choice.name"));
    if (!cr.ok()) {
      r.fail(cr.error());
      return;
    }
    chat.tool_choice.kind = ToolChoice::Kind::kNamed;
    chat.tool_choice.name = *name;
  } else {
    r.fail(invalid_type("tool_choice", "'tool_choice' must be a string or an object"));
    return;
  }
  const ToolChoice::Kind k = chat.tool_choice.kind;
  if ((k == ToolChoice::Kind::kRequired || k == ToolChoice::Kind::kNamed) && chat.tools.empty()) {
    r.fail(invalid_value("tool_choice", "'tool_choice' requires 'tools'"));
    return;
  }
  if (k == ToolChoice::Kind::kNamed) {
    bool found = false;
    for (const ToolFunction& f : chat.tools) found = found || f.name == chat.tool_choice.name;
    if (!found) {
      r.fail(invalid_value("tool_choice.name",
                           fmt::format("'tool_choice' names function '{}', which is not in 'tools'",
                                       chat.tool_choice.name)));
    }
  }
}

// text: {format: {type: text | json_schema | json_object}, verbosity}.
void read_text(FieldReader& r, ResponsesRequest& req) {
  const bj::object* text = r.object("text");
  if (!text) {
    req.text_json = R"({"format":{"type":"text"}})";
    return;
  }
  req.text_json = bj::serialize(*text);
  FieldReader tr(*text, "text");
  tr.reject_unknown({"format", "verbosity"});
  tr.string("verbosity");
  if (const bj::object* format = tr.object("format")) {
    FieldReader fr(*format, "text.format");
    std::optional<std::string> type = fr.string("type");
    if (fr.ok() && !type) fr.fail(missing_field("text.format.type"));
    if (fr.ok()) {
      if (*type == "text") {
        fr.reject_unknown({"type"});
      } else if (*type == "json_object") {
        fr.reject_unknown({"type"});
        StructuredOutputs so;
        so.json_object = true;
        req.chat.params.structured_outputs = std::move(so);
      } else if (*type == "json_schema") {
        fr.reject_unknown({"type", "name", "schema", "description", "strict"});
        fr.string("name");
        fr.string("description");
        fr.boolean("strict");
        const bj::object* schema = fr.object("schema");
        if (fr.ok() && !schema) fr.fail(missing_field("text.format.schema"));
        if (fr.ok()) {
          StructuredOutputs so;
          so.json = bj::serialize(*schema);
          req.chat.params.structured_outputs = std::move(so);
        }
      } else {
        fr.fail(invalid_value("text.format.type",
                              fmt::format("'text.format.type' must be text, json_schema or "
                                          "json_object, got '{}'",
                                          *type)));
      }
    }
    if (!fr.ok()) tr.fail(fr.error());
  }
  if (!tr.ok()) r.fail(tr.error());
}

// Fields OpenAI defines that kite serves only at their neutral value.
void reject_unsupported_responses_features(FieldReader& r) {
  if (!r.ok()) return;
  if (auto b = r.boolean("background"); b && *b) {
    r.fail(unsupported("background", "background responses are not supported"));
  } else if (r.has("conversation")) {
    r.fail(unsupported("conversation",
                       "conversations are not supported; continue a response "
                       "with previous_response_id"));
  } else if (r.has("prompt")) {
    r.fail(unsupported("prompt", "prompt templates are not supported"));
  } else if (auto n = r.integer("top_logprobs", 0, 20); n && *n > 0) {
    r.fail(unsupported("top_logprobs", "top_logprobs are not supported on /v1/responses"));
  } else if (auto t = r.string("truncation"); t && *t != "disabled") {
    r.fail(unsupported("truncation", "only truncation 'disabled' is supported"));
  }
}

}  // namespace

ApiResult<ResponsesRequest> parse_responses_request(std::string_view body, const ParseContext& ctx,
                                                    const PreviousResponseLookup& previous) {
  ApiResult<bj::object> doc = detail::parse_body(body);
  if (!doc.ok()) return doc.error();
  FieldReader r(doc.value());
  r.reject_unknown({"model", "input", "instructions", "max_output_tokens", "temperature", "top_p",
                    "tools", "tool_choice", "parallel_tool_calls", "text", "reasoning", "stream",
                    "stream_options", "store", "previous_response_id", "metadata", "user",
                    "safety_identifier", "prompt_cache_key", "prompt_cache_retention",
                    "service_tier", "truncation", "include", "background", "conversation", "prompt",
                    "top_logprobs", "max_tool_calls",
                    // kite extensions (vLLM's)
                    "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty",
                    "seed", "logit_bias", "min_tokens", "stop", "stop_token_ids", "ignore_eos",
                    "chat_template_kwargs", "priority"});
  ResponsesRequest req;
  ChatCompletionRequest& chat = req.chat;
  chat.params = ctx.default_sampling;
  if (auto m = detail::read_model(r, ctx)) chat.model = std::move(*m);
  req.instructions = r.string("instructions");

  Conversation c;
  if (auto prev = r.string("previous_response_id")) {
    req.previous_response_id = *prev;
    std::optional<std::string> stored = previous ? previous(*prev) : std::nullopt;
    if (!stored) {
      r.fail(ApiError{404,
                      fmt::format("Previous response with id '{}' not found (kite keeps "
                                  "stored responses in memory, a bounded number of them)",
                                  *prev),
                      "invalid_request_error", "previous_response_id",
                      "previous_response_not_found"});
    } else {
      c.messages = bj::parse(*stored).as_array();
      for (const bj::value& m : c.messages) {
        const bj::object& o = m.as_object();
        if (auto it = o.find("tool_calls"); it != o.end()) {
          for (const bj::value& call : it->value().as_array()) {
            c.calls[std::string(call.at("id").as_string())] =
                std::string(call.at("function").at("name").as_string());
          }
        }
        if (auto it = o.find("tool_call_id"); it != o.end()) {
          c.answered.insert(std::string(it->value().as_string()));
        }
      }
    }
  }
  const bj::value* input = r.find("input");
  if (r.ok() && !input) r.fail(missing_field("input"));
  if (r.ok()) {
    if (input->is_string()) {
      bj::object m;
      m["role"] = "user";
      m["content"] = input->get_string();
      c.messages.emplace_back(std::move(m));
    } else if (input->is_array()) {
      const bj::array& items = input->get_array();
      if (items.empty()) r.fail(invalid_value("input", "'input' must not be empty"));
      for (size_t i = 0; i < items.size() && r.ok(); ++i) {
        if (!read_item(r, items[i], fmt::format("input[{}]", i), c)) break;
      }
    } else {
      r.fail(invalid_type("input", fmt::format("'input' must be a string or an array of items, "
                                               "got {}",
                                               json_kind_name(*input))));
    }
  }
  req.conversation_json = bj::serialize(c.messages);
  bj::array messages;
  if (req.instructions) {
    bj::object m;
    m["role"] = "system";
    m["content"] = *req.instructions;
    messages.emplace_back(std::move(m));
  }
  for (const bj::value& m : c.messages) messages.push_back(m);
  chat.messages_json = bj::serialize(messages);
  chat.template_options.add_generation_prompt = true;

  detail::read_sampling_fields(r, ctx, chat.params);
  std::optional<int64_t> default_max;
  if (ctx.max_model_len > 0) default_max = ctx.max_model_len;
  detail::read_token_limits(r, {"max_output_tokens"}, default_max, chat.params);
  req.max_output_tokens = r.integer("max_output_tokens", 1, INT64_MAX);
  bool stream = false;
  if (auto s = r.boolean("stream")) stream = *s;
  if (const bj::object* so = r.object("stream_options")) {
    FieldReader sr(*so, "stream_options");
    sr.reject_unknown({"include_obfuscation"});
    sr.boolean("include_obfuscation");
    if (!sr.ok()) r.fail(sr.error());
  }
  chat.stream = stream;
  read_function_tools(r, req);
  read_tool_choice(r, req);
  read_text(r, req);
  const ToolChoice::Kind k = chat.tool_choice.kind;
  if (r.ok() && chat.params.structured_outputs &&
      (k == ToolChoice::Kind::kRequired || k == ToolChoice::Kind::kNamed)) {
    r.fail(invalid_value("tool_choice",
                         "tool_choice 'required' or a named function constrains "
                         "the output: it cannot be combined with text.format"));
  }
  chat.parallel_tool_calls = r.boolean("parallel_tool_calls").value_or(true);
  if (const bj::object* reasoning = r.object("reasoning")) {
    FieldReader rr(*reasoning, "reasoning");
    rr.reject_unknown({"effort", "summary", "generate_summary"});
    std::optional<std::string> effort = rr.string("effort");
    rr.string("summary");
    rr.string("generate_summary");
    // effort "none": no thinking (Qwen3's enable_thinking = false); other efforts think.
    if (rr.ok() && effort == "none") chat.thinking_disabled = true;
    if (!rr.ok()) r.fail(rr.error());
  }
  if (const bj::object* kw = r.object("chat_template_kwargs")) {
    auto it = kw->find("enable_thinking");
    if (it != kw->end() && it->value().is_bool() && !it->value().get_bool()) {
      chat.thinking_disabled = true;
    }
    chat.template_options.extra_kwargs_json = bj::serialize(*kw);
  }
  if (chat.thinking_disabled && chat.template_options.extra_kwargs_json.empty()) {
    chat.template_options.extra_kwargs_json = R"({"enable_thinking": false})";
  }
  req.store = r.boolean("store").value_or(true);
  if (const bj::object* md = r.object("metadata")) req.metadata_json = bj::serialize(*md);
  if (auto p = r.integer("priority", INT32_MIN, INT32_MAX)) chat.priority = static_cast<int>(*p);
  r.string("user");
  r.string("safety_identifier");
  r.string("prompt_cache_key");
  r.string("prompt_cache_retention");
  r.string("service_tier");
  r.array("include");
  r.integer("max_tool_calls", 0, INT64_MAX);
  reject_unsupported_responses_features(r);
  if (!r.ok()) return r.error();
  return req;
}

}  // namespace kite::server
