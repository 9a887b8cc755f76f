#include "frontend/jinja/string_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "frontend/jinja/builtins.h"
#include "frontend/jinja/renderer.h"
#include "frontend/jinja/unicode.h"

namespace kite::jinja {

namespace {

[[noreturn]] void value_error(std::string message) {
  throw TemplateError(ErrorKind::kType, std::move(message));
}

// snprintf into a std::string (C locale formatting of numbers is what Python produces).
std::string printf_string(const std::string& spec, double d) {
  const int n = std::snprintf(nullptr, 0, spec.c_str(), d);
  std::string out(static_cast<size_t>(std::max(n, 0)) + 1, '\0');
  std::snprintf(out.data(), out.size(), spec.c_str(), d);
  out.resize(static_cast<size_t>(std::max(n, 0)));
  return out;
}

std::string to_radix(uint64_t v, int base, bool upper) {
  if (v == 0) return "0";
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  while (v > 0) {
    out.push_back(digits[v % static_cast<uint64_t>(base)]);
    v /= static_cast<uint64_t>(base);
  }
  return std::string(out.rbegin(), out.rend());
}

uint64_t magnitude(int64_t v) {
  return v < 0 ? static_cast<uint64_t>(-(v + 1)) + 1 : static_cast<uint64_t>(v);
}

// Pads `body` (sign already included) to `width` code points.
std::string pad(Renderer& r, std::string body, size_t width, char align, char32_t fill,
                size_t sign_len) {
  const size_t len = unicode::length(body);
  if (width <= len) return body;
  r.check_size(width, 4);
  const size_t n = width - len;
  std::string fill_str;
  unicode::append_utf8(fill, &fill_str);
  auto repeat = [&](size_t k) {
    std::string s;
    for (size_t i = 0; i < k; ++i) s += fill_str;
    return s;
  };
  switch (align) {
    case '<':
      return body + repeat(n);
    case '^':
      return repeat(n / 2) + body + repeat(n - n / 2);
    case '=':
      return body.substr(0, sign_len) + repeat(n) + body.substr(sign_len);
    default:
      return repeat(n) + body;
  }
}

int64_t int_arg(const Value& v, char conv) {
  if (v.is_integral()) return v.as_int();
  if (v.is_float()) {
    const double d = v.as_float();
    if (std::isnan(d)) value_error("cannot convert float NaN to integer");
    if (std::isinf(d)) value_error("cannot convert float infinity to integer");
    if (d >= 9.2e18 || d <= -9.2e18) {
      fail(ErrorKind::kUnsupported, "integer overflow (kite's template integers are 64-bit)");
    }
    return static_cast<int64_t>(d);
  }
  type_error(std::string("%") + conv + " format: a real number is required, not " + type_name(v));
}

// One printf-style conversion.
std::string percent_one(Renderer& r, const Value& v, char conv, const std::string& flags,
                        int64_t width, int64_t precision) {
  const bool left = flags.find('-') != std::string::npos;
  const bool zero = flags.find('0') != std::string::npos && !left;
  const bool plus = flags.find('+') != std::string::npos;
  const bool space = flags.find(' ') != std::string::npos;
  const bool alt = flags.find('#') != std::string::npos;
  if (width > 0) r.check_size(static_cast<size_t>(width));
  const size_t w = width > 0 ? static_cast<size_t>(width) : 0;
  std::string body;
  size_t sign_len = 0;
  bool numeric = true;
  switch (conv) {
    case 's':
    case 'r':
    case 'a': {
      numeric = false;
      body = conv == 's' ? to_str(v) : repr(v);
      if (conv == 'a') {
        std::string ascii;
        size_t pos = 0;
        while (pos < body.size()) {
          const char32_t cp = unicode::next_code_point(body, &pos);
          char buf[16];
          if (cp < 0x80) {
            ascii.push_back(static_cast<char>(cp));
            continue;
          }
          std::snprintf(buf, sizeof(buf),
                        cp <= 0xFF     ? "\\x%02x"
                        : cp <= 0xFFFF ? "\\u%04x"
                                       : "\\U%08x",
                        static_cast<unsigned>(cp));
          ascii += buf;
        }
        body = std::move(ascii);
      }
      if (precision >= 0) {
        const auto offsets = unicode::code_point_offsets(body);
        if (static_cast<size_t>(precision) + 1 < offsets.size()) {
          body.resize(offsets[static_cast<size_t>(precision)]);
        }
      }
      break;
    }
    case 'c': {
      numeric = false;
      if (v.is_string()) {
        if (unicode::length(v.as_string()) != 1) type_error("%c requires int or char");
        body = v.as_string();
      } else if (v.is_integral()) {
        const int64_t cp = v.as_int();
        if (cp < 0 || cp > 0x10FFFF) fail(ErrorKind::kType, "%c arg not in range(0x110000)");
        if (cp >= 0xD800 && cp <= 0xDFFF) fail(ErrorKind::kUnsupported, "lone surrogate");
        unicode::append_utf8(static_cast<char32_t>(cp), &body);
      } else {
        type_error("%c requires int or char");
      }
      break;
    }
    case 'd':
    case 'i':
    case 'u':
    case 'o':
    case 'x':
    case 'X': {
      if ((conv == 'o' || conv == 'x' || conv == 'X') && !v.is_integral()) {
        type_error(std::string("%") + conv + " format: an integer is required, not " +
                   type_name(v));
      }
      const int64_t x = int_arg(v, conv);
      const int base = conv == 'o' ? 8 : (conv == 'x' || conv == 'X') ? 16 : 10;
      std::string digits = to_radix(magnitude(x), base, conv == 'X');
      if (precision > 0 && digits.size() < static_cast<size_t>(precision)) {
        r.check_size(static_cast<size_t>(precision));
        digits = std::string(static_cast<size_t>(precision) - digits.size(), '0') + digits;
      }
      std::string sign = x < 0 ? "-" : plus ? "+" : space ? " " : "";
      if (alt && base == 8) sign += "0o";
      if (alt && base == 16) sign += conv == 'X' ? "0X" : "0x";
      sign_len = sign.size();
      body = sign + digits;
      break;
    }
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G': {
      if (!v.is_number()) type_error("must be real number, not " + type_name(v));
      std::string spec = "%";
      if (plus) spec += '+';
      if (space) spec += ' ';
      if (alt) spec += '#';
      const int64_t prec = precision < 0 ? 6 : std::min<int64_t>(precision, 1000);
      spec += "." + std::to_string(prec) + conv;
      body = printf_string(spec, v.as_float());
      sign_len = (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) ? 1 : 0;
      if (!std::isfinite(v.as_float())) numeric = false;  // inf/nan pad with spaces
      break;
    }
    default:
      value_error(std::string("unsupported format character '") + conv + "'");
  }
  if (left) return pad(r, body, w, '<', ' ', 0);
  if (zero && numeric) return pad(r, body, w, '=', '0', sign_len);
  return pad(r, body, w, '>', ' ', 0);
}

}  // namespace

