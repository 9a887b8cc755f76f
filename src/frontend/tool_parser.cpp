#include "frontend/tool_parser.h"

#include <boost/json.hpp>
#include <random>

namespace kite {

namespace {

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kMistralOpen = "[TOOL_CALLS]";
constexpr std::string_view kPythonTag = "<|python_tag|>";

size_t partial_suffix(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n) {
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// Skips one JSON value starting at text[i] (no leading whitespace). Returns the end position and
// whether the value is complete within `text`.
std::pair<size_t, bool> skip_value(std::string_view text, size_t i) {
  if (i >= text.size()) return {i, false};
  const char c = text[i];
  if (c == '"') {
    bool esc = false;
    for (size_t j = i + 1; j < text.size(); ++j) {
      if (esc) {
        esc = false;
      } else if (text[j] == '\\') {
        esc = true;
      } else if (text[j] == '"') {
        return {j + 1, true};
      }
    }
    return {text.size(), false};
  }
  if (c == '{' || c == '[') {
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t j = i; j < text.size(); ++j) {
      const char x = text[j];
      if (in_str) {
        if (esc) {
          esc = false;
        } else if (x == '\\') {
          esc = true;
        } else if (x == '"') {
          in_str = false;
        }
        continue;
      }
      if (x == '"') {
        in_str = true;
      } else if (x == '{' || x == '[') {
        ++depth;
      } else if (x == '}' || x == ']') {
        if (--depth == 0) return {j + 1, true};
      }
    }
    return {text.size(), false};
  }
  size_t j = i;  // number, true, false, null
  while (j < text.size() && text[j] != ',' && text[j] != '}' && text[j] != ']' && !is_ws(text[j])) {
    ++j;
  }
  return {j, j < text.size()};
}

struct Member {
  std::string key;
  size_t value_begin = 0, value_end = 0;
  bool complete = false;
};

// Members of the (possibly truncated) object `text` that starts with '{'.
std::vector<Member> scan_members(std::string_view text) {
  std::vector<Member> out;
  size_t i = 1;
  for (;;) {
    while (i < text.size() && (is_ws(text[i]) || text[i] == ',')) ++i;
    if (i >= text.size() || text[i] != '"') return out;
    auto [kend, kok] = skip_value(text, i);
    if (!kok) return out;
    boost::system::error_code ec;
    boost::json::value key = boost::json::parse(text.substr(i, kend - i), ec);
    if (ec || !key.is_string()) return out;
    i = kend;
    while (i < text.size() && is_ws(text[i])) ++i;
    if (i >= text.size() || text[i] != ':') return out;
    ++i;
    while (i < text.size() && is_ws(text[i])) ++i;
    if (i >= text.size()) return out;
    Member m;
    m.key = std::string(key.get_string());
    m.value_begin = i;
    auto [vend, vok] = skip_value(text, i);
    m.value_end = vend;
    m.complete = vok;
    out.push_back(m);
    if (!vok) return out;
    i = vend;
  }
}

}  // namespace

std::optional<ToolCallFormat> tool_call_format_from_name(std::string_view name) {
  if (name == "hermes") return ToolCallFormat::kHermes;
  if (name == "llama3_json") return ToolCallFormat::kLlama3Json;
  if (name == "mistral") return ToolCallFormat::kMistral;
  return std::nullopt;
}

ToolCallText tool_call_text(ToolCallFormat format) {
  // Whole aggregates (GCC 12 warns falsely on assigning literals to the members one by one).
  const std::string open = "{\"name\": ";
  const std::string arguments = ", \"arguments\": ";
  const std::string parameters = ", \"parameters\": ";
  switch (format) {
    case ToolCallFormat::kHermes:
      return {"", "<tool_call>\n" + open, arguments, "}\n</tool_call>", "\n", ""};
    case ToolCallFormat::kLlama3Json:
      return {"", open, parameters, "}", "; ", ""};
    case ToolCallFormat::kMistral:
      return {"[TOOL_CALLS][", open, arguments, "}", ", ", "]"};
    case ToolCallFormat::kJsonArray:
      return {"[", open, parameters, "}", ", ", "]"};
  }
  return {};
}

std::string ToolCallParser::make_call_id() {
  static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += kAlnum[rng() % (sizeof(kAlnum) - 1)];
  return id;
}

ToolCallParser::ToolCallParser(ToolCallFormat format) : format_(format) {
  if (format_ == ToolCallFormat::kHermes || format_ == ToolCallFormat::kMistral) {
    mode_ = Mode::kContent;
  }
}

void ToolCallParser::update_call(Call& c, Delta* d, bool complete) {
  std::vector<Member> members = scan_members(c.text);
  const Member* name = nullptr;
  const Member* args = nullptr;
  for (const Member& m : members) {
    if (m.key == "name" && m.complete) name = &m;
    if (m.key == "arguments" || m.key == "parameters") args = &m;
  }
  if (!c.announced && name != nullptr) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(
        std::string_view(c.text).substr(name->value_begin, name->value_end - name->value_begin),
        ec);
    if (!ec && v.is_string()) {
      c.name = std::string(v.get_string());
      c.id = make_call_id();
      c.announced = true;
      ToolCallDelta first;
      first.first = true;
      first.id = c.id;
      first.name = c.name;
      int index = 0;
      for (const Call& x : calls_) {
        if (&x == &c) break;
        if (x.announced) ++index;
      }
      first.index = index;
      d->calls.push_back(first);
    }
  }
  if (!c.announced) return;
  int index = 0;
  for (const Call& x : calls_) {
    if (&x == &c) break;
    if (x.announced) ++index;
  }
  std::string fragment;
  if (args != nullptr && args->value_begin < c.text.size()) {
    const char first = c.text[args->value_begin];
    if (first == '{' || first == '[') {
      const size_t end = args->complete ? args->value_end : c.text.size();
      const size_t len = end - args->value_begin;
      if (len > c.args_sent) {
        fragment = c.text.substr(args->value_begin + c.args_sent, len - c.args_sent);
        c.args_sent = len;
      }
    } else if (args->complete && c.args_sent == 0) {
      // Arguments given as a JSON-encoded string: its content.
      boost::system::error_code ec;
      boost::json::value v = boost::json::parse(
          std::string_view(c.text).substr(args->value_begin, args->value_end - args->value_begin),
          ec);
      fragment = !ec && v.is_string() ? std::string(v.get_string()) : "{}";
      c.args_sent = 1;
    }
  }
  if (complete && c.args_sent == 0 && fragment.empty()) {
    fragment = "{}";
    c.args_sent = 2;
  }
  if (!fragment.empty()) {
    ToolCallDelta frag;
    frag.index = index;
    frag.arguments = std::move(fragment);
    d->calls.push_back(std::move(frag));
  }
  if (complete) c.done = true;
}

