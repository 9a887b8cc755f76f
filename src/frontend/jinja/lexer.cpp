#include "frontend/jinja/lexer.h"

#include <unicode/uchar.h>

#include <charconv>

#include "frontend/jinja/error.h"
#include "frontend/jinja/unicode.h"

namespace kite::jinja {

namespace {

[[noreturn]] void syntax_error(std::string message, size_t offset) {
  throw TemplateError(ErrorKind::kSyntax, std::move(message), offset);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) lex_root();
    push(Tok::kEof, src_.size());
    return std::move(tokens_);
  }

 private:
  // ---- helpers ----
  bool starts_with(size_t at, std::string_view s) const {
    return src_.size() >= at && src_.substr(at).substr(0, s.size()) == s;
  }

  // Code point at `at` and its byte length.
  char32_t cp_at(size_t at, size_t* len) const {
    size_t p = at;
    const char32_t c = unicode::next_code_point(src_, &p);
    *len = p - at;
    return c;
  }

  // Skips Python `\s*` (Unicode whitespace) from `at`.
  size_t skip_space(size_t at) const {
    while (at < src_.size()) {
      size_t len;
      if (!unicode::is_space(cp_at(at, &len))) break;
      at += len;
    }
    return at;
  }

  static bool all_space(std::string_view s) {
    size_t p = 0;
    while (p < s.size()) {
      if (!unicode::is_space(unicode::next_code_point(s, &p))) return false;
    }
    return true;
  }

  Token& push(Tok type, size_t offset, std::string text = {}) {
    tokens_.push_back(Token{type, offset, std::move(text)});
    return tokens_.back();
  }

  // Text before a tag, with `-` stripping or lstrip_blocks applied. `text_start` is where the
  // text begins (for "is this the start of a line").
  void push_data(size_t text_start, size_t text_end, char sign, bool lstrip_allowed) {
    std::string_view text = src_.substr(text_start, text_end - text_start);
    if (sign == '-') {
      text = unicode::py_strip(text, nullptr, false, true);
    } else if (sign != '+' && lstrip_allowed) {
      const size_t nl = text.rfind('\n');
      const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      const bool line_starting = text_start == 0 || src_[text_start - 1] == '\n';
      if ((l_pos > 0 || line_starting) && l_pos < text.size() && all_space(text.substr(l_pos))) {
        text = text.substr(0, l_pos);
      }
    }
    if (!text.empty()) push(Tok::kData, text_start, std::string(text));
  }

  // ---- root state ----
  void lex_root() {
    size_t i = pos_;
    while (true) {
      i = src_.find('{', i);
      if (i == std::string_view::npos || i + 1 >= src_.size()) {
        push(Tok::kData, pos_, std::string(src_.substr(pos_)));
        pos_ = src_.size();
        return;
      }
      const char k = src_[i + 1];
      if (k == '{' || k == '%' || k == '#') break;
      ++i;
    }
    const char kind = src_[i + 1];
    const char sign =
        i + 2 < src_.size() && (src_[i + 2] == '-' || src_[i + 2] == '+') ? src_[i + 2] : '\0';
    const size_t after = i + 2 + (sign ? 1 : 0);
    if (kind == '%') {
      size_t raw_end;
      if (match_raw_begin(after, &raw_end)) {
        push_data(pos_, i, sign, true);
        lex_raw(i, raw_end);
        return;
      }
    }
    push_data(pos_, i, sign, kind != '{');
    if (kind == '#') {
      lex_comment(i, after);
    } else {
      lex_tag(i, after, kind == '%');
    }
  }

  // `{%[-+]?\s*raw\s*(-%}\s*|%})` from just after the sign; sets *end past the tag.
  bool match_raw_begin(size_t at, size_t* end) const {
    size_t p = skip_space(at);
    if (!starts_with(p, "raw")) return false;
    p = skip_space(p + 3);
    if (starts_with(p, "-%}")) {
      *end = skip_space(p + 3);
      return true;
    }
    if (starts_with(p, "%}")) {
      *end = p + 2;
      return true;
    }
    return false;
  }

  void lex_raw(size_t tag_start, size_t body_start) {
    // `{%[-+]?\s*endraw\s*(\+%}|-%}\s*|%}\n?)`, the first one after body_start.
    size_t i = body_start;
    while (true) {
      i = src_.find("{%", i);
      if (i == std::string_view::npos) syntax_error("Missing end of raw directive", tag_start);
      const char sign =
          i + 2 < src_.size() && (src_[i + 2] == '-' || src_[i + 2] == '+') ? src_[i + 2] : '\0';
      size_t p = skip_space(i + 2 + (sign ? 1 : 0));
      if (starts_with(p, "endraw")) {
        p = skip_space(p + 6);
        size_t end = std::string_view::npos;
        if (starts_with(p, "+%}")) {
          end = p + 3;
        } else if (starts_with(p, "-%}")) {
          end = skip_space(p + 3);
        } else if (starts_with(p, "%}")) {
          end = p + 2;
          if (end < src_.size() && src_[end] == '\n') ++end;
        }
        if (end != std::string_view::npos) {
          push_data(body_start, i, sign, true);
          pos_ = end;
          return;
        }
      }
      ++i;
    }
  }

