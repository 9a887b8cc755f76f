// Python `str` semantics over UTF-8: the template interpreter keeps every string as valid UTF-8
// and counts, indexes and slices by code point, as Python does. Character classes and case
// mappings follow Python's definitions (str.isspace, str.isprintable, str.upper, ...), with
// the Unicode tables of ICU.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kite::jinja::unicode {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s);

// REQUIRES: is_valid_utf8(s) for the decoding functions below.
std::vector<char32_t> decode(std::string_view s);
// Decodes the code point at byte offset `*pos` and advances `*pos` past it.
char32_t next_code_point(std::string_view s, size_t* pos);
void append_utf8(char32_t cp, std::string* out);
std::string encode(const std::vector<char32_t>& cps);
// Number of code points.
size_t length(std::string_view s);
// Byte offsets of each code point start, plus s.size() at the end (size length(s) + 1).
std::vector<size_t> code_point_offsets(std::string_view s);

// Python str.isspace() for one code point (also what `\s` matches in Python's re).
bool is_space(char32_t cp);
// Python str.isprintable() for one code point (what repr() leaves unescaped).
bool is_printable(char32_t cp);
bool is_alpha(char32_t cp);
bool is_decimal(char32_t cp);
bool is_digit(char32_t cp);
bool is_numeric(char32_t cp);
bool is_alnum(char32_t cp);
// Python's Cased / Lowercase / Uppercase properties and the Lt category.
bool is_cased(char32_t cp);
bool is_lower(char32_t cp);
bool is_upper(char32_t cp);
bool is_title(char32_t cp);
// `\w` in Python's re for str patterns: alphanumerics and underscore.
bool is_word(char32_t cp);

// Full case mappings of whole strings (SpecialCasing, final sigma), as str.upper()/lower().
std::string to_upper(std::string_view s);
std::string to_lower(std::string_view s);
// Full case folding (str.casefold()).
std::string fold_case(std::string_view s);
// Full titlecase mapping of one code point (str.title() of a single letter).
std::string title_case_code_point(char32_t cp);

// Python string methods with the same names.
std::string py_capitalize(std::string_view s);
std::string py_title(std::string_view s);
std::string py_swapcase(std::string_view s);
bool py_isupper(std::string_view s);
bool py_islower(std::string_view s);

// Python's strip family: `chars` = nullptr strips whitespace (is_space), else any code point in
// *chars.
std::string_view py_strip(std::string_view s, const std::string_view* chars, bool left, bool right);

// str.splitlines(keepends): splits at \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, \u2028, \u2029.
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);

// repr() of a str: quotes chosen and characters escaped exactly as CPython does.
std::string py_repr(std::string_view s);

}  // namespace kite::jinja::unicode
