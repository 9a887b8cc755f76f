// Python attributes of the builtin types (str, dict, list, tuple, int, float) that templates
// call — `content.strip()`, `message.get('x')`, `s.split('</think>')` — and Jinja's sandboxed
// attribute / item access around them.
#include <unicode/uchar.h>

#include <algorithm>
#include <cmath>

#include "frontend/jinja/builtins.h"
#include "frontend/jinja/renderer.h"
#include "frontend/jinja/string_format.h"
#include "frontend/jinja/unicode.h"

namespace kite::jinja {

namespace {

using Fn = BuiltinFunction::Fn;

[[noreturn]] void value_error(std::string message) {
  throw TemplateError(ErrorKind::kType, std::move(message));
}

const std::string& str_arg(const Value& v, const char* what) {
  if (!v.is_string()) type_error(std::string(what) + " must be str, not " + type_name(v));
  return v.as_string();
}

int64_t int_arg(const Value& v, const char* what) {
  if (!v.is_integral()) {
    type_error(std::string("'")
                   .append(type_name(v))
                   .append("' object cannot be interpreted as an integer (")
                   .append(what)
                   .append(")"));
  }
  return v.as_int();
}

// Python's slice index normalisation for str methods taking start/end (code point indices).
void adjust_range(const ArgBinder& b, size_t start_i, size_t end_i, int64_t len, int64_t* start,
                  int64_t* end) {
  *start = 0;
  *end = len;
  auto norm = [&](const Value* v, int64_t* out) {
    if (v == nullptr || v->is_none()) return;
    int64_t x = int_arg(*v, "slice index");
    if (x < 0) x = std::max<int64_t>(x + len, 0);
    *out = std::min(x, len);
  };
  norm(b.get(start_i), start);
  norm(b.get(end_i), end);
}

// Byte offsets of code point indices [start, end) in s.
std::string_view cp_substr(const std::string& s, const std::vector<size_t>& offsets, int64_t start,
                           int64_t end) {
  if (end < start) return std::string_view(s).substr(0, 0);
  const size_t a = offsets[static_cast<size_t>(start)];
  const size_t z = offsets[static_cast<size_t>(end)];
  return std::string_view(s).substr(a, z - a);
}

int64_t cp_index(const std::vector<size_t>& offsets, size_t byte) {
  return static_cast<int64_t>(std::lower_bound(offsets.begin(), offsets.end(), byte) -
                              offsets.begin());
}

Value str_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.emplace_back(std::move(p));
  return Value::list(std::move(items));
}

// ---- str methods ----

Value m_upper(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("upper", a, {});
  return Value(unicode::to_upper(self.as_string()));
}
Value m_lower(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("lower", a, {});
  return Value(unicode::to_lower(self.as_string()));
}
Value m_casefold(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("casefold", a, {});
  return Value(unicode::fold_case(self.as_string()));
}
Value m_title(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("title", a, {});
  return Value(unicode::py_title(self.as_string()));
}
Value m_capitalize(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("capitalize", a, {});
  return Value(unicode::py_capitalize(self.as_string()));
}
Value m_swapcase(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("swapcase", a, {});
  return Value(unicode::py_swapcase(self.as_string()));
}

Value strip_impl(const char* name, const Value& self, const CallArgs& a, bool left, bool right) {
  ArgBinder b(name, a, {"chars"});
  const Value* chars = b.get(0);
  if (chars == nullptr || chars->is_none()) {
    return Value(std::string(unicode::py_strip(self.as_string(), nullptr, left, right)));
  }
  if (!chars->is_string()) type_error(std::string(name) + " arg must be None or str");
  const std::string_view set = chars->as_string();
  return Value(std::string(unicode::py_strip(self.as_string(), &set, left, right)));
}
Value m_strip(Renderer&, const Value& self, const CallArgs& a) {
  return strip_impl("strip", self, a, true, true);
}
Value m_lstrip(Renderer&, const Value& self, const CallArgs& a) {
  return strip_impl("lstrip", self, a, true, false);
}
Value m_rstrip(Renderer&, const Value& self, const CallArgs& a) {
  return strip_impl("rstrip", self, a, false, true);
}

Value split_impl(const Value& self, const CallArgs& a, bool from_right) {
  ArgBinder b(from_right ? "rsplit" : "split", a, {"sep", "maxsplit"});
  const std::string& s = self.as_string();
  const Value* sep_v = b.get(0);
  int64_t maxsplit = b.get(1) ? int_arg(*b.get(1), "maxsplit") : -1;
  if (maxsplit < 0) maxsplit = INT64_MAX;
  std::vector<std::string> parts;
  if (sep_v == nullptr || sep_v->is_none()) {
    const std::vector<char32_t> cps = unicode::decode(s);
    const auto n = static_cast<int64_t>(cps.size());
    auto piece = [&](int64_t i, int64_t j) {
      std::vector<char32_t> sub(cps.begin() + i, cps.begin() + j);
      return unicode::encode(sub);
    };
    if (!from_right) {
      int64_t i = 0;
      while (true) {
        while (i < n && unicode::is_space(cps[static_cast<size_t>(i)])) ++i;
        if (i >= n) break;
        if (maxsplit-- == 0) {
          parts.push_back(piece(i, n));
          break;
        }
        int64_t j = i;
        while (j < n && !unicode::is_space(cps[static_cast<size_t>(j)])) ++j;
        parts.push_back(piece(i, j));
        i = j;
      }
    } else {
      int64_t i = n - 1;
      while (true) {
        while (i >= 0 && unicode::is_space(cps[static_cast<size_t>(i)])) --i;
        if (i < 0) break;
        if (maxsplit-- == 0) {
          parts.push_back(piece(0, i + 1));
          break;
        }
        int64_t j = i;
        while (j >= 0 && !unicode::is_space(cps[static_cast<size_t>(j)])) --j;
        parts.push_back(piece(j + 1, i + 1));
        i = j;
      }
      std::reverse(parts.begin(), parts.end());
    }
    return str_list(std::move(parts));
  }
  const std::string& sep = str_arg(*sep_v, "sep");
  if (sep.empty()) value_error("empty separator");
  if (!from_right) {
    size_t start = 0;
    while (maxsplit-- > 0) {
      const size_t at = s.find(sep, start);
      if (at == std::string::npos) break;
      parts.push_back(s.substr(start, at - start));
      start = at + sep.size();
    }
    parts.push_back(s.substr(start));
  } else {
    size_t end = s.size();
    while (maxsplit-- > 0 && end >= sep.size()) {
      const size_t at = s.rfind(sep, end - sep.size());
      if (at == std::string::npos) break;
      parts.push_back(s.substr(at + sep.size(), end - at - sep.size()));
      end = at;
    }
    parts.push_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
  }
  return str_list(std::move(parts));
}
Value m_split(Renderer&, const Value& self, const CallArgs& a) {
  return split_impl(self, a, false);
}
Value m_rsplit(Renderer&, const Value& self, const CallArgs& a) {
  return split_impl(self, a, true);
}

Value m_splitlines(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder b("splitlines", a, {"keepends"});
  return str_list(unicode::py_splitlines(self.as_string(), b.get(0) && truthy(*b.get(0))));
}

Value affix_impl(const char* name, const Value& self, const CallArgs& a, bool prefix) {
  ArgBinder b(name, a, {"prefix", "start", "end"});
  const std::string& s = self.as_string();
  const auto offsets = unicode::code_point_offsets(s);
  int64_t start, end;
  adjust_range(b, 1, 2, static_cast<int64_t>(offsets.size() - 1), &start, &end);
  const Value& arg = b.required(0);
  std::vector<Value> candidates;
  if (arg.is_string()) {
    candidates.push_back(arg);
  } else if (arg.is_list() && arg.list_tag() == ListTag::kTuple) {
    candidates = arg.as_list().items;
  } else {
    type_error(std::string(name) + " first arg must be str or a tuple of str, not " +
               type_name(arg));
  }
  if (start > static_cast<int64_t>(offsets.size() - 1)) return Value(false);
  const std::string_view window = cp_substr(s, offsets, start, std::max(start, end));
  for (const Value& c : candidates) {
    const std::string& x = str_arg(c, "tuple for startswith");
    if (end < start) continue;
    if (prefix ? window.substr(0, x.size()) == x
               : window.size() >= x.size() && window.substr(window.size() - x.size()) == x) {
      return Value(true);
    }
  }
  return Value(false);
}
Value m_startswith(Renderer&, const Value& self, const CallArgs& a) {
  return affix_impl("startswith", self, a, true);
}
Value m_endswith(Renderer&, const Value& self, const CallArgs& a) {
  return affix_impl("endswith", self, a, false);
}

// find / rfind / index / rindex / count over a code point range.
Value search_impl(const char* name, const Value& self, const CallArgs& a, bool reverse, bool raise,
                  bool count) {
  ArgBinder b(name, a, {"sub", "start", "end"});
  const std::string& s = self.as_string();
  const std::string& sub = str_arg(b.required(0), "substring");
  const auto offsets = unicode::code_point_offsets(s);
  const auto len = static_cast<int64_t>(offsets.size() - 1);
  int64_t start, end;
  adjust_range(b, 1, 2, len, &start, &end);
  if (start > len || end - start < static_cast<int64_t>(unicode::length(sub))) {
    if (count) return Value(static_cast<int64_t>(0));
    if (raise) value_error("substring not found");
    return Value(static_cast<int64_t>(-1));
  }
  const size_t base = offsets[static_cast<size_t>(start)];
  const std::string_view window = cp_substr(s, offsets, start, end);
  if (count) {
    if (sub.empty()) return Value(end - start + 1);
    int64_t n = 0;
    for (size_t at = window.find(sub); at != std::string_view::npos;
         at = window.find(sub, at + sub.size())) {
      ++n;
    }
    return Value(n);
  }
  const size_t at = reverse ? window.rfind(sub) : window.find(sub);
  if (at == std::string_view::npos) {
    if (raise) value_error("substring not found");
    return Value(static_cast<int64_t>(-1));
  }
  return Value(cp_index(offsets, base + at));
}
Value m_find(Renderer&, const Value& self, const CallArgs& a) {
  return search_impl("find", self, a, false, false, false);
}
Value m_rfind(Renderer&, const Value& self, const CallArgs& a) {
  return search_impl("rfind", self, a, true, false, false);
}
Value m_index(Renderer&, const Value& self, const CallArgs& a) {
  return search_impl("index", self, a, false, true, false);
}
Value m_rindex(Renderer&, const Value& self, const CallArgs& a) {
  return search_impl("rindex", self, a, true, true, false);
}
Value m_str_count(Renderer&, const Value& self, const CallArgs& a) {
  return search_impl("count", self, a, false, false, true);
}

Value m_replace(Renderer& r, const Value& self, const CallArgs& a) {
  ArgBinder b("replace", a, {"old", "new", "count"});
  const std::string& s = self.as_string();
  const std::string& old = str_arg(b.required(0), "replace() argument 1");
  const std::string& repl = str_arg(b.required(1), "replace() argument 2");
  int64_t count = b.get(2) ? int_arg(*b.get(2), "count") : -1;
  if (count < 0) count = INT64_MAX;
  std::string out;
  if (old.empty()) {
    const auto offsets = unicode::code_point_offsets(s);
    for (size_t i = 0; i + 1 < offsets.size(); ++i) {
      if (count-- > 0) out += repl;
      out.append(s, offsets[i], offsets[i + 1] - offsets[i]);
      r.check_size(out.size());
    }
    if (count-- > 0) out += repl;
    return Value(std::move(out));
  }
  size_t start = 0;
  while (count-- > 0) {
    const size_t at = s.find(old, start);
    if (at == std::string::npos) break;
    out.append(s, start, at - start);
    out += repl;
    r.check_size(out.size());
    start = at + old.size();
  }
  out.append(s, start, std::string::npos);
  r.check_size(out.size());
  return Value(std::move(out));
}

Value m_join(Renderer& r, const Value& self, const CallArgs& a) {
  ArgBinder b("join", a, {"iterable"});
  const std::vector<Value> items = iterate(b.required(0));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_string()) {
      type_error("sequence item " + std::to_string(i) + ": expected str instance, " +
                 type_name(items[i]) + " found");
    }
    if (i) out += self.as_string();
    out += items[i].as_string();
    r.check_size(out.size());
  }
  return Value(std::move(out));
}

