// Jinja2's builtin filters (jinja2/filters.py, 3.1) with transformers' `tojson` override.
// Filters that return generators in Jinja (map, select, items, unique, batch, slice, reverse)
// return one-shot Generator objects here too, so `|length` on them fails and `if` on them is
// always true, exactly as in Python.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "frontend/jinja/builtins.h"
#include "frontend/jinja/json_value.h"
#include "frontend/jinja/renderer.h"
#include "frontend/jinja/string_format.h"
#include "frontend/jinja/unicode.h"

namespace kite::jinja {

namespace {

Value generator(std::vector<Value> items, std::string type = "generator") {
  return Value::object(std::make_shared<Generator>(std::move(items), std::move(type)));
}

// soft_str: Markup stays Markup, everything else goes through str().
Value soft_str(const Value& v) { return v.is_string() ? v : Value(to_str(v)); }

int64_t int_param(const Value& v, const char* what) {
  if (!v.is_integral()) {
    type_error("'" + type_name(v) + "' object cannot be interpreted as an integer (" + what + ")");
  }
  return v.as_int();
}

Value ignore_case(const Value& v) {
  return v.is_string() ? Value(unicode::to_lower(v.as_string())) : v;
}

// make_attrgetter: "a.b.0" walks items (getitem first); digits become integer indexes.
std::vector<Value> attribute_parts(const Value& attribute) {
  std::vector<Value> parts;
  if (attribute.is_none()) return parts;
  if (!attribute.is_string()) {
    parts.push_back(attribute);
    return parts;
  }
  const std::string& s = attribute.as_string();
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    std::string part = s.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
    if (digits && part.size() < 18) {
      parts.emplace_back(static_cast<int64_t>(std::stoll(part)));
    } else {
      parts.emplace_back(std::move(part));
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

Value get_path(Renderer& r, Value item, const std::vector<Value>& parts, const Value* dflt) {
  for (const Value& part : parts) {
    item = get_item(r, item, part);
    if (dflt != nullptr && !dflt->is_none() && item.is_undefined()) item = *dflt;
  }
  return item;
}

// ---- string filters ----

Value f_upper(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("upper", a, {});
  return Value(unicode::to_upper(to_str(v)));
}
Value f_lower(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("lower", a, {});
  return Value(unicode::to_lower(to_str(v)));
}
Value f_capitalize(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("capitalize", a, {});
  return Value(unicode::py_capitalize(to_str(v)));
}
Value f_title(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("title", a, {});
  // Jinja splits on runs of [-\s({\[<] and upper-cases the first character of every piece.
  const std::vector<char32_t> cps = unicode::decode(to_str(v));
  auto is_sep = [](char32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || unicode::is_space(c);
  };
  std::string out;
  size_t i = 0;
  while (i < cps.size()) {
    size_t j = i;
    const bool sep = is_sep(cps[i]);
    while (j < cps.size() && is_sep(cps[j]) == sep) ++j;
    std::string first;
    unicode::append_utf8(cps[i], &first);
    out += unicode::to_upper(first);
    out += unicode::to_lower(
        unicode::encode(std::vector<char32_t>(cps.begin() + i + 1, cps.begin() + j)));
    i = j;
  }
  return Value(std::move(out));
}
Value f_trim(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder b("trim", a, {"chars"});
  const std::string s = to_str(v);
  const Value* chars = b.get(0);
  if (chars == nullptr || chars->is_none()) {
    return Value(std::string(unicode::py_strip(s, nullptr, true, true)));
  }
  if (!chars->is_string()) type_error("strip arg must be None or str");
  const std::string_view set = chars->as_string();
  return Value(std::string(unicode::py_strip(s, &set, true, true)));
}
Value f_string(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("string", a, {});
  return soft_str(v);
}
Value f_safe(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("safe", a, {});
  return Value(to_str(v), true);
}
Value f_escape(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("escape", a, {});
  if (v.is_safe()) return v;
  return Value(html_escape(to_str(v)), true);
}
Value f_forceescape(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("forceescape", a, {});
  return Value(html_escape(to_str(v)), true);
}
Value f_replace(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("replace", a, {"old", "new", "count"});
  CallArgs m;
  m.args = {Value(to_str(b.required(0))), Value(to_str(b.required(1)))};
  if (b.get(2) && !b.get(2)->is_none()) m.args.push_back(*b.get(2));
  return r.call(*python_attribute(Value(to_str(v)), "replace"), std::move(m));
}
Value f_center(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("center", a, {"width"});
  CallArgs m;
  m.args = {b.get_or(0, Value(static_cast<int64_t>(80)))};
  return r.call(*python_attribute(Value(to_str(v)), "center"), std::move(m));
}
Value f_format(Renderer& r, const Value& v, const CallArgs& a) {
  if (!a.args.empty() && !a.kwargs.empty()) {
    type_error("can't handle positional and keyword arguments at the same time");
  }
  Value args;
  if (!a.kwargs.empty()) {
    DictData d;
    for (const auto& [k, x] : a.kwargs) d.set(Value(k), x);
    args = Value::dict(std::move(d));
  } else {
    args = Value::list(a.args, ListTag::kTuple);
  }
  const Value s = soft_str(v);
  return Value(percent_format(r, s.as_string(), args), s.is_safe());
}
Value f_indent(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("indent", a, {"width", "first", "blank"});
  const Value width = b.get_or(0, Value(static_cast<int64_t>(4)));
  std::string indention;
  if (width.is_string()) {
    indention = width.as_string();
  } else {
    const int64_t n = int_param(width, "width");
    if (n > 0) {
      r.check_size(static_cast<size_t>(n));
      indention.assign(static_cast<size_t>(n), ' ');
    }
  }
  const bool first = b.get(1) && truthy(*b.get(1));
  const bool blank = b.get(2) && truthy(*b.get(2));
  const std::string s = to_str(v) + "\n";
  const std::vector<std::string> lines = unicode::py_splitlines(s, false);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) rv += "\n" + indention;
      rv += lines[i];
      r.check_size(rv.size());
    }
  } else {
    rv = lines.empty() ? std::string() : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += "\n";
      if (!lines[i].empty()) rv += indention;
      rv += lines[i];
      r.check_size(rv.size());
    }
  }
  if (first) rv = indention + rv;
  return Value(std::move(rv), v.is_safe());
}
Value f_truncate(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder b("truncate", a, {"length", "killwords", "end", "leeway"});
  const std::string s = to_str(v);
  const int64_t length = int_param(b.get_or(0, Value(static_cast<int64_t>(255))), "length");
  const bool killwords = b.get(1) && truthy(*b.get(1));
  const std::string end = b.get(2) ? to_str(*b.get(2)) : "...";
  const int64_t leeway = b.get(3) && !b.get(3)->is_none() ? int_param(*b.get(3), "leeway") : 5;
  const auto end_len = static_cast<int64_t>(unicode::length(end));
  if (length < end_len)
    fail(ErrorKind::kType,
         "expected length >= " + std::to_string(end_len) + ", got " + std::to_string(length));
  if (leeway < 0) fail(ErrorKind::kType, "expected leeway >= 0, got " + std::to_string(leeway));
  const auto offsets = unicode::code_point_offsets(s);
  const auto len = static_cast<int64_t>(offsets.size() - 1);
  if (len <= length + leeway) return Value(s);
  std::string head = s.substr(0, offsets[static_cast<size_t>(length - end_len)]);
  if (!killwords) {
    const size_t space = head.rfind(' ');
    if (space != std::string::npos) head.resize(space);
  }
  return Value(head + end);
}
Value f_wordcount(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("wordcount", a, {});
  const std::string s = to_str(v);
  int64_t n = 0;
  bool in_word = false;
  size_t pos = 0;
  while (pos < s.size()) {
    const bool w = unicode::is_word(unicode::next_code_point(s, &pos));
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}
Value f_urlencode(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("urlencode", a, {});
  auto quote = [](const Value& x, bool for_qs) {
    const std::string s = to_str(x);
    std::string out;
    for (char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '_' ||
          u == '.' || u == '-' || u == '~' || (!for_qs && u == '/')) {
        out.push_back(c);
      } else if (for_qs && u == ' ') {
        out.push_back('+');
      } else {
        char buf[4];
        std::snprintf(buf, sizeof(buf), "%%%02X", u);
        out += buf;
      }
    }
    return out;
  };
  if (v.is_string() || !is_iterable(v)) return Value(quote(v, false));
  std::vector<Value> pairs;
  if (v.is_dict()) {
    for (const auto& [k, x] : v.as_dict().entries())
      pairs.push_back(Value::list({k, x}, ListTag::kTuple));
  } else {
    pairs = iterate(v);
  }
  std::string out;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const std::vector<Value> kv = iterate(pairs[i]);
    if (kv.size() != 2) type_error("urlencode expects key/value pairs");
    if (i) out += "&";
    out += quote(kv[0], true) + "=" + quote(kv[1], true);
  }
  return Value(std::move(out));
}
Value f_filesizeformat(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder b("filesizeformat", a, {"binary"});
  double bytes;
  if (v.is_number()) {
    bytes = v.as_float();
  } else if (v.is_string()) {
    char* end = nullptr;
    bytes = std::strtod(v.as_string().c_str(), &end);
    if (end == v.as_string().c_str()) type_error("could not convert string to float");
  } else {
    type_error("float() argument must be a string or a real number, not '" + type_name(v) + "'");
  }
  const bool binary = b.get(0) && truthy(*b.get(0));
  const double base = binary ? 1024 : 1000;
  static constexpr const char* kDecimal[] = {"kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  static constexpr const char* kBinary[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"};
  if (bytes == 1) return Value("1 Byte");
  if (bytes < base) return Value(std::to_string(static_cast<int64_t>(bytes)) + " Bytes");
  double unit = base;
  const char* prefix = nullptr;
  for (int i = 0; i < 8; ++i) {
    unit = std::pow(base, i + 2);
    prefix = binary ? kBinary[i] : kDecimal[i];
    if (bytes < unit) break;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f %s", base * bytes / unit, prefix);
  return Value(buf);
}

// ---- numbers ----

Value f_abs(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("abs", a, {});
  if (v.is_integral()) {
    const int64_t x = v.as_int();
    if (x == INT64_MIN)
      fail(ErrorKind::kUnsupported, "integer overflow (kite's template integers are 64-bit)");
    return Value(x < 0 ? -x : x);
  }
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  if (v.is_undefined()) v.fail_undefined();
  type_error("bad operand type for abs(): '" + type_name(v) + "'");
}

// Python float(str): optional whitespace, sign, digits with single underscores, inf/nan.
std::optional<double> parse_python_float(std::string_view text) {
  const std::string s(unicode::py_strip(text, nullptr, true, true));
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (i == 0 || i + 1 >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
        return std::nullopt;
      }
      continue;
    }
    clean.push_back(s[i]);
  }
  if (clean.empty()) return std::nullopt;
  std::string lower = unicode::to_lower(clean);
  std::string_view body = lower;
  double sign = 1.0;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    sign = body[0] == '-' ? -1.0 : 1.0;
    body.remove_prefix(1);
  }
  if (body == "inf" || body == "infinity") return sign * INFINITY;
  if (body == "nan") return sign * NAN;
  for (char c : body) {
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == '+' ||
          c == '-')) {
      return std::nullopt;
    }
  }
  char* end = nullptr;
  const double d = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return d;
}

