// Arithmetic and comparison operators with Python semantics (int is 64-bit here: overflow is
// an error instead of a bigint).
#include <cmath>
#include <limits>

#include "frontend/jinja/renderer.h"
#include "frontend/jinja/string_format.h"

namespace kite::jinja {

namespace {

const char* op_symbol(Op op) {
  switch (op) {
    case Op::kAdd:
      return "+";
    case Op::kSub:
      return "-";
    case Op::kMul:
      return "*";
    case Op::kDiv:
      return "/";
    case Op::kFloorDiv:
      return "//";
    case Op::kMod:
      return "%";
    case Op::kPow:
      return "** or pow()";
    default:
      return "?";
  }
}

[[noreturn]] void unsupported(Op op, const Value& a, const Value& b) {
  type_error(std::string("unsupported operand type(s) for ") + op_symbol(op) + ": '" +
             type_name(a) + "' and '" + type_name(b) + "'");
}

[[noreturn]] void overflow() {
  fail(ErrorKind::kUnsupported, "integer overflow (kite's template integers are 64-bit)");
}

bool is_sequence_like(const Value& v) {
  return v.is_list() && (v.list_tag() == ListTag::kList || v.list_tag() == ListTag::kTuple ||
                         v.list_tag() == ListTag::kGroupTuple);
}

ListTag sequence_class(const Value& v) {
  return v.list_tag() == ListTag::kList ? ListTag::kList : ListTag::kTuple;
}

Value repeat(Renderer& r, const Value& seq, int64_t times) {
  if (times <= 0)
    return seq.is_string() ? Value(std::string(), seq.is_safe())
                           : Value::list({}, sequence_class(seq));
  // An empty sequence repeats to itself at once (a loop of `times` empty appends would spin).
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (s.empty()) return Value(std::string(), seq.is_safe());
    r.check_size(static_cast<size_t>(times), s.size());
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += s;
    return Value(std::move(out), seq.is_safe());
  }
  const auto& items = seq.as_list().items;
  if (items.empty()) return Value::list({}, sequence_class(seq));
  r.check_size(static_cast<size_t>(times), items.size());
  std::vector<Value> out;
  out.reserve(items.size() * static_cast<size_t>(times));
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out), sequence_class(seq));
}

double float_mod(double x, double y) {
  double mod = std::fmod(x, y);
  if (mod != 0.0) {
    if ((y < 0) != (mod < 0)) mod += y;
  } else {
    mod = std::copysign(0.0, y);
  }
  return mod;
}

double float_floor_div(double x, double y) {
  double mod = std::fmod(x, y);
  double div = (x - mod) / y;
  if (mod != 0.0 && (y < 0) != (mod < 0)) div -= 1.0;
  if (div != 0.0) {
    double floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
    return floordiv;
  }
  return std::copysign(0.0, x / y);
}

Value int_pow(int64_t base, int64_t exp) {
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) {
      if (__builtin_mul_overflow(result, base, &result)) overflow();
    }
    exp >>= 1;
    if (exp > 0 && __builtin_mul_overflow(base, base, &base)) overflow();
  }
  return Value(result);
}

Value number_op(Op op, const Value& a, const Value& b) {
  if (a.is_integral() && b.is_integral()) {
    const int64_t x = a.as_int();
    const int64_t y = b.as_int();
    int64_t out;
    switch (op) {
      case Op::kAdd:
        if (__builtin_add_overflow(x, y, &out)) overflow();
        return Value(out);
      case Op::kSub:
        if (__builtin_sub_overflow(x, y, &out)) overflow();
        return Value(out);
      case Op::kMul:
        if (__builtin_mul_overflow(x, y, &out)) overflow();
        return Value(out);
      case Op::kDiv:
        if (y == 0) fail(ErrorKind::kType, "division by zero");
        return Value(static_cast<double>(x) / static_cast<double>(y));
      case Op::kFloorDiv:
      case Op::kMod: {
        if (y == 0) fail(ErrorKind::kType, "integer division or modulo by zero");
        if (x == std::numeric_limits<int64_t>::min() && y == -1) {
          if (op == Op::kMod) return Value(static_cast<int64_t>(0));
          overflow();
        }
        int64_t q = x / y;
        int64_t m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          m += y;
          q -= 1;
        }
        return Value(op == Op::kMod ? m : q);
      }
      case Op::kPow:
        if (y >= 0) return int_pow(x, y);
        if (x == 0) fail(ErrorKind::kType, "0.0 cannot be raised to a negative power");
        return Value(std::pow(static_cast<double>(x), static_cast<double>(y)));
      default:
        break;
    }
  }
  const double x = a.as_float();
  const double y = b.as_float();
  switch (op) {
    case Op::kAdd:
      return Value(x + y);
    case Op::kSub:
      return Value(x - y);
    case Op::kMul:
      return Value(x * y);
    case Op::kDiv:
      if (y == 0.0) fail(ErrorKind::kType, "float division by zero");
      return Value(x / y);
    case Op::kFloorDiv:
      if (y == 0.0) fail(ErrorKind::kType, "float floor division by zero");
      return Value(float_floor_div(x, y));
    case Op::kMod:
      if (y == 0.0) fail(ErrorKind::kType, "float modulo");
      return Value(float_mod(x, y));
    case Op::kPow: {
      if (x == 0.0 && y < 0.0) fail(ErrorKind::kType, "0.0 cannot be raised to a negative power");
      if (x < 0.0 && std::floor(y) != y && std::isfinite(y)) {
        fail(ErrorKind::kUnsupported, "complex numbers are not supported");
      }
      const double p = std::pow(x, y);
      if (std::isinf(p) && std::isfinite(x) && std::isfinite(y)) {
        fail(ErrorKind::kType, "(34, 'Numerical result out of range')");
      }
      return Value(p);
    }
    default:
      break;
  }
  unsupported(op, a, b);
}

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '"':
        out += "&#34;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