char32_t fill_arg(const ArgBinder& b, size_t i) {
  if (b.get(i) == nullptr) return ' ';
  const std::string& f = str_arg(*b.get(i), "fill character");
  if (unicode::length(f) != 1) type_error("The fill character must be exactly one character long");
  size_t pos = 0;
  return unicode::next_code_point(f, &pos);
}

Value justify(Renderer& r, const char* name, const Value& self, const CallArgs& a, char how) {
  ArgBinder b(name, a, {"width", "fillchar"});
  const int64_t width = int_arg(b.required(0), "width");
  const char32_t fill = fill_arg(b, 1);
  const std::string& s = self.as_string();
  const auto len = static_cast<int64_t>(unicode::length(s));
  if (width <= len) return Value(s);
  r.check_size(static_cast<size_t>(width), 4);
  const int64_t marg = width - len;
  int64_t left = 0;
  if (how == '>') left = marg;
  if (how == '^') left = marg / 2 + (marg & width & 1);
  std::string f;
  unicode::append_utf8(fill, &f);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += f;
  out += s;
  for (int64_t i = 0; i < marg - left; ++i) out += f;
  return Value(std::move(out));
}
Value m_center(Renderer& r, const Value& self, const CallArgs& a) {
  return justify(r, "center", self, a, '^');
}
Value m_ljust(Renderer& r, const Value& self, const CallArgs& a) {
  return justify(r, "ljust", self, a, '<');
}
Value m_rjust(Renderer& r, const Value& self, const CallArgs& a) {
  return justify(r, "rjust", self, a, '>');
}

