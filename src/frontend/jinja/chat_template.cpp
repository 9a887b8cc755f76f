#include "frontend/jinja/chat_template.h"

#include <functional>
#include <new>

#include "frontend/jinja/json_value.h"
#include "frontend/jinja/lexer.h"
#include "frontend/jinja/parser.h"
#include "frontend/jinja/render_string.h"
#include "frontend/jinja/renderer.h"
#include "frontend/jinja/unicode.h"

namespace kite {

struct jinja::ChatTemplateAccess {
  static const Program& program(const ChatTemplate& t) { return *t.program_; }
};

namespace {

constexpr size_t kMaxTemplateBytes = size_t{4} << 20;
constexpr unsigned kMaxJsonDepth = 256;

using jinja::ErrorKind;
using jinja::TemplateError;

// "line 3, column 7" (1-based; columns count code points).
std::string position(const std::string& source, size_t offset) {
  offset = std::min(offset, source.size());
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (source[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  const size_t column =
      1 + jinja::unicode::length(std::string_view(source).substr(line_start, offset - line_start));
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

Status to_status(const TemplateError& e, const std::string& source) {
  const std::string where =
      e.offset() == jinja::kNoOffset ? std::string() : " at " + position(source, e.offset());
  switch (e.kind()) {
    case ErrorKind::kSyntax:
      return invalid_argument("chat template syntax error" + where + ": " + e.message());
    case ErrorKind::kUnsupported:
      return unimplemented("chat template uses a feature kite does not support" + where + ": " +
                           e.message());
    case ErrorKind::kRaised:
      return invalid_argument("chat template raised an exception" + where + ": " + e.message());
    case ErrorKind::kLimit:
      return out_of_range("chat template stopped" + where + ": " + e.message());
    case ErrorKind::kUndefined:
    case ErrorKind::kSecurity:
    case ErrorKind::kType:
      break;
  }
  return invalid_argument("chat template error" + where + ": " + e.message());
}

Result<boost::json::value> parse_json(std::string_view text, std::string_view what) {
  if (!jinja::unicode::is_valid_utf8(text)) {
    return invalid_argument(std::string(what) + " is not valid UTF-8");
  }
  boost::json::parse_options opts;
  opts.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec, {}, opts);
  if (ec) return invalid_argument(std::string(what) + ": malformed JSON: " + ec.message());
  return v;
}

Result<std::tm> parse_date(const std::optional<std::string>& date) {
  std::tm tm{};
  if (!date) {
    const std::time_t now = std::time(nullptr);
    localtime_r(&now, &tm);
    return tm;
  }
  const std::string& s = *date;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  auto digits = [&](size_t at, size_t n, int* out) {
    if (at + n > s.size()) return false;
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  bool ok = digits(0, 4, &year) && s.size() >= 10 && s[4] == '-' && digits(5, 2, &month) &&
            s[7] == '-' && digits(8, 2, &day);
  if (ok && s.size() > 10) {
    ok = (s[10] == 'T' || s[10] == ' ') && s.size() >= 16 && digits(11, 2, &hour) && s[13] == ':' &&
         digits(14, 2, &minute);
    if (ok && s.size() > 16) ok = s.size() == 19 && s[16] == ':' && digits(17, 2, &second);
  }
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  ok = ok && year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= kDays[month - 1] &&
       hour < 24 && minute < 60 && second < 60;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  ok = ok && !(month == 2 && day == 29 && !leap);
  if (!ok) {
    return invalid_argument("date_string '" + s +
                            "' is not a date like 2024-07-26 or 2024-07-26T10:30:00");
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  std::tm normalized = tm;
  timegm(&normalized);  // fills tm_wday / tm_yday
  tm.tm_wday = normalized.tm_wday;
  tm.tm_yday = normalized.tm_yday;
  return tm;
}

Result<jinja::Context> build_context(const ChatTemplateInputs& in) {
  jinja::Context ctx;
  auto set = [&](const std::string& name, jinja::Value v) {
    for (auto& [k, old] : ctx) {
      if (k == name) {
        old = std::move(v);
        return;
      }
    }
    ctx.emplace_back(name, std::move(v));
  };
  if (!in.bos_token.empty()) set("bos_token", jinja::Value(in.bos_token));
  if (!in.eos_token.empty()) set("eos_token", jinja::Value(in.eos_token));
  for (const auto& [name, token] : in.other_special_tokens) set(name, jinja::Value(token));

  KITE_ASSIGN_OR_RETURN(boost::json::value messages, parse_json(in.messages_json, "messages"));
  if (!messages.is_array()) return invalid_argument("messages must be a JSON array");
  if (messages.get_array().empty()) {
    return invalid_argument(
        "Cannot apply chat template to an empty conversation. Provide at "
        "least one message.");
  }
  jinja::Value tools = jinja::Value::none();
  if (!in.tools_json.empty()) {
    KITE_ASSIGN_OR_RETURN(boost::json::value t, parse_json(in.tools_json, "tools"));
    if (!t.is_array()) return invalid_argument("tools must be a JSON array");
    for (const auto& tool : t.get_array()) {
      if (!tool.is_object()) return invalid_argument("each tool must be a JSON object (a schema)");
    }
    tools = jinja::from_json(t);
  }
  if (!in.extra_kwargs_json.empty()) {
    KITE_ASSIGN_OR_RETURN(boost::json::value kw, parse_json(in.extra_kwargs_json, "extra kwargs"));
    if (!kw.is_object()) return invalid_argument("extra kwargs must be a JSON object");
    for (const auto& kv : kw.get_object()) {
      const std::string key(kv.key());
      if (key == "messages" || key == "tools" || key == "documents" ||
          key == "add_generation_prompt") {
        return invalid_argument("extra kwarg '" + key + "' conflicts with a render argument");
      }
      set(key, jinja::from_json(kv.value()));
    }
  }
  set("messages", jinja::from_json(messages));
  set("tools", std::move(tools));
  set("documents", jinja::Value::none());
  set("add_generation_prompt", jinja::Value(in.add_generation_prompt));
  return ctx;
}

}  // namespace

Result<std::string> select_chat_template(const std::map<std::string, std::string>& named,
                                         const std::optional<std::string>& requested,
                                         bool has_tools) {
  if (requested) {
    auto it = named.find(*requested);
    return it != named.end() ? it->second : *requested;
  }
  if (has_tools) {
    if (auto it = named.find("tool_use"); it != named.end()) return it->second;
  }
  if (auto it = named.find("default"); it != named.end()) return it->second;
  if (named.empty()) {
    return invalid_argument(
        "the model has no chat template; pass one in the request's chat_template");
  }
  std::string names;
  for (const auto& [name, tmpl] : named) names += (names.empty() ? "" : ", ") + name;
  return invalid_argument("the model has several chat templates and none is named 'default' (" +
                          names + "); pass chat_template with one of these names");
}

Result<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  if (source.size() > kMaxTemplateBytes) {
    return out_of_range("chat template is larger than " + std::to_string(kMaxTemplateBytes) +
                        " bytes");
  }
  if (!jinja::unicode::is_valid_utf8(source)) {
    return invalid_argument("chat template is not valid UTF-8");
  }
  std::string normalized = jinja::normalize_source(source);
  try {
    std::unique_ptr<jinja::Program> program = jinja::parse_program(normalized);
    return ChatTemplate(std::shared_ptr<const jinja::Program>(std::move(program)));
  } catch (const TemplateError& e) {
    return to_status(e, normalized);
  } catch (const std::bad_alloc&) {
    return resource_exhausted("out of memory while parsing the chat template");
  }
}

Result<std::string> ChatTemplate::render(const ChatTemplateInputs& inputs) const {
  return render(inputs, ChatTemplateLimits{});
}

namespace {

Result<jinja::RenderOptions> render_options(const ChatTemplateLimits& limits,
                                            const std::optional<std::string>& date_string) {
  jinja::RenderOptions options;
  options.limits.max_output_bytes = limits.max_output_bytes;
  options.limits.max_steps = limits.max_steps;
  options.limits.max_depth = limits.max_depth;
  KITE_ASSIGN_OR_RETURN(options.now, parse_date(date_string));
  return options;
}

Result<std::string> run(const jinja::Program& program, const jinja::RenderOptions& options,
                        const std::function<Result<jinja::Context>()>& make_context) {
  try {
    KITE_ASSIGN_OR_RETURN(jinja::Context context, make_context());
    jinja::Renderer renderer(program, options);
    return renderer.render(context);
  } catch (const TemplateError& e) {
    return to_status(e, program.source);
  } catch (const std::bad_alloc&) {
    return resource_exhausted("out of memory while rendering the chat template");
  }
}

}  // namespace

Result<std::string> ChatTemplate::render(const ChatTemplateInputs& inputs,
                                         const ChatTemplateLimits& limits) const {
  KITE_ASSIGN_OR_RETURN(jinja::RenderOptions options, render_options(limits, inputs.date_string));
  return run(*program_, options, [&] { return build_context(inputs); });
}

Result<std::string> jinja::render_string(std::string_view source, std::string_view context_json,
                                         const ChatTemplateLimits& limits,
                                         std::optional<std::string> date_string) {
  KITE_ASSIGN_OR_RETURN(ChatTemplate tmpl, ChatTemplate::parse(source));
  KITE_ASSIGN_OR_RETURN(jinja::RenderOptions options, render_options(limits, date_string));
  return run(jinja::ChatTemplateAccess::program(tmpl), options, [&]() -> Result<jinja::Context> {
    jinja::Context context;
    if (context_json.empty()) return context;
    KITE_ASSIGN_OR_RETURN(boost::json::value v, parse_json(context_json, "context"));
    if (!v.is_object()) return invalid_argument("context must be a JSON object");
    for (const auto& kv : v.get_object()) {
      context.emplace_back(std::string(kv.key()), jinja::from_json(kv.value()));
    }
    return context;
  });
}

}  // namespace kite