  void lex_comment(size_t tag_start, size_t body_start) {
    for (size_t p = body_start; p < src_.size(); ++p) {
      if (starts_with(p, "+#}")) {
        pos_ = p + 3;
        return;
      }
      if (starts_with(p, "-#}")) {
        pos_ = skip_space(p + 3);
        return;
      }
      if (starts_with(p, "#}")) {
        pos_ = p + 2;
        if (pos_ < src_.size() && src_[pos_] == '\n') ++pos_;
        return;
      }
    }
    syntax_error("Missing end of comment tag", tag_start);
  }

  // ---- inside {% %} and {{ }} ----
  void lex_tag(size_t tag_start, size_t body_start, bool block) {
    push(block ? Tok::kBlockBegin : Tok::kVariableBegin, tag_start);
    size_t p = body_start;
    std::vector<char> balance;
    while (true) {
      if (p >= src_.size()) {  // unterminated: the parser reports what it expected
        pos_ = p;
        return;
      }
      if (balance.empty()) {
        size_t end = std::string_view::npos;
        if (block) {
          if (starts_with(p, "+%}")) {
            end = p + 3;
          } else if (starts_with(p, "-%}")) {
            end = skip_space(p + 3);
          } else if (starts_with(p, "%}")) {
            end = p + 2;
            if (end < src_.size() && src_[end] == '\n') ++end;
          }
        } else {
          if (starts_with(p, "-}}")) {
            end = skip_space(p + 3);
          } else if (starts_with(p, "}}")) {
            end = p + 2;
          }
        }
        if (end != std::string_view::npos) {
          push(block ? Tok::kBlockEnd : Tok::kVariableEnd, p);
          pos_ = end;
          return;
        }
      }
      size_t len;
      const char32_t c = cp_at(p, &len);
      if (unicode::is_space(c)) {
        p = skip_space(p);
        continue;
      }
      size_t end;
      if (match_float(p, &end)) {
        std::string clean;
        for (size_t k = p; k < end; ++k) {
          if (src_[k] != '_') clean.push_back(src_[k]);
        }
        double value = 0.0;
        std::from_chars(clean.data(), clean.data() + clean.size(), value);
        push(Tok::kFloat, p).float_value = value;
        p = end;
        continue;
      }
      if (match_integer(p, &end)) {
        push(Tok::kInteger, p).int_value = parse_integer(p, end);
        p = end;
        continue;
      }
      if (c == '_' || unicode::is_word(c) ||
          u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_XID_CONTINUE)) {
        end = p;
        while (end < src_.size()) {
          size_t l;
          const char32_t x = cp_at(end, &l);
          if (!(x == '_' || unicode::is_word(x) ||
                u_hasBinaryProperty(static_cast<UChar32>(x), UCHAR_XID_CONTINUE))) {
            break;
          }
          end += l;
        }
        if (!(c == '_' || u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_XID_START))) {
          syntax_error("Invalid character in identifier", p);
        }
        push(Tok::kName, p, std::string(src_.substr(p, end - p)));
        p = end;
        continue;
      }
      if (c == '\'' || c == '"') {
        p = lex_string(p);
        continue;
      }
      p = lex_operator(p, &balance);
    }
  }

  // `(\d+_)*\d+`: digits with single underscores between them. Returns the end or npos.
  size_t match_digits(size_t p) const {
    if (p >= src_.size() || !is_digit(src_[p])) return std::string_view::npos;
    while (true) {
      while (p < src_.size() && is_digit(src_[p])) ++p;
      if (p + 1 < src_.size() && src_[p] == '_' && is_digit(src_[p + 1])) {
        ++p;
        continue;
      }
      return p;
    }
  }

  bool match_float(size_t p, size_t* end) const {
    if (p > 0 && src_[p - 1] == '.') return false;  // (?<!\.)
    const size_t int_end = match_digits(p);
    if (int_end == std::string_view::npos) return false;
    size_t q = int_end;
    bool fraction = false;
    if (q < src_.size() && src_[q] == '.') {
      const size_t frac_end = match_digits(q + 1);
      if (frac_end != std::string_view::npos) {
        q = frac_end;
        fraction = true;
      }
    }
    if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
      size_t e = q + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      const size_t exp_end = match_digits(e);
      if (exp_end != std::string_view::npos) {
        *end = exp_end;
        return true;
      }
    }
    if (!fraction) return false;
    *end = q;
    return true;
  }

  bool match_integer(size_t p, size_t* end) const {
    if (p >= src_.size() || !is_digit(src_[p])) return false;
    auto radix_run = [&](size_t q, auto pred) -> size_t {  // (_?[digit])+
      size_t r = q;
      while (true) {
        size_t s = r;
        if (s < src_.size() && src_[s] == '_') ++s;
        if (s < src_.size() && pred(src_[s])) {
          r = s + 1;
        } else {
          break;
        }
      }
      return r == q ? std::string_view::npos : r;
    };
    if (src_[p] == '0' && p + 1 < src_.size()) {
      const char x = static_cast<char>(src_[p + 1] | 0x20);
      size_t r = std::string_view::npos;
      if (x == 'b') r = radix_run(p + 2, [](char ch) { return ch == '0' || ch == '1'; });
      if (x == 'o') r = radix_run(p + 2, [](char ch) { return ch >= '0' && ch <= '7'; });
      if (x == 'x') r = radix_run(p + 2, is_hex_digit);
      if (r != std::string_view::npos) {
        *end = r;
        return true;
      }
    }
    if (src_[p] != '0') {
      const size_t r = radix_run(p + 1, is_digit);
      *end = r == std::string_view::npos ? p + 1 : r;
      return true;
    }
    const size_t r = radix_run(p + 1, [](char ch) { return ch == '0'; });
    *end = r == std::string_view::npos ? p + 1 : r;
    return true;
  }

  int64_t parse_integer(size_t p, size_t end) const {
    std::string digits;
    for (size_t k = p; k < end; ++k) {
      if (src_[k] != '_') digits.push_back(src_[k]);
    }
    int base = 10;
    std::string_view body = digits;
    if (body.size() > 2 && body[0] == '0' && (body[1] | 0x20) != '0') {
      const char x = static_cast<char>(body[1] | 0x20);
      base = x == 'b' ? 2 : x == 'o' ? 8 : 16;
      body.remove_prefix(2);
    }
    int64_t value = 0;
    auto res = std::from_chars(body.data(), body.data() + body.size(), value, base);
    if (res.ec != std::errc()) {
      throw TemplateError(ErrorKind::kUnsupported,
                          "integer literal does not fit in 64 bits (kite's integers are 64-bit)",
                          p);
    }
    return value;
  }

  size_t lex_string(size_t p) {
    const char quote = src_[p];
    size_t q = p + 1;
    while (q < src_.size() && src_[q] != quote) {
      if (src_[q] == '\\') ++q;
      ++q;
    }
    if (q >= src_.size()) syntax_error("unterminated string literal", p);
    push(Tok::kString, p, unescape(p + 1, q));
    return q + 1;
  }

  // Python's unicode-escape decoding of a literal body (after backslashreplace of non-ASCII).
  std::string unescape(size_t begin, size_t end) const {
    std::string out;
    size_t i = begin;
    while (i < end) {
      if (src_[i] != '\\') {
        out.push_back(src_[i++]);
        continue;
      }
      const size_t esc = i;
      ++i;  // the lexer guarantees a character after a backslash
      const char c = src_[i];
      auto code_point = [&](size_t digits, const char* what) {
        char32_t cp = 0;
        for (size_t k = 0; k < digits; ++k) {
          if (i + 1 + k >= end || !is_hex_digit(src_[i + 1 + k])) {
            syntax_error(std::string("truncated ") + what + " escape", esc);
          }
          cp = cp * 16 + static_cast<char32_t>(hex_value(src_[i + 1 + k]));
        }
        i += 1 + digits;
        if (cp > 0x10FFFF) syntax_error("illegal Unicode character", esc);
        if (cp >= 0xD800 && cp <= 0xDFFF) {
          syntax_error("string literal holds a lone surrogate (not valid UTF-8)", esc);
        }
        unicode::append_utf8(cp, &out);
      };
      switch (c) {
        case '\n':
          ++i;
          break;
        case '\\':
          out.push_back('\\');
          ++i;
          break;
        case '\'':
          out.push_back('\'');
          ++i;
          break;
        case '"':
          out.push_back('"');
          ++i;
          break;
        case 'a':
          out.push_back('\a');
          ++i;
          break;
        case 'b':
          out.push_back('\b');
          ++i;
          break;
        case 'f':
          out.push_back('\f');
          ++i;
          break;
        case 'n':
          out.push_back('\n');
          ++i;
          break;
        case 'r':
          out.push_back('\r');
          ++i;
          break;
        case 't':
          out.push_back('\t');
          ++i;
          break;
        case 'v':
          out.push_back('\v');
          ++i;
          break;
        case 'x':
          code_point(2, "\\xXX");
          break;
        case 'u':
          code_point(4, "\\uXXXX");
          break;
        case 'U':
          code_point(8, "\\UXXXXXXXX");
          break;
        case 'N': {
          const size_t close = src_.find('}', i);
          if (i + 1 >= end || src_[i + 1] != '{' || close == std::string_view::npos ||
              close >= end) {
            syntax_error("malformed \\N character escape", esc);
          }
          const std::string name(src_.substr(i + 2, close - i - 2));
          UErrorCode err = U_ZERO_ERROR;
          UChar32 cp = u_charFromName(U_UNICODE_CHAR_NAME, name.c_str(), &err);
          if (U_FAILURE(err) || cp < 0) {
            err = U_ZERO_ERROR;
            cp = u_charFromName(U_CHAR_NAME_ALIAS, name.c_str(), &err);
          }
          if (U_FAILURE(err) || cp < 0) syntax_error("unknown Unicode character name", esc);
          unicode::append_utf8(static_cast<char32_t>(cp), &out);
          i = close + 1;
          break;
        }
        default:
          if (c >= '0' && c <= '7') {
            char32_t cp = 0;
            size_t k = 0;
            while (k < 3 && i < end && src_[i] >= '0' && src_[i] <= '7') {
              cp = cp * 8 + static_cast<char32_t>(src_[i] - '0');
              ++i;
              ++k;
            }
            unicode::append_utf8(cp, &out);
          } else if (static_cast<unsigned char>(c) >= 0x80) {
            // backslashreplace turned the character into "\xe9"/"\u4e2d"; the escaped
            // backslash then decodes to "\" and the rest stays literal.
            size_t len;
            const char32_t cp = cp_at(i, &len);
            char buf[16];
            if (cp <= 0xFF) {
              std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(cp));
            } else if (cp <= 0xFFFF) {
              std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
            } else {
              std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(cp));
            }
            out += buf;
            i += len;
          } else {
            out.push_back('\\');  // unknown escapes stay as written
          }
      }
    }
    return out;
  }

  size_t lex_operator(size_t p, std::vector<char>* balance) {
    struct Op {
      std::string_view text;
      Tok tok;
    };
    static constexpr Op kOps[] = {
        {"//", Tok::kFloorDiv}, {"**", Tok::kPow},      {"==", Tok::kEq},    {"!=", Tok::kNe},
        {">=", Tok::kGe},       {"<=", Tok::kLe},       {"+", Tok::kAdd},    {"-", Tok::kSub},
        {"/", Tok::kDiv},       {"*", Tok::kMul},       {"%", Tok::kMod},    {"~", Tok::kTilde},
        {"[", Tok::kLBracket},  {"]", Tok::kRBracket},  {"(", Tok::kLParen}, {")", Tok::kRParen},
        {"{", Tok::kLBrace},    {"}", Tok::kRBrace},    {">", Tok::kGt},     {"<", Tok::kLt},
        {"=", Tok::kAssign},    {".", Tok::kDot},       {":", Tok::kColon},  {"|", Tok::kPipe},
        {",", Tok::kComma},     {";", Tok::kSemicolon},
    };
    for (const Op& op : kOps) {
      if (!starts_with(p, op.text)) continue;
      const char c = op.text[0];
      if (op.text.size() == 1 && (c == '{' || c == '(' || c == '[')) {
        balance->push_back(c == '{' ? '}' : c == '(' ? ')' : ']');
      } else if (op.text.size() == 1 && (c == '}' || c == ')' || c == ']')) {
        if (balance->empty()) syntax_error(std::string("unexpected '") + c + "'", p);
        const char expected = balance->back();
        balance->pop_back();
        if (expected != c) {
          syntax_error(std::string("unexpected '") + c + "', expected '" + expected + "'", p);
        }
      }
      push(op.tok, p, std::string(op.text));
      return p + op.text.size();
    }
    size_t len;
    cp_at(p, &len);
    syntax_error("unexpected char '" + std::string(src_.substr(p, len)) + "'", p);
  }

  std::string_view src_;
  size_t pos_ = 0;
  std::vector<Token> tokens_;
};

}  // namespace

std::string describe_token(const Token& t) {
  switch (t.type) {
    case Tok::kName:
      return t.text;
    case Tok::kData:
      return "template data / text";
    case Tok::kVariableBegin:
      return "begin of print statement";
    case Tok::kVariableEnd:
      return "end of print statement";
    case Tok::kBlockBegin:
      return "begin of statement block";
    case Tok::kBlockEnd:
      return "end of statement block";
    case Tok::kString:
      return "string";
    case Tok::kInteger:
      return "integer";
    case Tok::kFloat:
      return "float";
    case Tok::kEof:
      return "end of template";
    default:
      return t.text;
  }
}

std::string normalize_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace kite::jinja