Value m_zfill(Renderer& r, const Value& self, const CallArgs& a) {
  ArgBinder b("zfill", a, {"width"});
  const int64_t width = int_arg(b.required(0), "width");
  const std::string& s = self.as_string();
  const auto len = static_cast<int64_t>(unicode::length(s));
  if (width <= len) return Value(s);
  r.check_size(static_cast<size_t>(width));
  const std::string zeros(static_cast<size_t>(width - len), '0');
  if (!s.empty() && (s[0] == '+' || s[0] == '-'))
    return Value(s.substr(0, 1) + zeros + s.substr(1));
  return Value(zeros + s);
}

Value partition_impl(const char* name, const Value& self, const CallArgs& a, bool from_right) {
  ArgBinder b(name, a, {"sep"});
  const std::string& s = self.as_string();
  const std::string& sep = str_arg(b.required(0), "sep");
  if (sep.empty()) value_error("empty separator");
  const size_t at = from_right ? s.rfind(sep) : s.find(sep);
  std::vector<Value> parts;
  if (at == std::string::npos) {
    parts = from_right ? std::vector<Value>{Value(""), Value(""), Value(s)}
                       : std::vector<Value>{Value(s), Value(""), Value("")};
  } else {
    parts = {Value(s.substr(0, at)), Value(sep), Value(s.substr(at + sep.size()))};
  }
  return Value::list(std::move(parts), ListTag::kTuple);
}
Value m_partition(Renderer&, const Value& self, const CallArgs& a) {
  return partition_impl("partition", self, a, false);
}
Value m_rpartition(Renderer&, const Value& self, const CallArgs& a) {
  return partition_impl("rpartition", self, a, true);
}

