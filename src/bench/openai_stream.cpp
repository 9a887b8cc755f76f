#include "bench/openai_stream.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "core/json_util.h"

namespace kite::bench {

namespace bj = boost::json;

Status validate(const RequestOptions& o) {
  if (o.model.empty()) return invalid_argument("--model (the served model name) is required");
  if (!o.extra_body_json.empty()) {
    Result<bj::value> v = json::parse(o.extra_body_json, "--extra-body");
    if (!v.ok()) return v.status();
    if (!v->is_object()) return invalid_argument("--extra-body must be a JSON object");
  }
  return ok_status();
}

Result<std::vector<std::string>> read_response_formats(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("--response-format-file: cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<bj::value> items;
  boost::system::error_code ec;
  bj::value whole = bj::parse(text, ec);
  if (!ec && whole.is_array()) {
    for (const bj::value& v : whole.get_array()) items.push_back(v);
  } else {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      KITE_ASSIGN_OR_RETURN(bj::value v, json::parse(line, "--response-format-file line"));
      items.push_back(std::move(v));
    }
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_object()) {
      return invalid_argument("--response-format-file: entry " + std::to_string(i) +
                              " is not a JSON object");
    }
    const bj::object& o = items[i].get_object();
    const bj::value* type = o.if_contains("type");
    if (type != nullptr && type->is_string() &&
        (type->get_string() == "json_schema" || type->get_string() == "json_object" ||
         type->get_string() == "text")) {
      out.push_back(bj::serialize(o));
    } else {
      bj::object js;
      js["name"] = "schema_" + std::to_string(i);
      js["schema"] = o;
      out.push_back(bj::serialize(bj::object{{"type", "json_schema"}, {"json_schema", js}}));
    }
  }
  if (out.empty()) return invalid_argument("--response-format-file: no entries in " + path);
  return out;
}

Result<std::string> build_request_body(const RequestOptions& o, const PromptSpec& p,
                                       size_t index) {
  bj::object body;
  body["model"] = o.model;
  if (o.api == ApiKind::kChatCompletions) {
    const std::string* text = std::get_if<std::string>(&p.prompt);
    if (text == nullptr) {
      return invalid_argument(
          "chat requests need text prompts (use a ShareGPT or JSONL dataset with text, or "
          "/v1/completions for token-id prompts)");
    }
    bj::array messages;
    messages.push_back(bj::object{{"role", "user"}, {"content", *text}});
    body["messages"] = std::move(messages);
  } else if (const std::string* text = std::get_if<std::string>(&p.prompt)) {
    body["prompt"] = *text;
  } else {
    bj::array ids;
    for (int32_t id : std::get<std::vector<int32_t>>(p.prompt)) ids.emplace_back(id);
    body["prompt"] = std::move(ids);
  }
  body["max_tokens"] = p.output_len;
  if (o.temperature) body["temperature"] = *o.temperature;
  if (o.top_p) body["top_p"] = *o.top_p;
  if (o.top_k) body["top_k"] = *o.top_k;
  if (o.ignore_eos) body["ignore_eos"] = true;
  body["stream"] = true;
  if (o.include_usage) body["stream_options"] = bj::object{{"include_usage", true}};
  if (!o.response_formats.empty()) {
    body["response_format"] = bj::parse(o.response_formats[index % o.response_formats.size()]);
  }
  if (!o.extra_body_json.empty()) {
    KITE_ASSIGN_OR_RETURN(bj::value extra, json::parse(o.extra_body_json, "--extra-body"));
    if (!extra.is_object()) return invalid_argument("--extra-body must be a JSON object");
    for (const auto& kv : extra.get_object()) body[kv.key()] = kv.value();
  }
  return bj::serialize(body);
}

namespace {

bool non_empty_string(const bj::object& o, std::string_view key) {
  const bj::value* v = o.if_contains(key);
  return v && v->is_string() && !v->get_string().empty();
}

bool non_empty_array(const bj::object& o, std::string_view key) {
  const bj::value* v = o.if_contains(key);
  return v && v->is_array() && !v->get_array().empty();
}

int64_t int_field(const bj::object& o, std::string_view key) {
  const bj::value* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->get_double());
  return 0;
}

}  // namespace

Result<StreamChunk> parse_stream_chunk(std::string_view data, ApiKind api) {
  StreamChunk c;
  std::string_view trimmed = data;
  while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\n')) {
    trimmed.remove_suffix(1);
  }
  if (trimmed == "[DONE]") {
    c.done = true;
    return c;
  }
  KITE_ASSIGN_OR_RETURN(bj::value v, json::parse(data, "stream chunk"));
  if (!v.is_object()) return invalid_argument("stream chunk is not a JSON object");
  const bj::object& o = v.get_object();
  if (const bj::value* err = o.if_contains("error"); err && !err->is_null()) {
    if (err->is_object()) {
      const bj::value* msg = err->get_object().if_contains("message");
      c.error = msg && msg->is_string() ? std::string(msg->get_string()) : bj::serialize(*err);
    } else if (err->is_string()) {
      c.error = std::string(err->get_string());
    } else {
      c.error = bj::serialize(*err);
    }
  }
  if (const bj::value* choices = o.if_contains("choices"); choices && choices->is_array()) {
    for (const bj::value& ch : choices->get_array()) {
      if (!ch.is_object()) continue;
      const bj::object& choice = ch.get_object();
      if (api == ApiKind::kChatCompletions) {
        const bj::value* delta = choice.if_contains("delta");
        if (delta && delta->is_object()) {
          const bj::object& d = delta->get_object();
          c.has_content |= non_empty_string(d, "content") ||
                           non_empty_string(d, "reasoning_content") ||
                           non_empty_string(d, "reasoning") || non_empty_array(d, "tool_calls");
        }
      } else {
        c.has_content |= non_empty_string(choice, "text") || non_empty_array(choice, "token_ids");
      }
      const bj::value* fr = choice.if_contains("finish_reason");
      if (c.finish_reason.empty() && fr && fr->is_string()) c.finish_reason = fr->get_string();
    }
  }
  if (const bj::value* usage = o.if_contains("usage"); usage && usage->is_object()) {
    c.has_usage = true;
    c.prompt_tokens = int_field(usage->get_object(), "prompt_tokens");
    c.completion_tokens = int_field(usage->get_object(), "completion_tokens");
  }
  return c;
}

}  // namespace kite::bench