Value binary_op(Renderer& r, Op op, const Value& a, const Value& b) {
  if (a.is_undefined()) a.fail_undefined();
  if (op == Op::kMod && a.is_string()) {  // str.__mod__ formats any value, even Undefined
    std::string s = percent_format(r, a.as_string(), b);
    r.check_size(s.size());
    return Value(std::move(s), a.is_safe());
  }
  if (b.is_undefined()) b.fail_undefined();
  if (a.is_number() && b.is_number()) return number_op(op, a, b);
  switch (op) {
    case Op::kAdd:
      if (a.is_string() && b.is_string()) {
        r.check_size(a.as_string().size() + b.as_string().size());
        if (a.is_safe() || b.is_safe()) {  // Markup escapes the plain side
          const std::string x = a.is_safe() ? a.as_string() : html_escape(a.as_string());
          const std::string y = b.is_safe() ? b.as_string() : html_escape(b.as_string());
          return Value(x + y, true);
        }
        return Value(a.as_string() + b.as_string());
      }
      if (a.is_string()) {
        type_error("can only concatenate str (not \"" + type_name(b) + "\") to str");
      }
      if (is_sequence_like(a) && is_sequence_like(b) && sequence_class(a) == sequence_class(b)) {
        const auto& x = a.as_list().items;
        const auto& y = b.as_list().items;
        r.check_size(x.size() + y.size());
        std::vector<Value> out;
        out.reserve(x.size() + y.size());
        out.insert(out.end(), x.begin(), x.end());
        out.insert(out.end(), y.begin(), y.end());
        return Value::list(std::move(out), sequence_class(a));
      }
      if (is_sequence_like(a)) {
        type_error("can only concatenate " + type_name(a) + " (not \"" + type_name(b) + "\") to " +
                   type_name(a));
      }
      break;
    case Op::kMul:
      if ((a.is_string() || is_sequence_like(a)) && b.is_integral()) {
        return repeat(r, a, b.as_int());
      }
      if ((b.is_string() || is_sequence_like(b)) && a.is_integral()) {
        return repeat(r, b, a.as_int());
      }
      if (a.is_string() || is_sequence_like(a) || b.is_string() || is_sequence_like(b)) {
        const Value& other = a.is_string() || is_sequence_like(a) ? b : a;
        type_error("can't multiply sequence by non-int of type '" + type_name(other) + "'");
      }
      break;
    default:
      break;
  }
  unsupported(op, a, b);
}

Value unary_op(Op op, const Value& a) {
  if (a.is_undefined()) a.fail_undefined();
  if (a.is_integral()) {
    const int64_t x = a.as_int();
    if (op == Op::kPos) return Value(x);
    if (x == std::numeric_limits<int64_t>::min()) overflow();
    return Value(-x);
  }
  if (a.is_float()) return Value(op == Op::kPos ? a.as_float() : -a.as_float());
  type_error(std::string("bad operand type for unary ") + (op == Op::kPos ? "+" : "-") + ": '" +
             type_name(a) + "'");
}

bool compare_op(Op op, const Value& a, const Value& b) {
  switch (op) {
    case Op::kEq:
      return py_equal(a, b);
    case Op::kNe:
      return !py_equal(a, b);
    case Op::kIn:
      return py_contains(b, a);
    case Op::kNotIn:
      return !py_contains(b, a);
    case Op::kLt:
      return py_compare(a, b, "<") == -1;
    case Op::kLe: {
      const int c = py_compare(a, b, "<=");
      return c == -1 || c == 0;
    }
    case Op::kGt:
      return py_compare(a, b, ">") == 1;
    case Op::kGe: {
      const int c = py_compare(a, b, ">=");
      return c == 1 || c == 0;
    }
    default:
      return false;
  }
}

}  // namespace kite::jinja
