#include "server/request_common.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <unordered_set>

namespace kite::server::detail {

namespace bj = boost::json;

ApiResult<bj::object> parse_body(std::string_view body) {
  bj::parse_options opts;
  opts.max_depth = 64;
  boost::system::error_code ec;
  bj::value v = bj::parse(body, ec, {}, opts);
  if (ec) {
    return ApiError{400, fmt::format("Request body is not valid JSON: {}", ec.message()),
                    "invalid_request_error", "", "invalid_json"};
  }
  if (!v.is_object()) {
    return ApiError{400,
                    fmt::format("Request body must be a JSON object, got {}", json_kind_name(v)),
                    "invalid_request_error", "", "invalid_type"};
  }
  return std::move(v.get_object());
}

std::optional<std::string> read_model(FieldReader& r, const ParseContext& ctx) {
  std::optional<std::string> model = r.string("model");
  if (!r.ok()) return std::nullopt;
  if (!model) return ctx.served_model_names.empty() ? std::string() : ctx.served_model_names[0];
  const auto& names = ctx.served_model_names;
  if (std::find(names.begin(), names.end(), *model) == names.end()) {
    r.fail(model_not_found(*model));
    return std::nullopt;
  }
  return model;
}

namespace {

void read_stop(FieldReader& r, SamplingParams& p) {
  const bj::value* v = r.find("stop");
  if (!v) return;
  auto add = [&](const bj::value& s, const std::string& param) {
    if (!s.is_string()) {
      r.fail(invalid_type(param, fmt::format("'{}' must be a string or an array of strings, got {}",
                                             param, json_kind_name(s))));
      return;
    }
    if (s.get_string().empty()) {
      r.fail(invalid_value(param, fmt::format("'{}' must not be an empty string", param)));
      return;
    }
    p.stop.emplace_back(s.get_string());
  };
  p.stop.clear();
  if (v->is_array()) {
    const bj::array& a = v->get_array();
    for (size_t i = 0; i < a.size() && r.ok(); ++i) {
      add(a[i], fmt::format("stop[{}]", i));
    }
  } else {
    add(*v, "stop");
  }
}

void read_logit_bias(FieldReader& r, const ParseContext& ctx, SamplingParams& p) {
  const bj::object* lb = r.object("logit_bias");
  if (!lb) return;
  p.logit_bias.clear();
  p.logit_bias.reserve(lb->size());
  std::unordered_set<long long> seen;  // duplicates ("5" and "05") in O(1) each
  seen.reserve(lb->size());
  for (const auto& kv : *lb) {
    std::string key(kv.key());
    std::string param = "logit_bias";
    char* end = nullptr;
    errno = 0;
    long long id = key.empty() ? -1 : std::strtoll(key.c_str(), &end, 10);
    if (key.empty() || errno != 0 || *end != '\0' || id < 0 ||
        (ctx.vocab_size > 0 && id >= ctx.vocab_size) || id > INT32_MAX) {
      r.fail(invalid_value(param, fmt::format("'logit_bias' keys must be token ids in [0, {}), "
                                              "got '{}'",
                                              ctx.vocab_size, key)));
      return;
    }
    const bj::value& bias = kv.value();
    double b = 0;
    if (bias.is_double()) {
      b = bias.get_double();
    } else if (bias.is_int64()) {
      b = static_cast<double>(bias.get_int64());
    } else if (bias.is_uint64()) {
      b = static_cast<double>(bias.get_uint64());
    } else {
      r.fail(invalid_type(param, fmt::format("'logit_bias' values must be numbers, got {} for "
                                             "token {}",
                                             json_kind_name(bias), key)));
      return;
    }
    if (!(b >= -100.0 && b <= 100.0)) {
      r.fail(invalid_value(param, fmt::format("'logit_bias' values must be between -100 and 100, "
                                              "got {} for token {}",
                                              format_number(b), key)));
      return;
    }
    if (!seen.insert(id).second) {
      r.fail(invalid_value(param, fmt::format("'logit_bias' lists token {} twice", id)));
      return;
    }
    p.logit_bias.emplace_back(static_cast<int32_t>(id), static_cast<float>(b));
  }
}

}  // namespace

std::optional<std::vector<int32_t>> read_token_ids(FieldReader& r, const bj::value& v,
                                                   const std::string& param, int64_t vocab_size,
                                                   bool allow_empty) {
  if (!v.is_array()) {
    r.fail(invalid_type(param, fmt::format("'{}' must be an array of token ids, got {}", param,
                                           json_kind_name(v))));
    return std::nullopt;
  }
  const bj::array& a = v.get_array();
  if (a.empty() && !allow_empty) {
    r.fail(invalid_value(param, fmt::format("'{}' must not be empty", param)));
    return std::nullopt;
  }
  std::vector<int32_t> ids;
  ids.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    std::optional<int64_t> id = as_integer(a[i]);
    std::string where = fmt::format("{}[{}]", param, i);
    if (!id) {
      r.fail(invalid_type(where, fmt::format("'{}' must be an integer token id, got {}", where,
                                             json_kind_name(a[i]))));
      return std::nullopt;
    }
    int64_t hi = vocab_size > 0 ? vocab_size : int64_t{INT32_MAX} + 1;
    if (*id < 0 || *id >= hi) {
      r.fail(invalid_value(where, fmt::format("'{}': token id {} is out of the vocabulary [0, {})",
                                              where, *id, hi)));
      return std::nullopt;
    }
    ids.push_back(static_cast<int32_t>(*id));
  }
  return ids;
}