void ToolCallParser::scan_tools(Delta* d, bool at_end) {
  for (; scan_ < tool_text_.size(); ++scan_) {
    const char x = tool_text_[scan_];
    if (!in_call_) {
      if (x == '{') {
        calls_.emplace_back();
        calls_.back().text.push_back('{');
        in_call_ = true;
        depth_ = 1;
        in_string_ = escape_ = false;
      }
      continue;
    }
    Call& c = calls_.back();
    c.text += x;
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (x == '\\') {
        escape_ = true;
      } else if (x == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (x == '"') {
      in_string_ = true;
    } else if (x == '{' || x == '[') {
      ++depth_;
    } else if (x == '}' || x == ']') {
      if (--depth_ == 0) {
        in_call_ = false;
        update_call(c, d, true);
      }
    }
  }
  if (in_call_) update_call(calls_.back(), d, at_end);
}

ToolCallParser::Delta ToolCallParser::feed(std::string_view text) {
  Delta d;
  if (mode_ == Mode::kTools) {
    tool_text_.append(text);
    scan_tools(&d, false);
    return d;
  }
  pending_.append(text);
  if (mode_ == Mode::kStart) {
    size_t i = 0;
    while (i < pending_.size() && is_ws(pending_[i])) ++i;
    if (i == pending_.size()) return d;
    std::string_view rest = std::string_view(pending_).substr(i);
    const char open = format_ == ToolCallFormat::kJsonArray ? '[' : '{';
    if (format_ == ToolCallFormat::kLlama3Json && rest.size() < kPythonTag.size() &&
        kPythonTag.substr(0, rest.size()) == rest) {
      return d;  // maybe <|python_tag|>
    }
    if (rest[0] == open || (format_ == ToolCallFormat::kLlama3Json &&
                            rest.substr(0, kPythonTag.size()) == kPythonTag)) {
      mode_ = Mode::kTools;
      tool_text_ = std::move(pending_);
      pending_.clear();
      scan_tools(&d, false);
      return d;
    }
    mode_ = Mode::kContent;
    if (format_ == ToolCallFormat::kLlama3Json || format_ == ToolCallFormat::kJsonArray) {
      d.content = std::move(pending_);  // no call at the start: plain content
      pending_.clear();
      content_sent_ += d.content;
      format_locked_content_ = true;
      return d;
    }
  }
  if (format_locked_content_) {
    d.content = std::move(pending_);
    pending_.clear();
    content_sent_ += d.content;
    return d;
  }
  const std::string_view marker = format_ == ToolCallFormat::kHermes ? kHermesOpen : kMistralOpen;
  const size_t at = pending_.find(marker);
  if (at != std::string::npos) {
    d.content = pending_.substr(0, at);
    content_sent_ += d.content;
    tool_text_ = pending_.substr(at);
    pending_.clear();
    mode_ = Mode::kTools;
    scan_tools(&d, false);
    return d;
  }
  const size_t keep = partial_suffix(pending_, marker);
  d.content = pending_.substr(0, pending_.size() - keep);
  content_sent_ += d.content;
  pending_.erase(0, pending_.size() - keep);
  return d;
}

ToolCallParser::Delta ToolCallParser::finish() {
  Delta d;
  if (mode_ != Mode::kTools) {
    d.content = std::move(pending_);
    pending_.clear();
    return d;
  }
  scan_tools(&d, true);
  bool any = false;
  for (const Call& c : calls_) any = any || c.announced;
  if (!any) d.content = tool_text_;  // no call in the tool section: it was content after all
  return d;
}

ToolCallParser::Result ToolCallParser::parse(ToolCallFormat format, std::string_view text) {
  ToolCallParser p(format);
  Delta a = p.feed(text);
  Delta b = p.finish();
  Result r;
  r.content = a.content + b.content;
  for (const Delta* d : {&a, &b}) {
    for (const ToolCallDelta& c : d->calls) {
      if (c.first) {
        r.calls.push_back({c.id, c.name, ""});
      } else if (c.index < static_cast<int>(r.calls.size())) {
        r.calls[static_cast<size_t>(c.index)].arguments += c.arguments;
      }
    }
  }
  return r;
}

}  // namespace kite