Value f_float(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder b("float", a, {"default"});
  const Value dflt = b.get_or(0, Value(0.0));
  if (v.is_undefined()) v.fail_undefined();
  if (v.is_number()) return Value(v.as_float());
  if (v.is_string()) {
    if (auto d = parse_python_float(v.as_string())) return Value(*d);
  }
  return dflt;
}

std::optional<int64_t> parse_python_int(std::string_view text, int64_t base) {
  std::string s(unicode::py_strip(text, nullptr, true, true));
  bool negative = false;
  std::string_view body = s;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body.size() > 2 && body[0] == '0') {
    const char x = static_cast<char>(body[1] | 0x20);
    const int64_t prefixed = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;
    if (prefixed != 0 && (base == prefixed || base == 0)) {
      base = prefixed;
      body.remove_prefix(2);
      if (!body.empty() && body[0] == '_') body.remove_prefix(1);
    }
  }
  if (base == 0) base = 10;
  if (base < 2 || base > 36 || body.empty()) return std::nullopt;
  int64_t value = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '_') {
      if (i == 0 || i + 1 >= body.size() || body[i + 1] == '_') return std::nullopt;
      continue;
    }
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
      d = (c | 0x20) - 'a' + 10;
    } else {
      return std::nullopt;
    }
    if (d >= base) return std::nullopt;
    if (__builtin_mul_overflow(value, base, &value) || __builtin_add_overflow(value, d, &value)) {
      fail(ErrorKind::kUnsupported, "integer overflow (kite's template integers are 64-bit)");
    }
  }
  return negative ? -value : value;
}