std::string percent_format(Renderer& r, std::string_view fmt, const Value& args) {
  std::vector<Value> positional;
  const Value* mapping = nullptr;
  if (args.is_list() &&
      (args.list_tag() == ListTag::kTuple || args.list_tag() == ListTag::kGroupTuple)) {
    positional = args.as_list().items;
  } else {
    positional.push_back(args);
    if (args.is_dict()) mapping = &args;
  }
  size_t next_arg = 0;
  bool used_mapping = false;
  auto take = [&]() -> const Value& {
    if (next_arg >= positional.size()) type_error("not enough arguments for format string");
    return positional[next_arg++];
  };
  std::string out;
  size_t i = 0;
  while (i < fmt.size()) {
    const char c = fmt[i];
    if (c != '%') {
      out.push_back(c);
      ++i;
      continue;
    }
    ++i;
    if (i >= fmt.size()) value_error("incomplete format");
    const Value* value = nullptr;
    Value keyed;
    if (fmt[i] == '(') {
      if (mapping == nullptr) type_error("format requires a mapping");
      int nesting = 1;
      size_t j = i + 1;
      while (j < fmt.size() && nesting > 0) {
        if (fmt[j] == '(') ++nesting;
        if (fmt[j] == ')') --nesting;
        ++j;
      }
      if (nesting > 0) value_error("incomplete format key");
      const std::string key(fmt.substr(i + 1, j - i - 2));
      const Value* found = mapping->as_dict().find(std::string_view(key));
      if (found == nullptr) fail(ErrorKind::kType, "KeyError: " + unicode::py_repr(key));
      keyed = *found;
      value = &keyed;
      used_mapping = true;
      i = j;
    }
    std::string flags;
    while (i < fmt.size() && std::string_view("-+ #0").find(fmt[i]) != std::string_view::npos) {
      flags.push_back(fmt[i++]);
    }
    auto read_number = [&]() -> int64_t {
      if (i < fmt.size() && fmt[i] == '*') {
        ++i;
        const Value& n = take();
        if (!n.is_integral()) type_error("* wants int");
        return n.as_int();
      }
      int64_t n = -1;
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') {
        n = (n < 0 ? 0 : n) * 10 + (fmt[i++] - '0');
        if (n > (int64_t{1} << 40)) value_error("width too big");
      }
      return n;
    };
    int64_t width = read_number();
    if (width < -1) {
      flags.push_back('-');
      width = -width;
    }
    int64_t precision = -1;
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      precision = std::max<int64_t>(read_number(), 0);
    }
    while (i < fmt.size() && (fmt[i] == 'h' || fmt[i] == 'l' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) value_error("incomplete format");
    const char conv = fmt[i++];
    if (conv == '%') {
      out.push_back('%');
      continue;
    }
    if (value == nullptr) value = &take();
    out += percent_one(r, *value, conv, flags, width, precision);
    r.check_size(out.size());
  }
  if (next_arg < positional.size() && !used_mapping && mapping == nullptr) {
    type_error("not all arguments converted during string formatting");
  }
  return out;
}

