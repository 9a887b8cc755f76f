#include "frontend/jinja/unicode.h"

#include <unicode/ucasemap.h>
#include <unicode/uchar.h>
#include <unicode/ustring.h>

#include <memory>

namespace kite::jinja::unicode {

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len = 0;
    char32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) {
      return false;  // overlong
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

char32_t next_code_point(std::string_view s, size_t* pos) {
  const auto c = static_cast<unsigned char>(s[*pos]);
  if (c < 0x80) {
    ++*pos;
    return c;
  }
  int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
  char32_t cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len && *pos + k < s.size(); ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(s[*pos + k]) & 0x3F);
  }
  *pos += len;
  return cp;
}

std::vector<char32_t> decode(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) out.push_back(next_code_point(s, &pos));
  return out;
}

void append_utf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string encode(const std::vector<char32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t cp : cps) append_utf8(cp, &out);
  return out;
}

size_t length(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::vector<size_t> code_point_offsets(std::string_view s) {
  std::vector<size_t> offsets;
  offsets.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) offsets.push_back(i);
  }
  offsets.push_back(s.size());
  return offsets;
}

bool is_space(char32_t cp) {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool is_printable(char32_t cp) {
  if (cp < 0x80) return cp >= 0x20 && cp < 0x7F;
  switch (u_charType(static_cast<UChar32>(cp))) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
    case U_SPACE_SEPARATOR:
      return false;
    default:
      return true;
  }
}

bool is_alpha(char32_t cp) {
  switch (u_charType(static_cast<UChar32>(cp))) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return true;
    default:
      return false;
  }
}

namespace {
int32_t numeric_type(char32_t cp) {
  return u_getIntPropertyValue(static_cast<UChar32>(cp), UCHAR_NUMERIC_TYPE);
}
}  // namespace

bool is_decimal(char32_t cp) { return numeric_type(cp) == U_NT_DECIMAL; }
bool is_digit(char32_t cp) {
  const int32_t t = numeric_type(cp);
  return t == U_NT_DECIMAL || t == U_NT_DIGIT;
}
bool is_numeric(char32_t cp) { return numeric_type(cp) != U_NT_NONE; }
bool is_alnum(char32_t cp) { return is_alpha(cp) || is_numeric(cp); }
bool is_cased(char32_t cp) { return u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_CASED); }
bool is_lower(char32_t cp) {
  return u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_LOWERCASE);
}
bool is_upper(char32_t cp) {
  return u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_UPPERCASE);
}
bool is_title(char32_t cp) { return u_charType(static_cast<UChar32>(cp)) == U_TITLECASE_LETTER; }
bool is_word(char32_t cp) { return cp == '_' || is_alnum(cp); }

namespace {

std::u16string to_utf16(std::string_view s) {
  std::u16string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    char32_t cp = next_code_point(s, &pos);
    if (cp < 0x10000) {
      out.push_back(static_cast<char16_t>(cp));
    } else {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    }
  }
  return out;
}

std::string from_utf16(const std::u16string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t cp = s[i];
    if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < s.size() && s[i + 1] >= 0xDC00 &&
        s[i + 1] <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (s[i + 1] - 0xDC00);
      ++i;
    }
    append_utf8(cp, &out);
  }
  return out;
}

std::string map_case(std::string_view s, bool upper) {
  bool ascii = true;
  for (char c : s) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) {  // fast path; ICU gives the same answer
    std::string out(s);
    for (char& c : out) {
      if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
  }
  const std::u16string src = to_utf16(s);
  std::u16string dst(src.size() * 3 + 4, u'\0');  // full mappings expand at most 3x
  auto run = [&](UErrorCode* err) {
    auto* d = reinterpret_cast<UChar*>(dst.data());
    const auto* x = reinterpret_cast<const UChar*>(src.data());
    const auto dn = static_cast<int32_t>(dst.size());
    const auto xn = static_cast<int32_t>(src.size());
    return upper ? u_strToUpper(d, dn, x, xn, "", err) : u_strToLower(d, dn, x, xn, "", err);
  };
  UErrorCode err = U_ZERO_ERROR;
  int32_t n = run(&err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    dst.assign(static_cast<size_t>(n), u'\0');
    err = U_ZERO_ERROR;
    n = run(&err);
  }
  if (U_FAILURE(err)) return std::string(s);
  dst.resize(static_cast<size_t>(n));
  return from_utf16(dst);
}

struct CaseMapDeleter {
  void operator()(UCaseMap* m) const { ucasemap_close(m); }
};

// Lowercase of cps[i] in context: U+03A3 becomes final sigma at the end of a word (Python's
// Final_Sigma rule), everything else maps on its own.
std::string lower_at(const std::vector<char32_t>& cps, size_t i) {
  const char32_t c = cps[i];
  if (c != 0x3A3) {
    std::string one;
    append_utf8(c, &one);
    return to_lower(one);
  }
  auto ignorable = [](char32_t x) {
    return u_hasBinaryProperty(static_cast<UChar32>(x), UCHAR_CASE_IGNORABLE) != 0;
  };
  size_t j = i;
  bool cased_before = false;
  while (j > 0) {
    --j;
    if (ignorable(cps[j])) continue;
    cased_before = is_cased(cps[j]);
    break;
  }
  bool cased_after = false;
  for (size_t k = i + 1; k < cps.size(); ++k) {
    if (ignorable(cps[k])) continue;
    cased_after = is_cased(cps[k]);
    break;
  }
  std::string out;
  append_utf8(cased_before && !cased_after ? 0x3C2 : 0x3C3, &out);
  return out;
}

}  // namespace

std::string to_upper(std::string_view s) { return map_case(s, true); }