void read_sampling_fields(FieldReader& r, const ParseContext& ctx, SamplingParams& p) {
  constexpr double kInf = FieldReader::kInf;
  if (auto n = r.integer("n", 1, kMaxChoices)) p.n = static_cast<int>(*n);
  if (auto t = r.number("temperature", 0.0, kInf)) p.temperature = *t;
  if (auto v = r.number("top_p", 0.0, 1.0)) {
    if (*v <= 0.0) {
      r.fail(invalid_value("top_p", "'top_p' must be in (0, 1], got 0"));
    } else {
      p.top_p = *v;
    }
  }
  if (auto v = r.integer("top_k", -1, INT32_MAX)) p.top_k = static_cast<int>(*v);
  if (auto v = r.number("min_p", 0.0, 1.0)) p.min_p = *v;
  if (auto v = r.number("repetition_penalty", 0.0, kInf)) {
    if (*v <= 0.0) {
      r.fail(invalid_value("repetition_penalty", "'repetition_penalty' must be > 0, got 0"));
    } else {
      p.repetition_penalty = *v;
    }
  }
  if (auto v = r.number("presence_penalty", -2.0, 2.0)) p.presence_penalty = *v;
  if (auto v = r.number("frequency_penalty", -2.0, 2.0)) p.frequency_penalty = *v;
  read_logit_bias(r, ctx, p);
  if (auto v = r.seed("seed")) p.seed = *v;
  read_stop(r, p);
  if (const bj::value* v = r.find("stop_token_ids")) {
    if (auto ids = read_token_ids(r, *v, "stop_token_ids", ctx.vocab_size, true)) {
      p.stop_token_ids = std::move(*ids);
    }
  }
  if (auto v = r.boolean("ignore_eos")) p.ignore_eos = *v;
  if (auto v = r.boolean("skip_special_tokens")) p.skip_special_tokens = *v;
  if (auto v = r.boolean("spaces_between_special_tokens")) p.spaces_between_special_tokens = *v;
  if (auto v = r.boolean("include_stop_str_in_output")) p.include_stop_str_in_output = *v;
  if (auto v = r.integer("prompt_logprobs", 0, kMaxLogprobs)) {
    p.prompt_logprobs = static_cast<int>(*v);
  }
}

void read_token_limits(FieldReader& r, std::initializer_list<std::string_view> max_keys,
                       std::optional<int64_t> default_max, SamplingParams& p) {
  std::optional<int64_t> max_tokens;
  for (std::string_view key : max_keys) {
    std::optional<int64_t> v = r.integer(key, 1, INT64_MAX);
    if (v && !max_tokens) max_tokens = v;
  }
  if (max_tokens) {
    p.max_tokens = *max_tokens;
  } else if (default_max) {
    p.max_tokens = *default_max;
  }
  if (auto v = r.integer("min_tokens", 0, INT64_MAX)) {
    if (*v > p.max_tokens) {
      r.fail(invalid_value("min_tokens", fmt::format("'min_tokens' ({}) must not exceed "
                                                     "max_tokens ({})",
                                                     *v, p.max_tokens)));
    } else {
      p.min_tokens = *v;
    }
  }
}