// ---- format-spec mini-language ----

namespace {

struct Spec {
  char32_t fill = ' ';
  char align = '\0';
  char sign = '\0';
  bool alt = false;
  bool zero = false;
  size_t width = 0;
  char grouping = '\0';
  int64_t precision = -1;
  char type = '\0';
};

Spec parse_spec(std::string_view s) {
  Spec spec;
  const std::vector<char32_t> cps = unicode::decode(s);
  size_t i = 0;
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (cps.size() >= 2 && is_align(cps[1])) {
    spec.fill = cps[0];
    spec.align = static_cast<char>(cps[1]);
    i = 2;
  } else if (!cps.empty() && is_align(cps[0])) {
    spec.align = static_cast<char>(cps[0]);
    i = 1;
  }
  if (i < cps.size() && (cps[i] == '+' || cps[i] == '-' || cps[i] == ' ')) {
    spec.sign = static_cast<char>(cps[i++]);
  }
  if (i < cps.size() && cps[i] == '#') {
    spec.alt = true;
    ++i;
  }
  if (i < cps.size() && cps[i] == '0') {
    spec.zero = true;
    ++i;
  }
  while (i < cps.size() && cps[i] >= '0' && cps[i] <= '9') {
    spec.width = spec.width * 10 + (cps[i++] - '0');
    if (spec.width > (size_t{1} << 40)) value_error("Too many decimal digits in format string");
  }
  if (i < cps.size() && (cps[i] == ',' || cps[i] == '_'))
    spec.grouping = static_cast<char>(cps[i++]);
  if (i < cps.size() && cps[i] == '.') {
    ++i;
    if (i >= cps.size() || cps[i] < '0' || cps[i] > '9')
      value_error("Format specifier missing precision");
    spec.precision = 0;
    while (i < cps.size() && cps[i] >= '0' && cps[i] <= '9') {
      spec.precision = spec.precision * 10 + (cps[i++] - '0');
      if (spec.precision > 100000) value_error("precision too big");
    }
  }
  if (i < cps.size()) spec.type = static_cast<char>(cps[i++]);
  if (i < cps.size()) value_error("Invalid format specifier");
  return spec;
}

std::string group_digits(const std::string& digits, char sep, size_t every) {
  if (sep == '\0') return digits;
  std::string out;
  const size_t n = digits.size();
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % every == 0) out.push_back(sep);
    out.push_back(digits[i]);
  }
  return out;
}

std::string finish_number(Renderer& r, const Spec& spec, bool negative, std::string prefix,
                          std::string digits) {
  std::string sign = negative ? "-" : spec.sign == '+' ? "+" : spec.sign == ' ' ? " " : "";
  sign += prefix;
  char align = spec.align ? spec.align : '>';
  char32_t fill = spec.fill;
  if (spec.zero && !spec.align) {
    align = '=';
    fill = '0';
  }
  return pad(r, sign + digits, spec.width, align, fill, sign.size());
}

