#include "frontend/pattern.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstring>

#include "core/check.h"
#include "frontend/json_reader.h"
#include "frontend/utf8.h"

namespace kite {

namespace {

// Per-thread match state: pcre2 match data and a JIT stack large enough for long whitespace or
// letter runs (the default 32 KiB stack overflows on lookaheads over runs of ~10k characters).
struct ThreadMatchState {
  pcre2_match_data* data = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  pcre2_match_context* context = nullptr;

  ThreadMatchState() {
    data = pcre2_match_data_create(1, nullptr);
    jit_stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
    context = pcre2_match_context_create(nullptr);
    if (jit_stack != nullptr && context != nullptr) {
      pcre2_jit_stack_assign(context, nullptr, jit_stack);
    }
  }
  ~ThreadMatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_data_free(data);
  }
};

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

// Unicode White_Space, which Oniguruma's \s matches. PCRE2's \s also matches U+180E.
constexpr std::string_view kWhiteSpaceItems =
    R"(\t-\r\x20\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
// Oniguruma's Unicode \w as tokenizers runs it (measured): Alphabetic, marks, decimal digits,
// connector punctuation, and the Latin-1 digits "²³¹¼½¾" — not other numbers ("⑩"), not
// U+200C/U+200D. PCRE2's \w is only letters, numbers and '_'.
// Inside a character class Oniguruma leaves the Latin-1 digits out ("[^\w\s]" matches "½").
constexpr std::string_view kWordItems =
    R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{B2}\x{B3}\x{B9}\x{BC}-\x{BE})";
constexpr std::string_view kClassWordItems = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc})";

}  // namespace

std::string onig_to_pcre2(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  int class_depth = 0;
  size_t class_start = 0;  // output position just after the '[' / '[^' that opened the class
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      char e = pattern[i + 1];
      ++i;
      bool in_class = class_depth > 0;
      switch (e) {
        case 's':
          if (in_class) {
            out.append(kWhiteSpaceItems);
          } else {
            out.append("[").append(kWhiteSpaceItems).append("]");
          }
          continue;
        case 'S':
          if (in_class) {
            out.append("\\S\\x{180E}");
          } else {
            out.append("[^").append(kWhiteSpaceItems).append("]");
          }
          continue;
        case 'w':
          if (in_class) {
            out.append(kClassWordItems);
          } else {
            out.append("[").append(kWordItems).append("]");
          }
          continue;
        case 'W':
          if (!in_class) {
            out.append("[^").append(kWordItems).append("]");
            continue;
          }
          break;
        case 'h':  // Ruby syntax: hexadecimal digit
          out.append(in_class ? "0-9a-fA-F" : "[0-9a-fA-F]");
          continue;
        case 'H':
          if (!in_class) {
            out.append("[^0-9a-fA-F]");
            continue;
          }
          break;
        default:
          break;
      }
      out.push_back('\\');
      out.push_back(e);
      continue;
    }
    if (class_depth > 0) {
      if (c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
        // POSIX class [:alpha:] inside a class: copy through to its closing ":]".
        size_t end = pattern.find(":]", i + 2);
        if (end != std::string_view::npos) {
          out.append(pattern.substr(i, end + 2 - i));
          i = end + 1;
          continue;
        }
      }
      if (c == ']' && out.size() > class_start) {
        --class_depth;
      } else if (c == '[') {
        ++class_depth;  // Oniguruma allows nested classes; PCRE2 will reject them clearly
      }
      out.push_back(c);
      continue;
    }
    out.push_back(c);
    if (c == '[') {
      class_depth = 1;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') {
        out.push_back('^');
        ++i;
      }
      class_start = out.size();
    }
  }
  return out;
}

Result<std::shared_ptr<const Regex>> Regex::compile(std::string_view pattern) {
  if (!utf8::is_valid(pattern)) return invalid_argument("regex pattern is not valid UTF-8");
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  // Oniguruma's Ruby syntax (what tokenizers uses) makes ^ and $ line anchors.
  uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE;
  std::string translated = onig_to_pcre2(pattern);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()),
                                   translated.size(), options, &err, &err_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof(buf));
    return invalid_argument("bad regex '" + std::string(pattern) + "' (as PCRE2: '" + translated +
                            "') at offset " + std::to_string(err_offset) + ": " +
                            reinterpret_cast<const char*>(buf));
  }
  std::shared_ptr<Regex> re(new Regex());
  re->pattern_ = std::string(pattern);
  re->code_ = code;
  re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return std::shared_ptr<const Regex>(std::move(re));
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

bool Regex::search(std::string_view text, size_t from, Span* match) const {
  ThreadMatchState& st = thread_state();
  auto* code = static_cast<pcre2_code*>(code_);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  int rc;
  if (jit_) {
    rc = pcre2_jit_match(code, subject, text.size(), from, 0, st.data, st.context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      // Fall back to the interpreter, which keeps its backtracking state on the heap.
      rc = pcre2_match(code, subject, text.size(), from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, st.data,
                       nullptr);
    }
  } else {
    rc = pcre2_match(code, subject, text.size(), from, PCRE2_NO_UTF_CHECK, st.data, nullptr);
  }
  if (rc < 0) return false;  // no match, or a resource limit: treat as no further match
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
  match->begin = ov[0];
  match->end = ov[1];
  // \K can produce a match ending before it starts; clamp to keep spans well formed.
  if (match->end < match->begin) match->end = match->begin;
  return true;
}

void Regex::find_all(std::string_view text, std::vector<Span>& out) const {
  size_t last_end = 0;
  bool have_last = false;
  size_t last_match_end = 0;
  while (last_end <= text.size()) {
    Span m;
    if (!search(text, last_end, &m)) break;
    if (m.begin == m.end && have_last && last_match_end == m.end) {
      // Empty match right after the previous one: step one character and search again.
      last_end +=
          last_end < text.size() ? utf8::seq_len(static_cast<unsigned char>(text[last_end])) : 1;
      continue;
    }
    last_end = m.end;
    last_match_end = m.end;
    have_last = true;
    out.push_back(m);
  }
}

void Pattern::find_all(std::string_view text, std::vector<Span>& out) const {
  if (regex_) {
    regex_->find_all(text, out);
    return;
  }
  if (literal_.empty()) return;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t hit = text.find(literal_, pos);
    if (hit == std::string_view::npos) break;
    out.push_back({hit, hit + literal_.size()});
    pos = hit + literal_.size();
  }
}

Result<Pattern> pattern_from_json(const boost::json::value& v, const std::string& path) {
  KITE_ASSIGN_OR_RETURN(tokjson::JsonObj o, tokjson::JsonObj::of(v, path));
  if (o.has("String")) {
    KITE_ASSIGN_OR_RETURN(std::string s, o.str("String"));
    if (!utf8::is_valid(s)) return o.error("String pattern is not valid UTF-8");
    return Pattern::literal(std::move(s));
  }
  if (o.has("Regex")) {
    KITE_ASSIGN_OR_RETURN(std::string re, o.str("Regex"));
    auto p = Pattern::regex(re);
    if (!p.ok()) return p.status().with_context(o.path());
    return std::move(p).value();
  }
  return o.error("pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace kite