void read_stream(FieldReader& r, bool& stream, StreamOptions& opts) {
  stream = r.boolean("stream").value_or(false);
  const bj::object* so = r.object("stream_options");
  if (!so || !r.ok()) return;
  if (!stream) {
    r.fail(
        invalid_value("stream_options", "'stream_options' is only allowed when 'stream' is true"));
    return;
  }
  FieldReader sr(*so, "stream_options");
  sr.reject_unknown({"include_usage", "continuous_usage_stats"});
  opts.include_usage = sr.boolean("include_usage").value_or(false);
  opts.continuous_usage_stats = sr.boolean("continuous_usage_stats").value_or(false);
  if (!sr.ok()) r.fail(sr.error());
}

namespace {

// A JSON schema given as an object (or a string holding one, as vLLM's guided_json allows).
std::optional<std::string> schema_text(FieldReader& r, const bj::value& v, const std::string& param) {
  if (v.is_object() || v.is_bool()) return bj::serialize(v);
  if (v.is_string()) {
    boost::system::error_code ec;
    bj::value parsed = bj::parse(v.get_string(), ec);
    if (ec || !(parsed.is_object() || parsed.is_bool())) {
      r.fail(invalid_value(param, fmt::format("'{}' is not a valid JSON schema (not a JSON object)",
                                              param)));
      return std::nullopt;
    }
    return bj::serialize(parsed);
  }
  r.fail(invalid_type(param, fmt::format("'{}' must be a JSON schema object, got {}", param,
                                         json_kind_name(v))));
  return std::nullopt;
}

std::optional<std::vector<std::string>> string_list(FieldReader& r, const bj::value& v,
                                                    const std::string& param) {
  if (!v.is_array() || v.get_array().empty()) {
    r.fail(invalid_value(param, fmt::format("'{}' must be a non-empty array of strings", param)));
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const bj::value& x : v.get_array()) {
    if (!x.is_string() || x.get_string().empty()) {
      r.fail(invalid_value(param, fmt::format("'{}' must hold non-empty strings", param)));
      return std::nullopt;
    }
    out.emplace_back(x.get_string());
  }
  return out;
}

// Adds one constraint source; two sources conflict.
void set_constraint(FieldReader& r, std::optional<StructuredOutputs>& so, std::string& source,
                    const std::string& param, StructuredOutputs next) {
  if (so) {
    r.fail(invalid_value(param, fmt::format("'{}' conflicts with '{}': give one output constraint",
                                            param, source)));
    return;
  }
  so = std::move(next);
  source = param;
}

}  // namespace