Value f_int(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder b("int", a, {"default", "base"});
  const Value dflt = b.get_or(0, Value(static_cast<int64_t>(0)));
  const int64_t base = int_param(b.get_or(1, Value(static_cast<int64_t>(10))), "base");
  if (v.is_undefined()) v.fail_undefined();
  if (v.is_integral()) return Value(v.as_int());
  auto from_float = [&](double d) -> Value {
    if (!std::isfinite(d)) return dflt;
    if (d >= 9.2e18 || d <= -9.2e18) {
      fail(ErrorKind::kUnsupported, "integer overflow (kite's template integers are 64-bit)");
    }
    return Value(static_cast<int64_t>(d));
  };
  if (v.is_float()) return from_float(v.as_float());
  if (v.is_string()) {
    if (auto i = parse_python_int(v.as_string(), base)) return Value(*i);
    if (auto d = parse_python_float(v.as_string())) return from_float(*d);
  }
  return dflt;
}

// Python's round(x, ndigits) for floats: round-half-even on the exact binary value.
double round_half_even(double x, int64_t ndigits) {
  if (!std::isfinite(x)) return x;
  if (ndigits >= 0) {
    if (ndigits > 330) return x;
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(ndigits), x);
    return std::strtod(buf, nullptr);
  }
  if (ndigits < -330) return 0.0 * x;
  const double p = std::pow(10.0, static_cast<double>(-ndigits));
  const double y = x / p;
  double r = std::nearbyint(y);  // default rounding mode: ties to even
  return r * p;
}

