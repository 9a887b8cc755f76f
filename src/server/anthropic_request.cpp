#include "server/anthropic_request.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <set>
#include <unordered_map>

#include "server/request_common.h"

namespace kite::server {

namespace bj = boost::json;

namespace {

// Text of a `system` value or a tool_result's content: a string or an array of text blocks.
std::optional<std::string> read_text_blocks(FieldReader& r, const bj::value& v,
                                            const std::string& where) {
  if (v.is_string()) return std::string(v.get_string());
  if (!v.is_array()) {
    r.fail(invalid_type(where, fmt::format("'{}' must be a string or an array of text blocks, got "
                                           "{}",
                                           where, json_kind_name(v))));
    return std::nullopt;
  }
  std::string text;
  const bool ok = read_objects(r, v.get_array(), where, [&](FieldReader& br, size_t i) {
    const std::string& at = br.path_prefix();
    br.reject_unknown({"type", "text", "cache_control", "citations"});
    std::optional<std::string> type = br.string("type");
    std::optional<std::string> t = br.string("text");
    if (br.ok() && type != "text") {
      br.fail(unsupported(at + ".type", fmt::format("'{}' must be a text block here, got type "
                                                    "'{}'",
                                                    at, type.value_or(""))));
    }
    if (br.ok() && !t) br.fail(missing_field(at + ".text"));
    if (!br.ok()) return;
    if (i > 0) text += "\n";
    text += *t;
  });
  if (!ok) return std::nullopt;
  return text;
}

struct Translation {
  bj::array messages;                                  // OpenAI-shaped, for the chat template
  std::unordered_map<std::string, std::string> calls;  // tool_use id -> tool name
  std::set<std::string> answered;                      // tool_use ids with a tool_result
};

// One message of `messages` appended to `t` in the chat template's shape.
bool translate_message(FieldReader& r, const bj::value& mv, const std::string& where,
                       Translation& t) {
  if (!mv.is_object()) {
    r.fail(invalid_type(where, fmt::format("'{}' must be an object", where)));
    return false;
  }
  FieldReader mr(mv.get_object(), where);
  mr.reject_unknown({"role", "content"});
  std::optional<std::string> role = mr.string("role");
  if (mr.ok() && !role) mr.fail(missing_field(where + ".role"));
  if (mr.ok() && *role != "user" && *role != "assistant") {
    mr.fail(invalid_value(where + ".role",
                          fmt::format("'{}.role' must be 'user' or 'assistant', got '{}' (the "
                                      "system prompt goes in the top-level 'system' field)",
                                      where, *role)));
  }
  const bj::value* content = mr.find("content");
  if (mr.ok() && !content) mr.fail(missing_field(where + ".content"));
  if (!mr.ok()) {
    r.fail(mr.error());
    return false;
  }
  const bool user = *role == "user";
  std::string text;
  std::string reasoning;
  bj::array tool_calls;
  bj::array tool_messages;
  if (content->is_string()) {
    text = std::string(content->get_string());
  } else if (!content->is_array()) {
    r.fail(invalid_type(where + ".content",
                        fmt::format("'{}.content' must be a string or an array of content blocks, "
                                    "got {}",
                                    where, json_kind_name(*content))));
    return false;
  } else {
    bool first_text = true;
    const bj::array& blocks = content->get_array();
    for (size_t i = 0; i < blocks.size(); ++i) {
      std::string at = fmt::format("{}.content[{}]", where, i);
      if (!blocks[i].is_object()) {
        r.fail(invalid_type(at, fmt::format("'{}' must be an object", at)));
        return false;
      }
      FieldReader br(blocks[i].get_object(), at);
      std::optional<std::string> type = br.string("type");
      if (br.ok() && !type) br.fail(missing_field(at + ".type"));
      if (!br.ok()) {
        r.fail(br.error());
        return false;
      }
      if (*type == "text") {
        br.reject_unknown({"type", "text", "cache_control", "citations"});
        std::optional<std::string> s = br.string("text");
        if (br.ok() && !s) br.fail(missing_field(at + ".text"));
        if (br.ok()) {
          if (!first_text) text += "\n";
          text += *s;
          first_text = false;
        }
      } else if (*type == "tool_use") {
        br.reject_unknown({"type", "id", "name", "input", "cache_control"});
        std::optional<std::string> id = br.string("id");
        std::optional<std::string> name = br.string("name");
        const bj::object* input = br.object("input");
        if (br.ok() && user) {
          br.fail(invalid_value(at + ".type", "tool_use blocks belong in assistant messages"));
        }
        if (br.ok() && !id) br.fail(missing_field(at + ".id"));
        if (br.ok() && !name) br.fail(missing_field(at + ".name"));
        if (br.ok() && !input) br.fail(missing_field(at + ".input"));
        if (br.ok() && t.calls.contains(*id)) {
          br.fail(invalid_value(at + ".id", fmt::format("tool_use id '{}' is used twice", *id)));
        }
        if (br.ok()) {
          t.calls[*id] = *name;
          bj::object fn;
          fn["name"] = *name;
          fn["arguments"] = *input;
          bj::object call;
          call["id"] = *id;
          call["type"] = "function";
          call["function"] = std::move(fn);
          tool_calls.emplace_back(std::move(call));
        }
      } else if (*type == "tool_result") {
        br.reject_unknown({"type", "tool_use_id", "content", "is_error", "cache_control"});
        std::optional<std::string> id = br.string("tool_use_id");
        br.boolean("is_error");
        if (br.ok() && !user) {
          br.fail(invalid_value(at + ".type", "tool_result blocks belong in user messages"));
        }
        if (br.ok() && !id) br.fail(missing_field(at + ".tool_use_id"));
        if (br.ok() && !t.calls.contains(*id)) {
          br.fail(invalid_value(at + ".tool_use_id",
                                fmt::format("tool_result refers to tool_use id '{}', but no "
                                            "earlier assistant message has a tool_use block "
                                            "with that id",
                                            *id)));
        }
        if (br.ok() && t.answered.contains(*id)) {
          br.fail(invalid_value(at + ".tool_use_id",
                                fmt::format("tool_use id '{}' has two tool_result blocks", *id)));
        }
        std::string result;
        if (br.ok()) {
          if (const bj::value* c = br.find("content")) {
            if (auto s = read_text_blocks(br, *c, at + ".content")) result = std::move(*s);
          }
        }
        if (br.ok()) {
          t.answered.insert(*id);
          bj::object tm;
          tm["role"] = "tool";
          tm["tool_call_id"] = *id;
          tm["name"] = t.calls[*id];
          tm["content"] = result;
          tool_messages.emplace_back(std::move(tm));
        }
      } else if (*type == "thinking" || *type == "redacted_thinking") {
        br.reject_unknown({"type", "thinking", "signature", "data"});
        std::optional<std::string> s = br.string("thinking");
        if (br.ok() && user) {
          br.fail(invalid_value(at + ".type", "thinking blocks belong in assistant messages"));
        }
        if (br.ok() && s) reasoning += *s;
      } else if (*type == "image" || *type == "document" || *type == "search_result" ||
                 *type == "server_tool_use" || *type == "web_search_tool_result" ||
                 *type == "container_upload") {
        br.fail(unsupported(at + ".type",
                            fmt::format("content blocks of type '{}' are not supported (kite "
                                        "serves text, tool_use, tool_result and thinking)",
                                        *type)));
      } else {
        br.fail(invalid_value(at + ".type",
                              fmt::format("unknown content block type '{}' (expected text, "
                                          "tool_use, tool_result or thinking)",
                                          *type)));
      }
      if (!br.ok()) {
        r.fail(br.error());
        return false;
      }
    }
  }
  for (bj::value& m : tool_messages) t.messages.emplace_back(std::move(m));
  if (user && !tool_messages.empty() && text.empty()) return true;
  bj::object m;
  m["role"] = *role;
  m["content"] = text;
  if (!tool_calls.empty()) m["tool_calls"] = std::move(tool_calls);
  if (!reasoning.empty()) m["reasoning_content"] = reasoning;
  t.messages.emplace_back(std::move(m));
  return true;
}

// tools: [{name, description, input_schema}] -> function tools (req.tools and the template's
// tools_json in OpenAI's shape).
void read_anthropic_tools(FieldReader& r, ChatCompletionRequest& req) {
  const bj::array* tools = r.array("tools");
  if (!tools) return;
  bj::array openai_tools;
  std::set<std::string> names;
  read_objects(r, *tools, "tools", [&](FieldReader& tr, size_t) {
    const std::string& at = tr.path_prefix();
    std::optional<std::string> type = tr.string("type");
    if (tr.ok() && type && *type != "custom") {
      tr.fail(unsupported(at + ".type",
                          fmt::format("server tools ('{}') are not supported; give custom tools "
                                      "with name, description and input_schema",
                                      *type)));
    }
    tr.reject_unknown({"type", "name", "description", "input_schema", "cache_control"});
    std::optional<std::string> name = tr.string("name");
    std::optional<std::string> description = tr.string("description");
    const bj::object* schema = tr.object("input_schema");
    if (tr.ok() && !name) tr.fail(missing_field(at + ".name"));
    if (tr.ok() && !schema) tr.fail(missing_field(at + ".input_schema"));
    if (tr.ok() && !names.insert(*name).second) {
      tr.fail(invalid_value(at + ".name", fmt::format("tool name '{}' is used twice", *name)));
    }
    if (!tr.ok()) return;
    req.tools.push_back({*name, bj::serialize(*schema)});
    bj::object fn;
    fn["name"] = *name;
    if (description) fn["description"] = *description;
    fn["parameters"] = *schema;
    bj::object tool;
    tool["type"] = "function";
    tool["function"] = std::move(fn);
    openai_tools.emplace_back(std::move(tool));
  });
  req.template_options.tools_json = bj::serialize(openai_tools);
}

void read_anthropic_tool_choice(FieldReader& r, ChatCompletionRequest& req) {
  if (!r.ok()) return;
  req.tool_choice.kind = req.tools.empty() ? ToolChoice::Kind::kNone : ToolChoice::Kind::kAuto;
  const bj::object* tc = r.object("tool_choice");
  if (!tc) return;
  FieldReader cr(*tc, "tool_choice");
  cr.reject_unknown({"type", "name", "disable_parallel_tool_use"});
  std::optional<std::string> type = cr.string("type");
  std::optional<std::string> name = cr.string("name");
  if (auto d = cr.boolean("disable_parallel_tool_use")) req.parallel_tool_calls = !*d;
  if (cr.ok() && !type) cr.fail(missing_field("tool_choice.type"));
  if (cr.ok()) {
    if (*type == "auto") {
      req.tool_choice.kind = ToolChoice::Kind::kAuto;
    } else if (*type == "any") {
      req.tool_choice.kind = ToolChoice::Kind::kRequired;
    } else if (*type == "none") {
      req.tool_choice.kind = ToolChoice::Kind::kNone;
    } else if (*type == "tool") {
      req.tool_choice.kind = ToolChoice::Kind::kNamed;
      if (!name) {
        cr.fail(missing_field("tool_choice.name"));
      } else {
        req.tool_choice.name = *name;
      }
    } else {
      cr.fail(invalid_value("tool_choice.type",
                            fmt::format("'tool_choice.type' must be auto, any, tool or none, got "
                                        "'{}'",
                                        *type)));
    }
  }
  const ToolChoice::Kind k = req.tool_choice.kind;
  if (cr.ok() && (k == ToolChoice::Kind::kRequired || k == ToolChoice::Kind::kNamed) &&
      req.tools.empty()) {
    cr.fail(invalid_value("tool_choice", fmt::format("tool_choice '{}' requires 'tools'", *type)));
  }
  if (cr.ok() && k == ToolChoice::Kind::kNamed) {
    bool found = false;
    for (const ToolFunction& f : req.tools) found = found || f.name == req.tool_choice.name;
    if (!found) {
      cr.fail(invalid_value("tool_choice.name",
                            fmt::format("'tool_choice' names tool '{}', which is not in 'tools'",
                                        req.tool_choice.name)));
    }
  }
  if (!cr.ok()) r.fail(cr.error());
}

}  // namespace

ApiResult<ChatCompletionRequest> parse_messages_request(std::string_view body,
                                                        const ParseContext& ctx) {
  ApiResult<bj::object> doc = detail::parse_body(body);
  if (!doc.ok()) return doc.error();
  FieldReader r(doc.value());
  r.reject_unknown({"model", "messages", "max_tokens", "system", "stop_sequences", "stream",
                    "temperature", "top_p", "top_k", "tools", "tool_choice", "metadata", "thinking",
                    "output_config", "service_tier",
                    // kite extensions (vLLM's sampling fields)
                    "seed", "logit_bias", "min_p", "repetition_penalty", "min_tokens",
                    "stop_token_ids", "ignore_eos"});
  ChatCompletionRequest req;
  req.params = ctx.default_sampling;
  if (auto m = detail::read_model(r, ctx)) req.model = std::move(*m);

  Translation t;
  if (const bj::value* system = r.find("system")) {
    if (auto s = read_text_blocks(r, *system, "system")) {
      bj::object m;
      m["role"] = "system";
      m["content"] = *s;
      t.messages.emplace_back(std::move(m));
    }
  }
  const bj::value* messages = r.find("messages");
  if (r.ok() && !messages) r.fail(missing_field("messages"));
  if (r.ok() && !messages->is_array()) {
    r.fail(invalid_type(
        "messages", fmt::format("'messages' must be an array, got {}", json_kind_name(*messages))));
  }
  if (r.ok() && messages->get_array().empty()) {
    r.fail(invalid_value("messages", "'messages' must hold at least one message"));
  }
  bool prefill = false;
  if (r.ok()) {
    const bj::array& msgs = messages->get_array();
    for (size_t i = 0; i < msgs.size(); ++i) {
      if (!translate_message(r, msgs[i], fmt::format("messages[{}]", i), t)) break;
    }
    if (r.ok()) {
      const bj::object& last = msgs.back().get_object();
      prefill = last.at("role").as_string() == "assistant";
    }
  }
  req.messages_json = bj::serialize(t.messages);
  req.template_options.add_generation_prompt = !prefill;
  req.continue_final_message = prefill;

  detail::read_sampling_fields(r, ctx, req.params);  // temperature, top_p, top_k + extensions
  if (!r.has("max_tokens") && r.ok()) r.fail(missing_field("max_tokens"));
  detail::read_token_limits(r, {"max_tokens"}, std::nullopt, req.params);
  if (const bj::array* stops = r.array("stop_sequences")) {
    for (size_t i = 0; i < stops->size(); ++i) {
      std::string at = fmt::format("stop_sequences[{}]", i);
      if (!(*stops)[i].is_string() || (*stops)[i].get_string().empty()) {
        r.fail(invalid_value(at, fmt::format("'{}' must be a non-empty string", at)));
        break;
      }
      req.params.stop.emplace_back((*stops)[i].get_string());
    }
  }
  req.stream = r.boolean("stream").value_or(false);
  read_anthropic_tools(r, req);
  read_anthropic_tool_choice(r, req);
  if (const bj::object* thinking = r.object("thinking")) {
    FieldReader tr(*thinking, "thinking");
    std::optional<std::string> type = tr.string("type");
    tr.integer("budget_tokens", 1, INT64_MAX);
    if (tr.ok() && type != "enabled" && type != "disabled" && type != "adaptive" &&
        type != "between_tools") {
      tr.fail(invalid_value("thinking.type",
                            "'thinking.type' must be enabled, disabled, adaptive "
                            "or between_tools"));
    }
    if (!tr.ok()) r.fail(tr.error());
    if (r.ok() && *type == "disabled") {
      req.thinking_disabled = true;
      req.template_options.extra_kwargs_json = R"({"enable_thinking": false})";
    }
  }
  // output_config.format {type: json_schema, schema} constrains the text; effort is accepted.
  if (const bj::object* oc = r.object("output_config")) {
    FieldReader orr(*oc, "output_config");
    orr.reject_unknown({"effort", "format"});
    orr.string("effort");
    if (const bj::object* format = orr.object("format")) {
      FieldReader fr(*format, "output_config.format");
      fr.reject_unknown({"type", "schema"});
      std::optional<std::string> type = fr.string("type");
      const bj::object* schema = fr.object("schema");
      if (fr.ok() && type != "json_schema") {
        fr.fail(invalid_value("output_config.format.type",
                              "'output_config.format.type' must be 'json_schema'"));
      }
      if (fr.ok() && !schema) fr.fail(missing_field("output_config.format.schema"));
      if (fr.ok()) {
        StructuredOutputs so;
        so.json = bj::serialize(*schema);
        req.params.structured_outputs = std::move(so);
      }
      if (!fr.ok()) orr.fail(fr.error());
    }
    if (!orr.ok()) r.fail(orr.error());
  }
  const ToolChoice::Kind k = req.tool_choice.kind;
  if (r.ok() && req.params.structured_outputs &&
      (k == ToolChoice::Kind::kRequired || k == ToolChoice::Kind::kNamed)) {
    r.fail(invalid_value("tool_choice",
                         "tool_choice 'any' or 'tool' constrains the output: it "
                         "cannot be combined with output_config.format"));
  }
  r.object("metadata");
  r.string("service_tier");
  if (!r.ok()) return r.error();
  return req;
}

}  // namespace kite::server