void read_structured_outputs(FieldReader& r, SamplingParams& p) {
  std::optional<StructuredOutputs> so;
  std::string source;
  if (const bj::object* rf = r.object("response_format")) {
    FieldReader fr(*rf, "response_format");
    fr.reject_unknown({"type", "json_schema", "schema"});
    std::optional<std::string> type = fr.string("type");
    if (fr.ok() && !type) fr.fail(missing_field("response_format.type"));
    if (fr.ok() && *type == "json_object") {
      StructuredOutputs x;
      x.json_object = true;
      set_constraint(r, so, source, "response_format", std::move(x));
    } else if (fr.ok() && *type == "json_schema") {
      const bj::object* js = fr.object("json_schema");
      if (fr.ok() && !js) fr.fail(missing_field("response_format.json_schema"));
      if (fr.ok()) {
        FieldReader jr(*js, "response_format.json_schema");
        jr.reject_unknown({"name", "description", "schema", "strict"});
        jr.string("name");
        jr.string("description");
        jr.boolean("strict");  // the grammar enforces the schema either way
        const bj::value* schema = jr.find("schema");
        if (jr.ok() && !schema) jr.fail(missing_field("response_format.json_schema.schema"));
        if (jr.ok()) {
          if (auto text = schema_text(jr, *schema, "response_format.json_schema.schema")) {
            StructuredOutputs x;
            x.json = std::move(*text);
            set_constraint(r, so, source, "response_format", std::move(x));
          }
        }
        if (!jr.ok()) fr.fail(jr.error());
      }
    } else if (fr.ok() && *type != "text") {
      fr.fail(invalid_value("response_format.type",
                            fmt::format("response_format type '{}' is not one of text, "
                                        "json_object, json_schema",
                                        *type)));
    }
    if (!fr.ok()) r.fail(fr.error());
  }
  if (const bj::object* sob = r.object("structured_outputs")) {
    FieldReader sr(*sob, "structured_outputs");
    sr.reject_unknown({"json", "regex", "choice", "grammar", "json_object",
                       "disable_any_whitespace", "disable_fallback",
                       "disable_additional_properties", "whitespace_pattern", "structural_tag"});
    StructuredOutputs x;
    if (const bj::value* j = sr.find("json")) {
      if (auto t = schema_text(sr, *j, "structured_outputs.json")) x.json = std::move(*t);
    }
    x.regex = sr.string("regex");
    if (const bj::value* c = sr.find("choice")) x.choice = string_list(sr, *c, "structured_outputs.choice");
    x.grammar = sr.string("grammar");
    x.json_object = sr.boolean("json_object").value_or(false);
    x.disable_any_whitespace = sr.boolean("disable_any_whitespace").value_or(false);
    sr.boolean("disable_fallback");
    sr.boolean("disable_additional_properties");
    if (sr.has("whitespace_pattern") || sr.has("structural_tag")) {
      sr.fail(unsupported("structured_outputs",
                          "structured_outputs.whitespace_pattern and structural_tag are not "
                          "supported"));
    }
    if (sr.ok() && x.num_constraints() != 1) {
      sr.fail(invalid_value("structured_outputs",
                            x.num_constraints() == 0
                                ? "'structured_outputs' must set one of json, regex, choice, "
                                  "grammar, json_object"
                                : "'structured_outputs' sets more than one of json, regex, "
                                  "choice, grammar, json_object: give one"));
    }
    if (!sr.ok()) {
      r.fail(sr.error());
    } else {
      set_constraint(r, so, source, "structured_outputs", std::move(x));
    }
  }
  // vLLM's older guided_* fields.
  if (const bj::value* g = r.find("guided_json")) {
    if (auto t = schema_text(r, *g, "guided_json")) {
      StructuredOutputs x;
      x.json = std::move(*t);
      set_constraint(r, so, source, "guided_json", std::move(x));
    }
  }
  if (auto g = r.string("guided_regex")) {
    StructuredOutputs x;
    x.regex = std::move(*g);
    set_constraint(r, so, source, "guided_regex", std::move(x));
  }
  if (const bj::value* g = r.find("guided_choice")) {
    if (auto c = string_list(r, *g, "guided_choice")) {
      StructuredOutputs x;
      x.choice = std::move(*c);
      set_constraint(r, so, source, "guided_choice", std::move(x));
    }
  }
  if (auto g = r.string("guided_grammar")) {
    StructuredOutputs x;
    x.grammar = std::move(*g);
    set_constraint(r, so, source, "guided_grammar", std::move(x));
  }
  if (auto backend = r.string("guided_decoding_backend")) {
    if (*backend != "xgrammar" && *backend != "auto") {
      r.fail(unsupported("guided_decoding_backend",
                         "guided_decoding_backend must be 'xgrammar' or 'auto' (kite's grammar "
                         "engine is xgrammar)"));
    }
  }
  if (r.has("guided_whitespace_pattern")) {
    r.fail(unsupported("guided_whitespace_pattern", "'guided_whitespace_pattern' is not supported"));
  }
  if (r.ok() && so) p.structured_outputs = std::move(so);
}