Value m_removeprefix(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder b("removeprefix", a, {"prefix"});
  const std::string& s = self.as_string();
  const std::string& p = str_arg(b.required(0), "removeprefix() argument");
  return Value(s.compare(0, p.size(), p) == 0 ? s.substr(p.size()) : s);
}
Value m_removesuffix(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder b("removesuffix", a, {"suffix"});
  const std::string& s = self.as_string();
  const std::string& p = str_arg(b.required(0), "removesuffix() argument");
  if (!p.empty() && s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0) {
    return Value(s.substr(0, s.size() - p.size()));
  }
  return Value(s);
}

Value m_format(Renderer& r, const Value& self, const CallArgs& a) {
  return Value(brace_format(r, self.as_string(), a));
}
Value m_format_map(Renderer& r, const Value& self, const CallArgs& a) {
  ArgBinder b("format_map", a, {"mapping"});
  const Value& m = b.required(0);
  if (!m.is_dict()) type_error("format_map() argument must be a mapping");
  CallArgs kw;
  for (const auto& [k, v] : m.as_dict().entries()) {
    if (k.is_string()) kw.kwargs.emplace_back(k.as_string(), v);
  }
  return Value(brace_format(r, self.as_string(), kw));
}

template <bool (*Pred)(char32_t)>
Value all_chars(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("is", a, {});
  const std::string& s = self.as_string();
  if (s.empty()) return Value(false);
  size_t pos = 0;
  while (pos < s.size()) {
    if (!Pred(unicode::next_code_point(s, &pos))) return Value(false);
  }
  return Value(true);
}
Value m_isascii(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("isascii", a, {});
  for (char c : self.as_string()) {
    if (static_cast<unsigned char>(c) >= 0x80) return Value(false);
  }
  return Value(true);
}
Value m_isprintable(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("isprintable", a, {});
  const std::string& s = self.as_string();
  size_t pos = 0;
  while (pos < s.size()) {
    if (!unicode::is_printable(unicode::next_code_point(s, &pos))) return Value(false);
  }
  return Value(true);
}
Value m_isupper(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("isupper", a, {});
  return Value(unicode::py_isupper(self.as_string()));
}
Value m_islower(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("islower", a, {});
  return Value(unicode::py_islower(self.as_string()));
}
Value m_istitle(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("istitle", a, {});
  const std::string& s = self.as_string();
  bool cased = false;
  bool previous_is_cased = false;
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = unicode::next_code_point(s, &pos);
    if (unicode::is_upper(c) || unicode::is_title(c)) {
      if (previous_is_cased) return Value(false);
      previous_is_cased = cased = true;
    } else if (unicode::is_lower(c)) {
      if (!previous_is_cased) return Value(false);
      previous_is_cased = cased = true;
    } else {
      previous_is_cased = false;
    }
  }
  return Value(cased);
}
Value m_isidentifier(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("isidentifier", a, {});
  const std::string& s = self.as_string();
  if (s.empty()) return Value(false);
  size_t pos = 0;
  const char32_t first = unicode::next_code_point(s, &pos);
  if (first != '_' && !u_hasBinaryProperty(static_cast<UChar32>(first), UCHAR_XID_START)) {
    return Value(false);
  }
  while (pos < s.size()) {
    if (!u_hasBinaryProperty(static_cast<UChar32>(unicode::next_code_point(s, &pos)),
                             UCHAR_XID_CONTINUE)) {
      return Value(false);
    }
  }
  return Value(true);
}