std::string format_float(Renderer& r, double d, const Spec& spec) {
  char type = spec.type;
  double value = d;
  std::string suffix;
  if (type == '%') {
    value *= 100.0;
    type = 'f';
    suffix = "%";
  }
  std::string body;
  const bool negative = std::signbit(value) && !std::isnan(value);
  const double mag = std::fabs(value);
  if (std::isinf(mag) || std::isnan(mag)) {
    body = std::isnan(mag) ? "nan" : "inf";
    if (type == 'E' || type == 'F' || type == 'G') body = std::isnan(mag) ? "NAN" : "INF";
  } else if (type == '\0' && spec.precision < 0) {
    body = format_float_repr(mag);
  } else {
    const int64_t prec = spec.precision < 0 ? 6 : spec.precision;
    const char t = type == '\0' || type == 'n' ? 'g' : type;
    std::string fmt = "%";
    if (spec.alt) fmt += '#';
    fmt += "." + std::to_string(type == '\0' && prec == 0 ? 1 : prec) + t;
    body = printf_string(fmt, mag);
    if (type == '\0' && body.find_first_of(".eE") == std::string::npos) body += ".0";
  }
  if (spec.grouping && std::isfinite(mag)) {
    const size_t end = body.find_first_of(".eE");
    const std::string int_part = body.substr(0, end);
    body = group_digits(int_part, spec.grouping, 3) +
           (end == std::string::npos ? "" : body.substr(end));
  }
  return finish_number(r, spec, negative, "", body + suffix);
}

}  // namespace

std::string format_value(Renderer& r, const Value& value, std::string_view spec_text) {
  if (spec_text.empty()) return to_str(value);
  const Spec spec = parse_spec(spec_text);
  if (spec.width > 0) r.check_size(spec.width);
  if (value.is_string()) {
    if (spec.type != '\0' && spec.type != 's') {
      value_error(std::string("Unknown format code '") + spec.type + "' for object of type 'str'");
    }
    if (spec.sign) value_error("Sign not allowed in string format specifier");
    std::string s = value.as_string();
    if (spec.precision >= 0) {
      const auto offsets = unicode::code_point_offsets(s);
      if (static_cast<size_t>(spec.precision) + 1 < offsets.size()) {
        s.resize(offsets[static_cast<size_t>(spec.precision)]);
      }
    }
    char32_t fill = spec.fill;
    if (spec.zero && !spec.align) fill = '0';
    return pad(r, s, spec.width, spec.align ? spec.align : '<', fill, 0);
  }
  if (value.is_integral()) {
    const int64_t x = value.as_int();
    switch (spec.type) {
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G':
      case '%':
        return format_float(r, static_cast<double>(x), spec);
      default:
        break;
    }
    if (spec.precision >= 0) value_error("Precision not allowed in integer format specifier");
    std::string prefix;
    std::string digits;
    switch (spec.type) {
      case '\0':
      case 'd':
      case 'n':
        digits = group_digits(to_radix(magnitude(x), 10, false), spec.grouping, 3);
        break;
      case 'b':
        digits = group_digits(to_radix(magnitude(x), 2, false), spec.grouping, 4);
        if (spec.alt) prefix = "0b";
        break;
      case 'o':
        digits = group_digits(to_radix(magnitude(x), 8, false), spec.grouping, 4);
        if (spec.alt) prefix = "0o";
        break;
      case 'x':
      case 'X':
        digits = group_digits(to_radix(magnitude(x), 16, spec.type == 'X'), spec.grouping, 4);
        if (spec.alt) prefix = spec.type == 'X' ? "0X" : "0x";
        break;
      case 'c': {
        if (x < 0 || x > 0x10FFFF || (x >= 0xD800 && x <= 0xDFFF)) {
          value_error("%c arg not in range(0x110000)");
        }
        std::string ch;
        unicode::append_utf8(static_cast<char32_t>(x), &ch);
        return pad(r, ch, spec.width, spec.align ? spec.align : '<', spec.fill, 0);
      }
      default:
        value_error(std::string("Unknown format code '") + spec.type + "' for object of type '" +
                    type_name(value) + "'");
    }
    return finish_number(r, spec, x < 0, prefix, digits);
  }
  if (value.is_float()) {
    if (std::string_view("eEfFgGn%").find(spec.type) == std::string_view::npos &&
        spec.type != '\0') {
      value_error(std::string("Unknown format code '") + spec.type +
                  "' for object of type 'float'");
    }
    return format_float(r, value.as_float(), spec);
  }
  type_error("unsupported format string passed to " + type_name(value) + ".__format__");
}