void reject_unsupported_features(FieldReader& r, bool allow_beam_search) {
  if (r.has("best_of")) {
    std::optional<int64_t> best_of = r.integer("best_of", 1, kMaxChoices);
    std::optional<int64_t> n = r.integer("n", 1, kMaxChoices);
    if (best_of && *best_of != n.value_or(1)) {
      r.fail(unsupported("best_of", "'best_of' different from 'n' is not supported"));
    }
  }
  if (auto suffix = r.string("suffix"); suffix && !suffix->empty()) {
    r.fail(unsupported("suffix", "'suffix' is not supported"));
  }
  if (!allow_beam_search && r.boolean("use_beam_search").value_or(false)) {
    r.fail(unsupported("use_beam_search", "beam search is not supported"));
  }
  for (std::string_view key :
       {"functions", "function_call", "audio", "prediction", "web_search_options"}) {
    if (r.has(key)) {
      r.fail(unsupported(std::string(key), fmt::format("'{}' is not supported", key)));
    }
  }
  if (const bj::array* mod = r.array("modalities")) {
    for (const auto& m : *mod) {
      if (!m.is_string() || m.get_string() != "text") {
        r.fail(unsupported("modalities", "only the 'text' modality is supported"));
        break;
      }
    }
  }
}

namespace {

// Content of one message: a string, null, or an array of parts whose text parts are joined.
std::optional<bj::value> read_content(const bj::value& content, const std::string& param,
                                      FieldReader& r) {
  if (content.is_string() || content.is_null()) return content;
  if (!content.is_array()) {
    r.fail(invalid_type(param, fmt::format("'{}' must be a string or an array of content parts, "
                                           "got {}",
                                           param, json_kind_name(content))));
    return std::nullopt;
  }
  std::string text;
  bool first = true;
  const bj::array& parts = content.get_array();
  for (size_t j = 0; j < parts.size(); ++j) {
    std::string where = fmt::format("{}[{}]", param, j);
    if (!parts[j].is_object()) {
      r.fail(invalid_type(where, fmt::format("'{}' must be an object", where)));
      return std::nullopt;
    }
    FieldReader pr(parts[j].get_object(), where);
    std::optional<std::string> type = pr.string("type");
    if (pr.ok() && !type) pr.fail(missing_field(fmt::format("{}.type", where)));
    if (!pr.ok()) {
      r.fail(pr.error());
      return std::nullopt;
    }
    if (*type == "text") {
      pr.reject_unknown({"type", "text"});
      std::optional<std::string> t = pr.string("text");
      if (pr.ok() && !t) pr.fail(missing_field(fmt::format("{}.text", where)));
      if (!pr.ok()) {
        r.fail(pr.error());
        return std::nullopt;
      }
      if (!first) text += "\n";
      text += *t;
      first = false;
    } else if (*type == "refusal") {
      continue;
    } else if (*type == "image_url" || *type == "input_audio" || *type == "file" ||
               *type == "video_url" || *type == "audio_url") {
      r.fail(unsupported(fmt::format("{}.type", where),
                         fmt::format("content part type '{}' is not supported: kite serves "
                                     "text-only models",
                                     *type)));
      return std::nullopt;
    } else {
      r.fail(invalid_value(fmt::format("{}.type", where),
                           fmt::format("unknown content part type '{}'", *type)));
      return std::nullopt;
    }
  }
  return bj::value(text);
}

}  // namespace

std::optional<std::string> read_messages(FieldReader& r) {
  const bj::value* v = r.find("messages");
  if (!v) {
    if (r.ok()) r.fail(missing_field("messages"));
    return std::nullopt;
  }
  if (!v->is_array()) {
    r.fail(invalid_type("messages",
                        fmt::format("'messages' must be an array, got {}", json_kind_name(*v))));
    return std::nullopt;
  }
  const bj::array& msgs = v->get_array();
  if (msgs.empty()) {
    r.fail(invalid_value("messages", "'messages' must hold at least one message"));
    return std::nullopt;
  }
  bj::array out;
  out.reserve(msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) {
    std::string where = fmt::format("messages[{}]", i);
    if (!msgs[i].is_object()) {
      r.fail(invalid_type(
          where, fmt::format("'{}' must be an object, got {}", where, json_kind_name(msgs[i]))));
      return std::nullopt;
    }
    const bj::object& m = msgs[i].get_object();
    FieldReader mr(m, where);
    mr.reject_unknown({"role", "content", "name", "tool_calls", "tool_call_id", "refusal",
                       "reasoning_content", "reasoning", "function_call"});
    std::optional<std::string> role = mr.string("role");
    if (mr.ok() && !role) mr.fail(missing_field(fmt::format("{}.role", where)));
    if (mr.ok() && *role != "system" && *role != "developer" && *role != "user" &&
        *role != "assistant" && *role != "tool") {
      mr.fail(invalid_value(fmt::format("{}.role", where),
                            fmt::format("'{}.role' must be one of system, developer, user, "
                                        "assistant, tool; got '{}'",
                                        where, *role)));
    }
    mr.string("name");
    mr.string("tool_call_id");
    mr.array("tool_calls");
    if (!mr.ok()) {
      r.fail(mr.error());
      return std::nullopt;
    }
    bj::object nm;
    nm["role"] = *role;
    auto content_it = m.find("content");
    bj::value content = content_it == m.end() ? bj::value(nullptr) : content_it->value();
    if (content.is_null() && *role != "assistant") {
      r.fail(missing_field(fmt::format("{}.content", where)));
      return std::nullopt;
    }
    std::optional<bj::value> c = read_content(content, fmt::format("{}.content", where), r);
    if (!c) return std::nullopt;
    nm["content"] = std::move(*c);
    for (std::string_view key :
         {"name", "tool_calls", "tool_call_id", "reasoning_content", "reasoning"}) {
      auto it = m.find(key);
      if (it != m.end() && !it->value().is_null()) nm[key] = it->value();
    }
    out.emplace_back(std::move(nm));
  }
  return bj::serialize(out);
}