// ---- dict methods ----

Value m_get(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder b("get", a, {"key", "default"});
  const Value& key = b.required(0);
  if (!is_hashable(key)) type_error("unhashable type: '" + type_name(key) + "'");
  if (const Value* v = self.as_dict().find(key)) return *v;
  return b.get_or(1, Value::none());
}
Value m_keys(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("keys", a, {});
  std::vector<Value> out;
  for (const auto& kv : self.as_dict().entries()) out.push_back(kv.first);
  return Value::list(std::move(out), ListTag::kDictKeys);
}
Value m_values(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("values", a, {});
  std::vector<Value> out;
  for (const auto& kv : self.as_dict().entries()) out.push_back(kv.second);
  return Value::list(std::move(out), ListTag::kDictValues);
}
Value m_items(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("items", a, {});
  std::vector<Value> out;
  for (const auto& [k, v] : self.as_dict().entries()) {
    out.push_back(Value::list({k, v}, ListTag::kTuple));
  }
  return Value::list(std::move(out), ListTag::kDictItems);
}
Value m_copy(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("copy", a, {});
  if (self.is_dict()) return Value::dict(self.as_dict());
  return Value::list(self.as_list().items, ListTag::kList);
}

// ---- list / tuple methods ----

Value m_seq_count(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder b("count", a, {"value"});
  int64_t n = 0;
  for (const Value& x : self.as_list().items) n += py_equal(x, b.required(0));
  return Value(n);
}
Value m_seq_index(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder b("index", a, {"value", "start", "stop"});
  const auto& items = self.as_list().items;
  int64_t start, end;
  adjust_range(b, 1, 2, static_cast<int64_t>(items.size()), &start, &end);
  for (int64_t i = start; i < end; ++i) {
    if (py_equal(items[static_cast<size_t>(i)], b.required(0))) return Value(i);
  }
  value_error(repr(b.required(0)) + " is not in " + type_name(self));
}

// ---- numbers ----