std::string fold_case(std::string_view s) {
  const std::u16string src = to_utf16(s);
  std::u16string dst(src.size() * 3 + 4, u'\0');
  UErrorCode err = U_ZERO_ERROR;
  const int32_t n =
      u_strFoldCase(reinterpret_cast<UChar*>(dst.data()), static_cast<int32_t>(dst.size()),
                    reinterpret_cast<const UChar*>(src.data()), static_cast<int32_t>(src.size()),
                    U_FOLD_CASE_DEFAULT, &err);
  if (U_FAILURE(err)) return to_lower(s);
  dst.resize(static_cast<size_t>(n));
  return from_utf16(dst);
}
std::string to_lower(std::string_view s) { return map_case(s, false); }

std::string title_case_code_point(char32_t cp) {
  std::string one;
  append_utf8(cp, &one);
  if (cp < 0x80) {
    if (cp >= 'a' && cp <= 'z') one[0] = static_cast<char>(cp - 'a' + 'A');
    return one;
  }
  thread_local std::unique_ptr<UCaseMap, CaseMapDeleter> map = [] {
    UErrorCode err = U_ZERO_ERROR;
    UCaseMap* m = ucasemap_open(
        "", U_TITLECASE_WHOLE_STRING | U_TITLECASE_NO_BREAK_ADJUSTMENT | U_TITLECASE_NO_LOWERCASE,
        &err);
    return std::unique_ptr<UCaseMap, CaseMapDeleter>(U_SUCCESS(err) ? m : nullptr);
  }();
  if (!map) return one;
  char buf[32];
  UErrorCode err = U_ZERO_ERROR;
  const int32_t n = ucasemap_utf8ToTitle(map.get(), buf, sizeof(buf), one.data(),
                                         static_cast<int32_t>(one.size()), &err);
  if (U_FAILURE(err) || n < 0 || n > static_cast<int32_t>(sizeof(buf))) return one;
  return std::string(buf, static_cast<size_t>(n));
}

std::string py_capitalize(std::string_view s) {
  if (s.empty()) return "";
  const std::vector<char32_t> cps = decode(s);
  std::string out = title_case_code_point(cps[0]);
  for (size_t i = 1; i < cps.size(); ++i) out += lower_at(cps, i);
  return out;
}

std::string py_title(std::string_view s) {
  const std::vector<char32_t> cps = decode(s);
  std::string out;
  out.reserve(s.size());
  bool previous_is_cased = false;
  for (size_t i = 0; i < cps.size(); ++i) {
    out += previous_is_cased ? lower_at(cps, i) : title_case_code_point(cps[i]);
    previous_is_cased = is_cased(cps[i]);
  }
  return out;
}

std::string py_swapcase(std::string_view s) {
  const std::vector<char32_t> cps = decode(s);
  std::string out;
  for (size_t i = 0; i < cps.size(); ++i) {
    std::string one;
    append_utf8(cps[i], &one);
    if (is_upper(cps[i])) {
      out += lower_at(cps, i);
    } else if (is_lower(cps[i])) {
      out += to_upper(one);
    } else {
      out += one;
    }
  }
  return out;
}

bool py_isupper(std::string_view s) {
  bool cased = false;
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = next_code_point(s, &pos);
    if (is_lower(c) || is_title(c)) return false;
    if (is_upper(c)) cased = true;
  }
  return cased;
}

bool py_islower(std::string_view s) {
  bool cased = false;
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = next_code_point(s, &pos);
    if (is_upper(c) || is_title(c)) return false;
    if (is_lower(c)) cased = true;
  }
  return cased;
}

std::string_view py_strip(std::string_view s, const std::string_view* chars, bool left,
                          bool right) {
  std::vector<char32_t> set;
  if (chars != nullptr) set = decode(*chars);
  auto strippable = [&](char32_t cp) {
    if (chars == nullptr) return is_space(cp);
    for (char32_t c : set) {
      if (c == cp) return true;
    }
    return false;
  };
  size_t begin = 0;
  size_t end = s.size();
  if (left) {
    while (begin < end) {
      size_t pos = begin;
      if (!strippable(next_code_point(s, &pos))) break;
      begin = pos;
    }
  }
  if (right) {
    while (end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
      size_t pos = start;
      if (!strippable(next_code_point(s, &pos))) break;
      end = start;
    }
  }
  return s.substr(begin, end - begin);
}

std::vector<std::string> py_splitlines(std::string_view s, bool keepends) {
  std::vector<std::string> lines;
  size_t start = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t at = pos;
    const char32_t c = next_code_point(s, &pos);
    const bool is_break = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C ||
                          c == 0x1D || c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!is_break) continue;
    if (c == '\r' && pos < s.size() && s[pos] == '\n') ++pos;
    lines.emplace_back(s.substr(start, (keepends ? pos : at) - start));
    start = pos;
  }
  if (start < s.size()) lines.emplace_back(s.substr(start));
  return lines;
}

std::string py_repr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back(quote);
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = next_code_point(s, &pos);
    auto hex = [&](char prefix, int digits) {
      out.push_back('\\');
      out.push_back(prefix);
      for (int k = digits - 1; k >= 0; --k) out.push_back(kHex[(c >> (4 * k)) & 0xF]);
    };
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      hex('x', 2);
    } else if (c < 0x7F || is_printable(c)) {
      append_utf8(c, &out);
    } else if (c <= 0xFF) {
      hex('x', 2);
    } else if (c <= 0xFFFF) {
      hex('u', 4);
    } else {
      hex('U', 8);
    }
  }
  out.push_back(quote);
  return out;
}

}  // namespace kite::jinja::unicode