std::string brace_format(Renderer& r, std::string_view fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  bool used_auto = false;
  bool used_manual = false;
  size_t i = 0;
  auto resolve = [&](std::string_view field) -> Value {
    size_t j = 0;
    while (j < field.size() && field[j] != '.' && field[j] != '[') ++j;
    const std::string_view head = field.substr(0, j);
    Value v;
    if (head.empty()) {
      if (used_manual) {
        value_error("cannot switch from manual field specification to automatic field numbering");
      }
      used_auto = true;
      if (auto_index >= args.args.size()) {
        fail(ErrorKind::kType, "IndexError: Replacement index " + std::to_string(auto_index) +
                                   " out of range for positional args tuple");
      }
      v = args.args[auto_index++];
    } else if (std::all_of(head.begin(), head.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      if (used_auto) {
        value_error("cannot switch from automatic field numbering to manual field specification");
      }
      used_manual = true;
      size_t idx = 0;
      for (char c : head) idx = std::min<size_t>(idx * 10 + static_cast<size_t>(c - '0'), 1u << 30);
      if (idx >= args.args.size()) {
        fail(ErrorKind::kType, "IndexError: Replacement index " + std::to_string(idx) +
                                   " out of range for positional args tuple");
      }
      v = args.args[idx];
    } else {
      bool found = false;
      for (const auto& [k, val] : args.kwargs) {
        if (k == head) {
          v = val;
          found = true;
        }
      }
      if (!found) fail(ErrorKind::kType, "KeyError: " + unicode::py_repr(head));
    }
    while (j < field.size()) {
      if (field[j] == '.') {
        size_t k = j + 1;
        while (k < field.size() && field[k] != '.' && field[k] != '[') ++k;
        if (k == j + 1) value_error("Empty attribute in format string");
        v = get_attr(r, v, field.substr(j + 1, k - j - 1));
        j = k;
      } else {
        const size_t close = field.find(']', j);
        if (close == std::string_view::npos) value_error("Missing ']' in format string");
        const std::string_view key = field.substr(j + 1, close - j - 1);
        if (key.empty()) value_error("Empty attribute in format string");
        const bool numeric =
            std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
        v = get_item(r, v,
                     numeric ? Value(static_cast<int64_t>(std::min<size_t>(
                                   std::stoull(std::string(key.substr(0, 12))), 1u << 30)))
                             : Value(key));
        j = close + 1;
      }
    }
    if (v.is_undefined()) v.fail_undefined();
    return v;
  };
  while (i < fmt.size()) {
    const char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out.push_back('}');
        i += 2;
        continue;
      }
      value_error("Single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      i += 2;
      continue;
    }
    // Find the matching '}' (format specs may nest one level of {}).
    size_t j = i + 1;
    int depth = 1;
    while (j < fmt.size() && depth > 0) {
      if (fmt[j] == '{') ++depth;
      if (fmt[j] == '}') --depth;
      if (depth > 0) ++j;
    }
    if (j >= fmt.size()) value_error("expected '}' before end of string");
    std::string_view field = fmt.substr(i + 1, j - i - 1);
    i = j + 1;
    std::string_view spec;
    char conversion = '\0';
    const size_t colon = field.find(':');
    if (colon != std::string_view::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    const size_t bang = field.find('!');
    if (bang != std::string_view::npos) {
      if (bang + 2 != field.size()) value_error("expected ':' after conversion specifier");
      conversion = field[bang + 1];
      field = field.substr(0, bang);
    }
    Value v = resolve(field);
    if (conversion == 'r' || conversion == 'a') {
      v = Value(repr(v));
    } else if (conversion == 's') {
      v = Value(to_str(v));
    } else if (conversion != '\0') {
      value_error(std::string("Unknown conversion specifier ") + conversion);
    }
    std::string expanded_spec;
    if (spec.find('{') != std::string_view::npos) {  // nested fields: "{:{width}}"
      size_t k = 0;
      while (k < spec.size()) {
        if (spec[k] != '{') {
          expanded_spec.push_back(spec[k++]);
          continue;
        }
        const size_t close = spec.find('}', k);
        if (close == std::string_view::npos) value_error("unmatched '{' in format spec");
        expanded_spec += to_str(resolve(spec.substr(k + 1, close - k - 1)));
        k = close + 1;
      }
      spec = expanded_spec;
    }
    out += format_value(r, v, spec);
    r.check_size(out.size());
  }
  return out;
}

}  // namespace kite::jinja