Value m_bit_length(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("bit_length", a, {});
  const int64_t x = self.as_int();
  const uint64_t m = x < 0 ? static_cast<uint64_t>(-(x + 1)) + 1 : static_cast<uint64_t>(x);
  return Value(static_cast<int64_t>(m == 0 ? 0 : 64 - __builtin_clzll(m)));
}
Value m_bit_count(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("bit_count", a, {});
  const int64_t x = self.as_int();
  const uint64_t m = x < 0 ? static_cast<uint64_t>(-(x + 1)) + 1 : static_cast<uint64_t>(x);
  return Value(static_cast<int64_t>(__builtin_popcountll(m)));
}
Value m_conjugate(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("conjugate", a, {});
  return self.is_float() ? Value(self.as_float()) : Value(self.as_int());
}
Value m_is_integer(Renderer&, const Value& self, const CallArgs& a) {
  ArgBinder("is_integer", a, {});
  if (self.is_integral()) return Value(true);
  const double d = self.as_float();
  return Value(std::isfinite(d) && std::floor(d) == d);
}

Value m_unsupported(Renderer&, const Value& self, const CallArgs&) {
  fail(ErrorKind::kUnsupported, "the method " + self.as_string() + "() is not supported");
}

struct MethodDef {
  std::string_view name;
  Fn fn;
};

constexpr MethodDef kStrMethods[] = {
    {"capitalize", m_capitalize},
    {"casefold", m_casefold},
    {"center", m_center},
    {"count", m_str_count},
    {"encode", nullptr},
    {"endswith", m_endswith},
    {"expandtabs", nullptr},
    {"find", m_find},
    {"format", m_format},
    {"format_map", m_format_map},
    {"index", m_index},
    {"isalnum", all_chars<unicode::is_alnum>},
    {"isalpha", all_chars<unicode::is_alpha>},
    {"isascii", m_isascii},
    {"isdecimal", all_chars<unicode::is_decimal>},
    {"isdigit", all_chars<unicode::is_digit>},
    {"isidentifier", m_isidentifier},
    {"islower", m_islower},
    {"isnumeric", all_chars<unicode::is_numeric>},
    {"isprintable", m_isprintable},
    {"isspace", all_chars<unicode::is_space>},
    {"istitle", m_istitle},
    {"isupper", m_isupper},
    {"join", m_join},
    {"ljust", m_ljust},
    {"lower", m_lower},
    {"lstrip", m_lstrip},
    {"maketrans", nullptr},
    {"partition", m_partition},
    {"removeprefix", m_removeprefix},
    {"removesuffix", m_removesuffix},
    {"replace", m_replace},
    {"rfind", m_rfind},
    {"rindex", m_rindex},
    {"rjust", m_rjust},
    {"rpartition", m_rpartition},
    {"rsplit", m_rsplit},
    {"rstrip", m_rstrip},
    {"split", m_split},
    {"splitlines", m_splitlines},
    {"startswith", m_startswith},
    {"strip", m_strip},
    {"swapcase", m_swapcase},
    {"title", m_title},
    {"translate", nullptr},
    {"upper", m_upper},
    {"zfill", m_zfill},
};

constexpr MethodDef kDictMethods[] = {
    {"copy", m_copy},   {"fromkeys", nullptr}, {"get", m_get},
    {"items", m_items}, {"keys", m_keys},      {"values", m_values},
};
constexpr std::string_view kDictMutators[] = {"clear", "pop", "popitem", "setdefault", "update"};

constexpr MethodDef kListMethods[] = {
    {"copy", m_copy}, {"count", m_seq_count}, {"index", m_seq_index}};
constexpr MethodDef kTupleMethods[] = {{"count", m_seq_count}, {"index", m_seq_index}};
constexpr std::string_view kListMutators[] = {"append", "clear",  "extend",  "insert",
                                              "pop",    "remove", "reverse", "sort"};

constexpr MethodDef kIntMethods[] = {
    {"as_integer_ratio", nullptr}, {"bit_count", m_bit_count}, {"bit_length", m_bit_length},
    {"conjugate", m_conjugate},    {"from_bytes", nullptr},    {"is_integer", m_is_integer},
    {"to_bytes", nullptr},
};
constexpr MethodDef kFloatMethods[] = {
    {"as_integer_ratio", nullptr}, {"conjugate", m_conjugate},
    {"fromhex", nullptr},          {"hex", nullptr},
    {"is_integer", m_is_integer},
};
constexpr MethodDef kViewMethods[] = {{"isdisjoint", nullptr}, {"mapping", nullptr}};