std::string read_cache_salt(FieldReader& r) {
  std::optional<std::string> salt = r.string("cache_salt");
  if (salt && salt->empty()) {
    r.fail(invalid_value("cache_salt", "'cache_salt' must be a non-empty string"));
  }
  return salt.value_or("");
}

std::optional<ApiError> check_choices(const ParseContext& ctx, int64_t num_prompts, int n) {
  const int64_t choices = num_prompts * n;
  if (ctx.max_choices_per_request <= 0 || choices <= ctx.max_choices_per_request) {
    return std::nullopt;
  }
  return invalid_value("n", fmt::format("the request asks for {} prompt(s) × n = {} = {} "
                                        "sequences; the server takes at most {} per request "
                                        "(--max-choices-per-request)",
                                        num_prompts, n, choices, ctx.max_choices_per_request));
}

void read_template_options(FieldReader& r, ChatTemplateOptions& opts, bool& continue_final) {
  opts.add_generation_prompt = r.boolean("add_generation_prompt").value_or(true);
  continue_final = r.boolean("continue_final_message").value_or(false);
  if (continue_final && opts.add_generation_prompt && r.has("add_generation_prompt")) {
    r.fail(invalid_value("continue_final_message",
                         "'continue_final_message' and 'add_generation_prompt' cannot both be "
                         "true"));
  }
  if (continue_final) opts.add_generation_prompt = false;
  if (auto t = r.string("chat_template")) {
    if (t->empty()) {
      r.fail(invalid_value("chat_template", "'chat_template' must not be empty"));
    } else {
      opts.chat_template = std::move(*t);
    }
  }
  if (const bj::object* kw = r.object("chat_template_kwargs")) {
    opts.extra_kwargs_json = bj::serialize(*kw);
  }
  if (const bj::array* tools = r.array("tools")) {
    for (size_t i = 0; i < tools->size() && r.ok(); ++i) {
      std::string where = fmt::format("tools[{}]", i);
      if (!(*tools)[i].is_object()) {
        r.fail(invalid_type(where, fmt::format("'{}' must be an object", where)));
        break;
      }
      FieldReader tr((*tools)[i].get_object(), where);
      std::optional<std::string> type = tr.string("type");
      const bj::object* fn = tr.object("function");
      if (tr.ok() && type && *type != "function") {
        tr.fail(invalid_value(fmt::format("{}.type", where),
                              "only tools of type 'function' are supported"));
      }
      if (tr.ok() && !fn) tr.fail(missing_field(fmt::format("{}.function", where)));
      if (tr.ok()) {
        FieldReader fr(*fn, fmt::format("{}.function", where));
        std::optional<std::string> name = fr.string("name");
        if (fr.ok() && !name) fr.fail(missing_field(fmt::format("{}.function.name", where)));
        if (!fr.ok()) tr.fail(fr.error());
      }
      if (!tr.ok()) r.fail(tr.error());
    }
    if (r.ok()) opts.tools_json = bj::serialize(*tools);
  }
}

}  // namespace kite::server::detail