Value f_round(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder b("round", a, {"precision", "method"});
  const int64_t precision = int_param(b.get_or(0, Value(static_cast<int64_t>(0))), "precision");
  const std::string method = b.get(1) ? to_str(*b.get(1)) : "common";
  if (method != "common" && method != "ceil" && method != "floor") {
    type_error("method must be common, ceil or floor");
  }
  if (v.is_undefined()) v.fail_undefined();
  if (!v.is_number()) type_error("type " + type_name(v) + " doesn't define __round__ method");
  if (method == "common") {
    if (v.is_integral()) {
      if (precision >= 0) return Value(v.as_int());
      const double p = std::pow(10.0, static_cast<double>(-precision));
      return Value(static_cast<int64_t>(std::nearbyint(static_cast<double>(v.as_int()) / p) * p));
    }
    return Value(round_half_even(v.as_float(), precision));
  }
  const double p = std::pow(10.0, static_cast<double>(precision));
  const double scaled = v.as_float() * p;
  const double rounded = method == "ceil" ? std::ceil(scaled) : std::floor(scaled);
  return Value(rounded / p);
}

// ---- sequences ----

Value f_length(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("length", a, {});
  return Value(static_cast<int64_t>(py_len(v)));
}
Value f_list(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("list", a, {});
  return Value::list(iterate(v));
}
Value f_first(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("first", a, {});
  if (v.is_object() && v.as_object()->is_iterable()) {
    if (auto item = v.as_object()->next_item()) return *item;
    return Value::undefined("No first item, sequence was empty.");
  }
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}
Value f_last(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("last", a, {});
  if (v.is_object()) type_error("'" + type_name(v) + "' object is not reversible");
  if (!v.is_undefined() && !v.is_string() && !v.is_list() && !v.is_dict()) {
    type_error("'" + type_name(v) + "' object is not reversible");
  }
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}
Value f_join(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("join", a, {"d", "attribute"});
  const std::string sep = b.get(0) ? to_str(*b.get(0)) : "";
  std::vector<Value> items = iterate(v);
  if (b.get(1) && !b.get(1)->is_none()) {
    const std::vector<Value> parts = attribute_parts(*b.get(1));
    for (Value& item : items) item = get_path(r, item, parts, nullptr);
  }
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += to_str(items[i]);
    r.check_size(out.size());
  }
  return Value(std::move(out));
}
Value f_reverse(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("reverse", a, {});
  if (v.is_string()) {
    std::vector<char32_t> cps = unicode::decode(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value(unicode::encode(cps));
  }
  if (v.is_list() || v.is_dict() || v.is_undefined()) {
    std::vector<Value> items = iterate(v);
    std::reverse(items.begin(), items.end());
    const char* type = v.is_dict()                                     ? "dict_reversekeyiterator"
                       : v.is_list() && v.list_tag() == ListTag::kList ? "list_reverseiterator"
                                                                       : "reversed";
    return generator(std::move(items), type);
  }
  if (!is_iterable(v)) type_error("argument must be iterable");
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}
Value f_items(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("items", a, {});
  if (v.is_undefined()) return generator({});
  if (!v.is_dict()) type_error("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, x] : v.as_dict().entries())
    out.push_back(Value::list({k, x}, ListTag::kTuple));
  return generator(std::move(out));
}
Value f_dictsort(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder b("dictsort", a, {"case_sensitive", "by", "reverse"});
  const bool case_sensitive = b.get(0) && truthy(*b.get(0));
  const std::string by = b.get(1) ? to_str(*b.get(1)) : "key";
  const bool reverse = b.get(2) && truthy(*b.get(2));
  if (by != "key" && by != "value") type_error("You can only sort by either \"key\" or \"value\"");
  if (!v.is_dict()) type_error("'" + type_name(v) + "' object has no attribute 'items'");
  std::vector<std::pair<Value, Value>> rows;  // (sort key, pair)
  for (const auto& [k, x] : v.as_dict().entries()) {
    const Value& sk = by == "key" ? k : x;
    rows.emplace_back(case_sensitive ? sk : ignore_case(sk), Value::list({k, x}, ListTag::kTuple));
  }
  std::stable_sort(rows.begin(), rows.end(), [&](const auto& p, const auto& q) {
    return reverse ? py_compare(q.first, p.first) == -1 : py_compare(p.first, q.first) == -1;
  });
  std::vector<Value> out;
  for (auto& row : rows) out.push_back(std::move(row.second));
  return Value::list(std::move(out));
}

std::vector<Value> multi_key(Renderer& r, const Value& item, const Value& attribute,
                             bool case_sensitive) {
  std::vector<Value> keys;
  if (attribute.is_string()) {
    const std::string& s = attribute.as_string();
    size_t start = 0;
    while (true) {
      const size_t comma = s.find(',', start);
      Value part(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      Value k = get_path(r, item, attribute_parts(part), nullptr);
      keys.push_back(case_sensitive ? k : ignore_case(k));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  } else {
    Value k = get_path(r, item, attribute_parts(attribute), nullptr);
    keys.push_back(case_sensitive ? k : ignore_case(k));
  }
  return keys;
}

Value f_sort(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("sort", a, {"reverse", "case_sensitive", "attribute"});
  const bool reverse = b.get(0) && truthy(*b.get(0));
  const bool case_sensitive = b.get(1) && truthy(*b.get(1));
  const Value attribute = b.get_or(2, Value::none());
  std::vector<Value> items = iterate(v);
  std::vector<std::pair<Value, Value>> rows;
  for (Value& item : items) {
    rows.emplace_back(Value::list(multi_key(r, item, attribute, case_sensitive)), std::move(item));
  }
  std::stable_sort(rows.begin(), rows.end(), [&](const auto& p, const auto& q) {
    return reverse ? py_compare(q.first, p.first) == -1 : py_compare(p.first, q.first) == -1;
  });
  std::vector<Value> out;
  for (auto& row : rows) out.push_back(std::move(row.second));
  return Value::list(std::move(out));
}

Value f_unique(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("unique", a, {"case_sensitive", "attribute"});
  const bool case_sensitive = b.get(0) && truthy(*b.get(0));
  const std::vector<Value> parts = attribute_parts(b.get_or(1, Value::none()));
  std::vector<Value> seen;
  std::vector<Value> out;
  for (Value& item : iterate(v)) {
    Value key = get_path(r, item, parts, nullptr);
    if (!case_sensitive) key = ignore_case(key);
    if (!is_hashable(key)) type_error("unhashable type: '" + type_name(key) + "'");
    bool dup = false;
    for (const Value& s : seen) dup = dup || py_equal(s, key);
    r.charge(seen.size() / 16);
    if (dup) continue;
    seen.push_back(std::move(key));
    out.push_back(std::move(item));
  }
  return generator(std::move(out));
}

Value min_max(Renderer& r, const char* name, const Value& v, const CallArgs& a, bool want_max) {
  ArgBinder b(name, a, {"case_sensitive", "attribute"});
  const bool case_sensitive = b.get(0) && truthy(*b.get(0));
  const std::vector<Value> parts = attribute_parts(b.get_or(1, Value::none()));
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key;
  for (size_t i = 0; i < items.size(); ++i) {
    Value key = get_path(r, items[i], parts, nullptr);
    if (!case_sensitive) key = ignore_case(key);
    if (i == 0 || py_compare(key, best_key) == (want_max ? 1 : -1)) {
      best = i;
      best_key = std::move(key);
    }
  }
  return items[best];
}
Value f_min(Renderer& r, const Value& v, const CallArgs& a) {
  return min_max(r, "min", v, a, false);
}
Value f_max(Renderer& r, const Value& v, const CallArgs& a) {
  return min_max(r, "max", v, a, true);
}

Value f_sum(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("sum", a, {"attribute", "start"});
  const std::vector<Value> parts = attribute_parts(b.get_or(0, Value::none()));
  Value total = b.get_or(1, Value(static_cast<int64_t>(0)));
  for (const Value& item : iterate(v)) {
    total = binary_op(r, Op::kAdd, total, get_path(r, item, parts, nullptr));
  }
  return total;
}

Value f_batch(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("batch", a, {"linecount", "fill_with"});
  const int64_t linecount = int_param(b.required(0), "linecount");
  const Value fill = b.get_or(1, Value::none());
  std::vector<Value> out;
  std::vector<Value> tmp;
  for (Value& item : iterate(v)) {
    if (static_cast<int64_t>(tmp.size()) == linecount) {
      out.push_back(Value::list(std::move(tmp)));
      tmp.clear();
    }
    tmp.push_back(std::move(item));
  }
  if (!tmp.empty()) {
    if (!fill.is_none() && static_cast<int64_t>(tmp.size()) < linecount) {
      r.check_size(static_cast<size_t>(linecount));
      tmp.resize(static_cast<size_t>(linecount), fill);
    }
    out.push_back(Value::list(std::move(tmp)));
  }
  return generator(std::move(out));
}

Value f_slice(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("slice", a, {"slices", "fill_with"});
  const int64_t slices = int_param(b.required(0), "slices");
  const Value fill = b.get_or(1, Value::none());
  const std::vector<Value> seq = iterate(v);
  if (slices == 0) fail(ErrorKind::kType, "integer division or modulo by zero");
  if (slices < 0) return generator({});
  r.check_size(static_cast<size_t>(slices));
  const auto length = static_cast<int64_t>(seq.size());
  const int64_t per = length / slices;
  const int64_t with_extra = length % slices;
  int64_t offset = 0;
  std::vector<Value> out;
  for (int64_t n = 0; n < slices; ++n) {
    const int64_t start = offset + n * per;
    if (n < with_extra) ++offset;
    const int64_t end = offset + (n + 1) * per;
    std::vector<Value> tmp(seq.begin() + std::min(start, length),
                           seq.begin() + std::min(end, length));
    if (!fill.is_none() && n >= with_extra) tmp.push_back(fill);
    out.push_back(Value::list(std::move(tmp)));
  }
  return generator(std::move(out));
}

Value f_groupby(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("groupby", a, {"attribute", "default", "case_sensitive"});
  const std::vector<Value> parts = attribute_parts(b.required(0));
  const Value dflt = b.get_or(1, Value::none());
  const bool case_sensitive = b.get(2) && truthy(*b.get(2));
  std::vector<std::pair<Value, Value>> rows;
  for (Value& item : iterate(v)) {
    Value key = get_path(r, item, parts, &dflt);
    rows.emplace_back(case_sensitive ? key : ignore_case(key), std::move(item));
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& p, const auto& q) { return py_compare(p.first, q.first) == -1; });
  std::vector<Value> out;
  size_t i = 0;
  while (i < rows.size()) {
    size_t j = i;
    std::vector<Value> group;
    while (j < rows.size() && py_equal(rows[j].first, rows[i].first))
      group.push_back(rows[j++].second);
    Value grouper = case_sensitive ? rows[i].first : get_path(r, group.front(), parts, &dflt);
    out.push_back(Value::list({grouper, Value::list(std::move(group))}, ListTag::kGroupTuple));
    i = j;
  }
  return Value::list(std::move(out));
}

Value f_default(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder b("default", a, {"default_value", "boolean"});
  const bool boolean = b.get(1) && truthy(*b.get(1));
  if (v.is_undefined() || (boolean && !truthy(v))) return b.get_or(0, Value(""));
  return v;
}

Value f_attr(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("attr", a, {"name"});
  const std::string name = to_str(b.required(0));
  if (v.is_undefined()) v.fail_undefined();
  if (v.is_object()) {
    if (v.as_object()->get_attr(r, name)) return get_attr(r, v, name);
  } else if (python_attribute(v, name)) {
    return get_attr(r, v, name);
  }
  return Value::undefined("'" + object_type_repr(v) + "' has no attribute '" + name + "'");
}

Value f_map(Renderer& r, const Value& v, const CallArgs& a) {
  std::vector<Value> out;
  if (!truthy(v)) return generator({});
  const std::vector<Value> items = iterate(v);
  bool by_attribute = a.args.empty();
  const Value* attribute = nullptr;
  const Value* dflt = nullptr;
  for (const auto& [k, x] : a.kwargs) {
    if (k == "attribute") attribute = &x;
  }
  by_attribute = by_attribute && attribute != nullptr;
  if (by_attribute) {
    for (const auto& [k, x] : a.kwargs) {
      if (k == "default") {
        dflt = &x;
      } else if (k != "attribute") {
        type_error("Unexpected keyword argument '" + k + "'");
      }
    }
    const std::vector<Value> parts = attribute_parts(*attribute);
    for (const Value& item : items) out.push_back(get_path(r, item, parts, dflt));
    return generator(std::move(out));
  }
  if (a.args.empty()) type_error("map requires a filter argument");
  const std::string name = to_str(a.args[0]);
  CallArgs rest;
  rest.args.assign(a.args.begin() + 1, a.args.end());
  rest.kwargs = a.kwargs;
  for (const Value& item : items) out.push_back(apply_filter(r, name, item, rest));
  return generator(std::move(out));
}

Value select_impl(Renderer& r, const Value& v, const CallArgs& a, bool attr, bool keep) {
  if (!truthy(v)) return generator({});
  size_t off = 0;
  std::vector<Value> parts;
  if (attr) {
    if (a.args.empty()) type_error("Missing parameter for attribute name");
    parts = attribute_parts(a.args[0]);
    off = 1;
  }
  const bool has_test = a.args.size() > off;
  const std::string test = has_test ? to_str(a.args[off]) : "";
  CallArgs rest;
  if (has_test)
    rest.args.assign(a.args.begin() + static_cast<std::ptrdiff_t>(off) + 1, a.args.end());
  rest.kwargs = a.kwargs;
  std::vector<Value> out;
  for (Value& item : iterate(v)) {
    const Value probe = attr ? get_path(r, item, parts, nullptr) : item;
    const bool ok = has_test ? apply_test(r, test, probe, rest) : truthy(probe);
    if (ok == keep) out.push_back(std::move(item));
  }
  return generator(std::move(out));
}
Value f_select(Renderer& r, const Value& v, const CallArgs& a) {
  return select_impl(r, v, a, false, true);
}
Value f_reject(Renderer& r, const Value& v, const CallArgs& a) {
  return select_impl(r, v, a, false, false);
}
Value f_selectattr(Renderer& r, const Value& v, const CallArgs& a) {
  return select_impl(r, v, a, true, true);
}
Value f_rejectattr(Renderer& r, const Value& v, const CallArgs& a) {
  return select_impl(r, v, a, true, false);
}

// transformers: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
Value f_tojson(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions o;
  o.ensure_ascii = b.get(0) && truthy(*b.get(0));
  o.sort_keys = b.get(3) && truthy(*b.get(3));
  if (const Value* indent = b.get(1); indent && !indent->is_none()) {
    if (indent->is_string()) {
      o.indent = indent->as_string();
    } else if (indent->is_integral()) {
      const int64_t n = indent->as_int();
      if (n > 0) r.check_size(static_cast<size_t>(n));
      o.indent = std::string(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
    } else {
      type_error("can't multiply sequence by non-int of type '" + type_name(*indent) + "'");
    }
    o.item_separator = ",";
  }
  if (const Value* seps = b.get(2); seps && !seps->is_none()) {
    const std::vector<Value> parts = iterate(*seps);
    if (parts.size() != 2) {
      type_error("separators must be a (item_separator, key_separator) pair");
    }
    o.item_separator = to_str(parts[0]);
    o.key_separator = to_str(parts[1]);
  }
  std::string out = to_json(v, o);
  r.check_size(out.size());
  return Value(std::move(out));
}

struct FilterDef {
  std::string_view name;
  FilterFn fn;
};

constexpr FilterDef kFilters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"batch", f_batch},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"filesizeformat", f_filesizeformat},
    {"first", f_first},
    {"float", f_float},
    {"forceescape", f_forceescape},
    {"format", f_format},
    {"groupby", f_groupby},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"slice", f_slice},
    {"sort", f_sort},
    {"string", f_string},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"truncate", f_truncate},
    {"unique", f_unique},
    {"upper", f_upper},
    {"urlencode", f_urlencode},
    {"wordcount", f_wordcount},
};

constexpr std::string_view kUnsupportedFilters[] = {"pprint", "random",   "striptags",
                                                    "urlize", "wordwrap", "xmlattr"};

}  // namespace

int find_filter(std::string_view name) {
  for (size_t i = 0; i < std::size(kFilters); ++i) {
    if (kFilters[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

FilterFn filter_at(int index) { return kFilters[index].fn; }

bool is_unsupported_filter(std::string_view name) {
  return std::find(std::begin(kUnsupportedFilters), std::end(kUnsupportedFilters), name) !=
         std::end(kUnsupportedFilters);
}

Value apply_filter(Renderer& r, std::string_view name, const Value& operand, const CallArgs& args) {
  const int i = find_filter(name);
  if (i < 0) {
    if (is_unsupported_filter(name)) {
      fail(ErrorKind::kUnsupported, "the '" + std::string(name) + "' filter is not supported");
    }
    fail(ErrorKind::kType, "No filter named '" + std::string(name) + "'.");
  }
  r.charge_scan(operand);
  return kFilters[i].fn(r, operand, args);
}

}  // namespace kite::jinja