template <size_t N>
std::optional<Value> bind(const MethodDef (&table)[N], const Value& self, std::string_view name,
                          const std::string& type) {
  for (const MethodDef& m : table) {
    if (m.name != name) continue;
    if (m.fn == nullptr) {
      return Value::object(std::make_shared<BuiltinFunction>(
          std::string(name), m_unsupported, Value(type + "." + std::string(name)), type));
    }
    return Value::object(std::make_shared<BuiltinFunction>(std::string(name), m.fn, self, type));
  }
  return std::nullopt;
}

Value unsafe(const Value& obj, std::string_view name) {
  return Value::undefined("access to attribute '" + std::string(name) + "' of '" + type_name(obj) +
                              "' object is unsafe.",
                          true);
}

bool is_dunder(std::string_view name) {
  return name.size() > 4 && name.substr(0, 2) == "__" && name.substr(name.size() - 2) == "__";
}

Value missing_attribute(const Value& obj, std::string_view name) {
  return Value::undefined(std::string("'")
                              .append(object_type_repr(obj))
                              .append("' has no attribute '")
                              .append(name)
                              .append("'"));
}

}  // namespace

std::optional<Value> python_attribute(const Value& self, std::string_view name) {
  switch (self.kind()) {
    case Value::Kind::kString:
      return bind(kStrMethods, self, name, "str");
    case Value::Kind::kDict:
      for (std::string_view m : kDictMutators) {
        if (m == name) return unsafe(self, name);
      }
      return bind(kDictMethods, self, name, "dict");
    case Value::Kind::kList:
      switch (self.list_tag()) {
        case ListTag::kList:
          for (std::string_view m : kListMutators) {
            if (m == name) return unsafe(self, name);
          }
          return bind(kListMethods, self, name, "list");
        case ListTag::kTuple:
          return bind(kTupleMethods, self, name, "tuple");
        case ListTag::kGroupTuple:
          if (name == "grouper") return self.as_list().items[0];
          if (name == "list") return self.as_list().items[1];
          return bind(kTupleMethods, self, name, "tuple");
        default:
          return bind(kViewMethods, self, name, type_name(self));
      }
    case Value::Kind::kBool:
    case Value::Kind::kInt:
      if (name == "real" || name == "numerator") return Value(self.as_int());
      if (name == "imag") return Value(static_cast<int64_t>(0));
      if (name == "denominator") return Value(static_cast<int64_t>(1));
      return bind(kIntMethods, self, name, type_name(self));
    case Value::Kind::kFloat:
      if (name == "real") return Value(self.as_float());
      if (name == "imag") return Value(0.0);
      return bind(kFloatMethods, self, name, "float");
    default:
      return std::nullopt;
  }
}

Value get_attr(Renderer& r, const Value& obj, std::string_view name) {
  if (obj.is_undefined()) obj.fail_undefined();
  if (is_dunder(name)) return unsafe(obj, name);
  if (obj.is_object()) {
    if (auto v = obj.as_object()->get_attr(r, name)) {
      if (!name.empty() && name[0] == '_') return unsafe(obj, name);
      return *v;
    }
    return missing_attribute(obj, name);
  }
  if (auto v = python_attribute(obj, name)) return *v;
  if (obj.is_dict()) {
    if (const Value* v = obj.as_dict().find(name)) return *v;
  }
  return missing_attribute(obj, name);
}

