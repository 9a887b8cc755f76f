// Jinja2's builtin tests (jinja2/tests.py, 3.1).
#include <algorithm>

#include "frontend/jinja/builtins.h"
#include "frontend/jinja/renderer.h"
#include "frontend/jinja/unicode.h"

namespace kite::jinja {

namespace {

const Value& one_arg(const char* name, const CallArgs& a) {
  static const Value kNone = Value::none();
  ArgBinder b(name, a, {"other"});
  return b.get(0) ? *b.get(0) : kNone;
}

bool t_defined(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("defined", a, {});
  return !v.is_undefined();
}
bool t_undefined(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("undefined", a, {});
  return v.is_undefined();
}
bool t_none(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("none", a, {});
  return v.is_none();
}
bool t_boolean(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("boolean", a, {});
  return v.is_bool();
}
bool t_false(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("false", a, {});
  return v.is_bool() && !v.as_bool();
}
bool t_true(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("true", a, {});
  return v.is_bool() && v.as_bool();
}
bool t_integer(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("integer", a, {});
  return v.is_int();
}
bool t_float(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("float", a, {});
  return v.is_float();
}
bool t_number(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("number", a, {});
  return v.is_number();
}
bool t_string(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("string", a, {});
  return v.is_string();
}
bool t_mapping(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("mapping", a, {});
  return v.is_dict();
}
bool t_sequence(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("sequence", a, {});
  if (v.is_undefined() || v.is_string() || v.is_dict()) return true;
  if (v.is_list()) {
    const ListTag t = v.list_tag();
    return t == ListTag::kList || t == ListTag::kTuple || t == ListTag::kGroupTuple;
  }
  return false;
}
bool t_iterable(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("iterable", a, {});
  return is_iterable(v);
}
bool t_callable(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("callable", a, {});
  return v.is_undefined() || (v.is_object() && v.as_object()->is_callable());
}
bool t_escaped(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("escaped", a, {});
  return v.is_safe();
}
bool t_lower(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("lower", a, {});
  return unicode::py_islower(to_str(v));
}
bool t_upper(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("upper", a, {});
  return unicode::py_isupper(to_str(v));
}

bool mod_equals(Renderer& r, const Value& v, const Value& divisor, int64_t want) {
  return py_equal(binary_op(r, Op::kMod, v, divisor), Value(want));
}
bool t_odd(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder("odd", a, {});
  return mod_equals(r, v, Value(static_cast<int64_t>(2)), 1);
}
bool t_even(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder("even", a, {});
  return mod_equals(r, v, Value(static_cast<int64_t>(2)), 0);
}
bool t_divisibleby(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("divisibleby", a, {"num"});
  return mod_equals(r, v, b.required(0), 0);
}

bool t_sameas(Renderer&, const Value& v, const CallArgs& a) {
  const Value& o = one_arg("sameas", a);
  if (v.kind() != o.kind()) return false;
  switch (v.kind()) {
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kBool:
      return v.as_bool() == o.as_bool();
    case Value::Kind::kInt:  // CPython caches small ints
      return v.as_int() == o.as_int() && v.as_int() >= -5 && v.as_int() <= 256;
    case Value::Kind::kString:
      return v.as_string().empty() && o.as_string().empty();
    case Value::Kind::kList:
    case Value::Kind::kDict:
    case Value::Kind::kObject:
      return v.identity() == o.identity();
    default:
      return false;
  }
}

bool t_in(Renderer& r, const Value& v, const CallArgs& a) {
  ArgBinder b("in", a, {"seq"});
  r.charge_search(b.required(0), v);
  return py_contains(b.required(0), v);
}

bool t_eq(Renderer&, const Value& v, const CallArgs& a) { return py_equal(v, one_arg("eq", a)); }
bool t_ne(Renderer&, const Value& v, const CallArgs& a) { return !py_equal(v, one_arg("ne", a)); }
bool t_lt(Renderer&, const Value& v, const CallArgs& a) {
  return py_compare(v, one_arg("lt", a), "<") == -1;
}
bool t_le(Renderer&, const Value& v, const CallArgs& a) {
  const int c = py_compare(v, one_arg("le", a), "<=");
  return c == -1 || c == 0;
}
bool t_gt(Renderer&, const Value& v, const CallArgs& a) {
  return py_compare(v, one_arg("gt", a), ">") == 1;
}
bool t_ge(Renderer&, const Value& v, const CallArgs& a) {
  const int c = py_compare(v, one_arg("ge", a), ">=");
  return c == 1 || c == 0;
}

bool t_filter(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("filter", a, {});
  return v.is_string() && (find_filter(v.as_string()) >= 0 || is_unsupported_filter(v.as_string()));
}
bool t_test(Renderer&, const Value& v, const CallArgs& a) {
  ArgBinder("test", a, {});
  return v.is_string() && find_test(v.as_string()) >= 0;
}

struct TestDef {
  std::string_view name;
  TestFn fn;
};

constexpr TestDef kTests[] = {
    {"odd", t_odd},
    {"even", t_even},
    {"divisibleby", t_divisibleby},
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"filter", t_filter},
    {"test", t_test},
    {"none", t_none},
    {"boolean", t_boolean},
    {"false", t_false},
    {"true", t_true},
    {"integer", t_integer},
    {"float", t_float},
    {"lower", t_lower},
    {"upper", t_upper},
    {"string", t_string},
    {"mapping", t_mapping},
    {"number", t_number},
    {"sequence", t_sequence},
    {"iterable", t_iterable},
    {"callable", t_callable},
    {"sameas", t_sameas},
    {"escaped", t_escaped},
    {"in", t_in},
    {"==", t_eq},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"!=", t_ne},
    {"ne", t_ne},
    {">", t_gt},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {">=", t_ge},
    {"ge", t_ge},
    {"<", t_lt},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<=", t_le},
    {"le", t_le},
};

}  // namespace

int find_test(std::string_view name) {
  for (size_t i = 0; i < std::size(kTests); ++i) {
    if (kTests[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

TestFn test_at(int index) { return kTests[index].fn; }

bool apply_test(Renderer& r, std::string_view name, const Value& operand, const CallArgs& args) {
  const int i = find_test(name);
  if (i < 0) fail(ErrorKind::kType, "No test named '" + std::string(name) + "'.");
  return kTests[i].fn(r, operand, args);
}

}  // namespace kite::jinja