Value get_item(Renderer& r, const Value& obj, const Value& key) {
  if (obj.is_undefined()) obj.fail_undefined();
  switch (obj.kind()) {
    case Value::Kind::kDict:
      if (is_hashable(key)) {
        if (const Value* v = obj.as_dict().find(key)) return *v;
      }
      break;
    case Value::Kind::kList: {
      const ListTag tag = obj.list_tag();
      if (key.is_integral() &&
          (tag == ListTag::kList || tag == ListTag::kTuple || tag == ListTag::kGroupTuple)) {
        const auto& items = obj.as_list().items;
        int64_t i = key.as_int();
        if (i < 0) i += static_cast<int64_t>(items.size());
        if (i >= 0 && i < static_cast<int64_t>(items.size())) return items[static_cast<size_t>(i)];
      }
      break;
    }
    case Value::Kind::kString:
      if (key.is_integral()) {
        const std::string& s = obj.as_string();
        const auto offsets = unicode::code_point_offsets(s);
        const auto len = static_cast<int64_t>(offsets.size() - 1);
        int64_t i = key.as_int();
        if (i < 0) i += len;
        if (i >= 0 && i < len) {
          const auto at = static_cast<size_t>(i);
          return Value(s.substr(offsets[at], offsets[at + 1] - offsets[at]));
        }
      }
      break;
    default:
      break;
  }
  if (key.is_string()) {
    const std::string& name = key.as_string();
    if (is_dunder(name)) return unsafe(obj, name);
    if (obj.is_object()) {
      if (auto v = obj.as_object()->get_attr(r, name)) {
        if (!name.empty() && name[0] == '_') return unsafe(obj, name);
        return *v;
      }
    } else if (auto v = python_attribute(obj, name)) {
      return *v;
    }
    return missing_attribute(obj, name);
  }
  return Value::undefined(object_type_repr(obj) + " has no element " + repr(key));
}

Value slice_value(const Value& obj, const Value& start_v, const Value& stop_v,
                  const Value& step_v) {
  if (obj.is_undefined()) obj.fail_undefined();
  const bool seq = obj.is_string() || (obj.is_list() && (obj.list_tag() == ListTag::kList ||
                                                         obj.list_tag() == ListTag::kTuple ||
                                                         obj.list_tag() == ListTag::kGroupTuple));
  if (!seq) {
    return Value::undefined(object_type_repr(obj) + " has no element slice(" + repr(start_v) +
                            ", " + repr(stop_v) + ", " + repr(step_v) + ")");
  }
  // Jinja's getitem turns the TypeError of a non-integer index into an Undefined.
  for (const Value* v : {&start_v, &stop_v, &step_v}) {
    if (!v->is_none() && !v->is_integral()) {
      return Value::undefined(object_type_repr(obj) + " has no element slice(" + repr(start_v) +
                              ", " + repr(stop_v) + ", " + repr(step_v) + ")");
    }
  }
  auto index = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    return v.as_int();
  };
  const std::optional<int64_t> start_o = index(start_v);
  const std::optional<int64_t> stop_o = index(stop_v);
  const int64_t step = index(step_v).value_or(1);
  if (step == 0) value_error("slice step cannot be zero");
  std::vector<size_t> offsets;
  int64_t len;
  if (obj.is_string()) {
    offsets = unicode::code_point_offsets(obj.as_string());
    len = static_cast<int64_t>(offsets.size() - 1);
  } else {
    len = static_cast<int64_t>(obj.as_list().items.size());
  }
  const int64_t lower = step < 0 ? -1 : 0;
  const int64_t upper = step < 0 ? len - 1 : len;
  auto clamp = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t x = *v;
    if (x < 0) {
      x = x < -len ? lower : x + len;
      return std::max(x, lower);
    }
    return std::min(x, upper);
  };
  const int64_t start = clamp(start_o, step < 0 ? upper : lower);
  const int64_t stop = clamp(stop_o, step < 0 ? lower : upper);
  std::vector<int64_t> picks;
  if (step > 0) {
    for (int64_t i = start; i < stop; i += step) picks.push_back(i);
  } else {
    for (int64_t i = start; i > stop; i += step) picks.push_back(i);
  }
  if (obj.is_string()) {
    const std::string& s = obj.as_string();
    std::string out;
    if (step == 1 && !picks.empty()) {
      out = s.substr(offsets[static_cast<size_t>(start)],
                     offsets[static_cast<size_t>(stop)] - offsets[static_cast<size_t>(start)]);
    } else {
      for (int64_t i : picks) {
        const auto at = static_cast<size_t>(i);
        out.append(s, offsets[at], offsets[at + 1] - offsets[at]);
      }
    }
    return Value(std::move(out));
  }
  std::vector<Value> out;
  out.reserve(picks.size());
  for (int64_t i : picks) out.push_back(obj.as_list().items[static_cast<size_t>(i)]);
  return Value::list(std::move(out),
                     obj.list_tag() == ListTag::kList ? ListTag::kList : ListTag::kTuple);
}

}  // namespace kite::jinja
