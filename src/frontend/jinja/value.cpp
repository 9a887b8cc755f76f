#include "frontend/jinja/value.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "frontend/jinja/unicode.h"

namespace kite::jinja {

namespace {

uint32_t child_depth(const Value& v) {
  if (v.is_list()) return v.as_list().depth;
  if (v.is_dict()) return v.as_dict().depth();
  return 0;
}

[[noreturn]] void too_deep() {
  fail(ErrorKind::kLimit, "value nesting deeper than " + std::to_string(kMaxNesting) + " levels");
}

}  // namespace

// ---- DictData ----

const Value* DictData::find(std::string_view key) const {
  if (entries_.size() >= kIndexFrom) {
    auto it = string_index_.find(key);
    return it == string_index_.end() ? nullptr : &entries_[it->second].second;
  }
  for (const auto& [k, v] : entries_) {
    if (k.is_string() && k.as_string() == key) return &v;
  }
  return nullptr;
}

const Value* DictData::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.as_string()));
  for (const auto& [k, v] : entries_) {
    if (!k.is_string() && py_equal(k, key)) return &v;
  }
  return nullptr;
}

void DictData::set(Value key, Value value) {
  const uint32_t d = child_depth(value) + 1;
  if (d > kMaxNesting) too_deep();
  depth_ = std::max(depth_, d);
  if (const Value* existing = find(key)) {
    *const_cast<Value*>(existing) = std::move(value);
    return;
  }
  entries_.emplace_back(std::move(key), std::move(value));
  if (entries_.size() == kIndexFrom) {
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].first.is_string()) string_index_.emplace(entries_[i].first.as_string(), i);
    }
  } else if (entries_.size() > kIndexFrom && entries_.back().first.is_string()) {
    string_index_.emplace(entries_.back().first.as_string(), entries_.size() - 1);
  }
}

// ---- Value ----

Value Value::undefined(std::string message, bool security) {
  Value v;
  std::get<UndefinedT>(v.v_).info =
      std::make_shared<const std::pair<std::string, bool>>(std::move(message), security);
  return v;
}

Value Value::list(std::vector<Value> items, ListTag tag) {
  auto data = std::make_shared<ListData>();
  uint32_t depth = 1;
  for (const Value& item : items) depth = std::max(depth, child_depth(item) + 1);
  if (depth > kMaxNesting) too_deep();
  data->items = std::move(items);
  data->tag = tag;
  data->depth = depth;
  Value v;
  v.v_ = ListPtr(std::move(data));
  return v;
}

Value Value::dict(DictData d) {
  Value v;
  v.v_ = DictPtr(std::make_shared<const DictData>(std::move(d)));
  return v;
}

Value Value::object(std::shared_ptr<Object> o) {
  Value v;
  v.v_ = std::move(o);
  return v;
}

double Value::as_float() const {
  if (is_float()) return std::get<double>(v_);
  return static_cast<double>(as_int());
}

const void* Value::identity() const {
  switch (kind()) {
    case Kind::kList:
      return std::get<ListPtr>(v_).get();
    case Kind::kDict:
      return std::get<DictPtr>(v_).get();
    case Kind::kObject:
      return std::get<ObjectPtr>(v_).get();
    default:
      return nullptr;
  }
}

std::string Value::undefined_message() const {
  const auto& info = std::get<UndefinedT>(v_).info;
  return info ? info->first : "value is undefined";
}

void Value::fail_undefined() const {
  const auto& info = std::get<UndefinedT>(v_).info;
  const bool security = info && info->second;
  fail(security ? ErrorKind::kSecurity : ErrorKind::kUndefined, undefined_message());
}

// ---- Generator ----

std::vector<Value> Generator::iterate() {
  std::vector<Value> rest(items_.begin() + static_cast<std::ptrdiff_t>(pos_), items_.end());
  pos_ = items_.size();
  return rest;
}

std::optional<Value> Generator::next_item() {
  if (pos_ >= items_.size()) return std::nullopt;
  return items_[pos_++];
}

// ---- Python semantics ----

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return false;
    case Value::Kind::kBool:
      return v.as_bool();
    case Value::Kind::kInt:
      return v.as_int() != 0;
    case Value::Kind::kFloat:
      return v.as_float() != 0.0;
    case Value::Kind::kString:
      return !v.as_string().empty();
    case Value::Kind::kList:
      return !v.as_list().items.empty();
    case Value::Kind::kDict:
      return !v.as_dict().empty();
    case Value::Kind::kObject:
      return v.as_object()->truthy();
  }
  return false;
}

namespace {

enum class Ordering { kLess, kEqual, kGreater, kUnordered };

Ordering compare_numbers(const Value& a, const Value& b) {
  if (a.is_integral() && b.is_integral()) {
    const int64_t x = a.as_int();
    const int64_t y = b.as_int();
    return x < y ? Ordering::kLess : x > y ? Ordering::kGreater : Ordering::kEqual;
  }
  if (a.is_float() && b.is_float()) {
    const double x = a.as_float();
    const double y = b.as_float();
    if (std::isnan(x) || std::isnan(y)) return Ordering::kUnordered;
    return x < y ? Ordering::kLess : x > y ? Ordering::kGreater : Ordering::kEqual;
  }
  // int vs float, exactly (Python does not round the int to a double).
  const bool flip = a.is_float();
  const int64_t i = flip ? b.as_int() : a.as_int();
  const double f = flip ? a.as_float() : b.as_float();
  Ordering o;
  if (std::isnan(f)) return Ordering::kUnordered;
  if (f >= 9.3e18) {
    o = Ordering::kLess;
  } else if (f <= -9.3e18) {
    o = Ordering::kGreater;
  } else {
    const double fl = std::floor(f);
    const auto fi = static_cast<int64_t>(fl);
    if (i < fi) {
      o = Ordering::kLess;
    } else if (i > fi) {
      o = Ordering::kGreater;
    } else {
      o = fl == f ? Ordering::kEqual : Ordering::kLess;
    }
  }
  if (!flip) return o;
  return o == Ordering::kLess ? Ordering::kGreater : o == Ordering::kGreater ? Ordering::kLess : o;
}

bool same_sequence_class(const Value& a, const Value& b) {
  const ListTag x = a.list_tag();
  const ListTag y = b.list_tag();
  auto cls = [](ListTag t) { return t == ListTag::kGroupTuple ? ListTag::kTuple : t; };
  return cls(x) == cls(y);
}

}  // namespace

bool py_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return compare_numbers(a, b) == Ordering::kEqual;
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      if (a.identity() == b.identity()) return true;
      if (!same_sequence_class(a, b)) return false;
      const auto& x = a.as_list().items;
      const auto& y = b.as_list().items;
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!py_equal(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      if (a.identity() == b.identity()) return true;
      const DictData& x = a.as_dict();
      const DictData& y = b.as_dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.entries()) {
        const Value* other = y.find(k);
        if (other == nullptr || !py_equal(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kObject:
      return a.identity() == b.identity();
    default:
      return false;
  }
}

int py_compare(const Value& a, const Value& b, std::string_view op) {
  if (a.is_undefined()) a.fail_undefined();
  if (b.is_undefined()) b.fail_undefined();
  if (a.is_number() && b.is_number()) {
    switch (compare_numbers(a, b)) {
      case Ordering::kLess:
        return -1;
      case Ordering::kGreater:
        return 1;
      case Ordering::kEqual:
        return 0;
      case Ordering::kUnordered:
        return 2;  // every comparison with NaN is false
    }
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.as_string().compare(b.as_string());  // UTF-8 byte order == code point order
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list() && b.is_list() && same_sequence_class(a, b) &&
      a.list_tag() != ListTag::kDictKeys && a.list_tag() != ListTag::kDictItems &&
      a.list_tag() != ListTag::kDictValues) {
    const auto& x = a.as_list().items;
    const auto& y = b.as_list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!py_equal(x[i], y[i])) return py_compare(x[i], y[i], op);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  type_error("'" + std::string(op) + "' not supported between instances of '" + type_name(a) +
             "' and '" + type_name(b) + "'");
}

std::string format_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  std::string out;
  if (!sci.empty() && sci[0] == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  int exponent = 0;
  std::string_view exp_text = sci.substr(e_pos + 1);
  if (!exp_text.empty() && exp_text[0] == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);
  const int decpt = exponent + 1;  // digits d1d2... mean 0.d1d2... * 10^decpt
  const int ndigits = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    } else if (decpt >= ndigits) {
      out += digits + std::string(static_cast<size_t>(decpt - ndigits), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(decpt)) + "." +
             digits.substr(static_cast<size_t>(decpt));
    }
    return out;
  }
  out.push_back(digits[0]);
  if (ndigits > 1) out += "." + digits.substr(1);
  const int e = decpt - 1;
  out += e < 0 ? "e-" : "e+";
  const int ae = e < 0 ? -e : e;
  if (ae < 10) out.push_back('0');
  out += std::to_string(ae);
  return out;
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return v.is_safe() ? "Markup" : "str";
    case Value::Kind::kList:
      switch (v.list_tag()) {
        case ListTag::kList:
          return "list";
        case ListTag::kTuple:
          return "tuple";
        case ListTag::kDictKeys:
          return "dict_keys";
        case ListTag::kDictValues:
          return "dict_values";
        case ListTag::kDictItems:
          return "dict_items";
        case ListTag::kGroupTuple:
          return "_GroupTuple";
      }
      return "list";
    case Value::Kind::kDict:
      return "dict";
    case Value::Kind::kObject:
      return v.as_object()->type_name();
  }
  return "object";
}

std::string object_type_repr(const Value& v) {
  if (v.is_none()) return "None";
  if (v.is_safe()) return "markupsafe.Markup object";
  if (v.is_undefined()) return "jinja2.runtime.Undefined object";
  if (v.is_list() && v.list_tag() == ListTag::kGroupTuple)
    return "jinja2.filters._GroupTuple object";
  if (v.is_object() && v.as_object()->module_name() != "builtins") {
    return v.as_object()->module_name() + "." + v.as_object()->type_name() + " object";
  }
  return type_name(v) + " object";
}

namespace {

void repr_into(const Value& v, std::string* out, int depth);

void repr_items(const std::vector<Value>& items, std::string* out, int depth) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) *out += ", ";
    repr_into(items[i], out, depth + 1);
  }
}

void repr_into(const Value& v, std::string* out, int depth) {
  if (depth > static_cast<int>(kMaxNesting)) too_deep();
  if (out->size() > kMaxBuiltStringBytes) {
    fail(ErrorKind::kLimit,
         "repr() of a value exceeds " + std::to_string(kMaxBuiltStringBytes) + " bytes");
  }
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      *out += "Undefined";
      return;
    case Value::Kind::kString:
      if (v.is_safe()) {
        *out += "Markup(" + unicode::py_repr(v.as_string()) + ")";
      } else {
        *out += unicode::py_repr(v.as_string());
      }
      return;
    case Value::Kind::kList: {
      const auto& items = v.as_list().items;
      switch (v.list_tag()) {
        case ListTag::kList:
          *out += "[";
          repr_items(items, out, depth);
          *out += "]";
          return;
        case ListTag::kTuple:
          *out += "(";
          repr_items(items, out, depth);
          if (items.size() == 1) *out += ",";
          *out += ")";
          return;
        case ListTag::kDictKeys:
        case ListTag::kDictValues:
        case ListTag::kDictItems:
          *out += type_name(v) + "([";
          repr_items(items, out, depth);
          *out += "])";
          return;
        case ListTag::kGroupTuple:
          *out += "_GroupTuple(grouper=";
          repr_into(items[0], out, depth + 1);
          *out += ", list=";
          repr_into(items[1], out, depth + 1);
          *out += ")";
          return;
      }
      return;
    }
    case Value::Kind::kDict: {
      *out += "{";
      bool first = true;
      for (const auto& [k, val] : v.as_dict().entries()) {
        if (!first) *out += ", ";
        first = false;
        repr_into(k, out, depth + 1);
        *out += ": ";
        repr_into(val, out, depth + 1);
      }
      *out += "}";
      return;
    }
    case Value::Kind::kObject: {
      // Object::repr() may print values holding the object itself (a namespace in its own
      // attributes): count nesting across those calls too.
      thread_local int object_depth = 0;
      if (object_depth > static_cast<int>(kMaxNesting)) too_deep();
      ++object_depth;
      try {
        *out += v.as_object()->repr();
      } catch (...) {
        --object_depth;
        throw;
      }
      --object_depth;
      return;
    }
    default:
      *out += to_str(v);
      return;
  }
}

}  // namespace

std::string repr(const Value& v) {
  std::string out;
  repr_into(v, &out, 0);
  return out;
}

std::string to_str(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt:
      return std::to_string(v.as_int());
    case Value::Kind::kFloat:
      return format_float_repr(v.as_float());
    case Value::Kind::kString:
      return v.as_string();
    default:
      return repr(v);
  }
}

bool is_iterable(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kString:
    case Value::Kind::kList:
    case Value::Kind::kDict:
      return true;
    case Value::Kind::kObject:
      return v.as_object()->is_iterable();
    default:
      return false;
  }
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kString: {
      std::vector<Value> out;
      const std::string& s = v.as_string();
      size_t pos = 0;
      while (pos < s.size()) {
        const size_t start = pos;
        unicode::next_code_point(s, &pos);
        out.emplace_back(s.substr(start, pos - start));
      }
      return out;
    }
    case Value::Kind::kList:
      return v.as_list().items;
    case Value::Kind::kDict: {
      std::vector<Value> out;
      out.reserve(v.as_dict().size());
      for (const auto& kv : v.as_dict().entries()) out.push_back(kv.first);
      return out;
    }
    case Value::Kind::kObject:
      if (v.as_object()->is_iterable()) return v.as_object()->iterate();
      break;
    default:
      break;
  }
  type_error("'" + type_name(v) + "' object is not iterable");
}

size_t py_len(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return unicode::length(v.as_string());
    case Value::Kind::kList:
      return v.as_list().items.size();
    case Value::Kind::kDict:
      return v.as_dict().size();
    case Value::Kind::kObject:
      if (auto n = v.as_object()->length()) return *n;
      break;
    default:
      break;
  }
  type_error("object of type '" + type_name(v) + "' has no len()");
}

bool is_hashable(const Value& v) {
  if (v.is_dict()) return false;
  if (v.is_list()) {
    if (v.list_tag() != ListTag::kTuple && v.list_tag() != ListTag::kGroupTuple) return false;
    for (const Value& item : v.as_list().items) {
      if (!is_hashable(item)) return false;
    }
  }
  return true;
}

bool py_contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kString:
      if (!item.is_string()) {
        type_error("'in <string>' requires string as left operand, not " + type_name(item));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& x : container.as_list().items) {
        if (py_equal(x, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      if (!is_hashable(item)) type_error("unhashable type: '" + type_name(item) + "'");
      return container.as_dict().find(item) != nullptr;
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kObject:
      if (container.as_object()->is_iterable()) {
        while (auto next = container.as_object()->next_item()) {
          if (py_equal(*next, item)) return true;
        }
        return false;
      }
      break;
    default:
      break;
  }
  type_error("argument of type '" + type_name(container) + "' is not iterable");
}

// ---- ArgBinder ----

ArgBinder::ArgBinder(std::string_view fn_name, const CallArgs& args,
                     std::vector<std::string_view> params, bool varargs, bool varkwargs)
    : name_(fn_name), params_(std::move(params)), bound_(params_.size(), nullptr) {
  for (size_t i = 0; i < args.args.size(); ++i) {
    if (i < params_.size()) {
      bound_[i] = &args.args[i];
    } else if (varargs) {
      extra_args_.push_back(args.args[i]);
    } else {
      type_error(name_ + "() takes at most " + std::to_string(params_.size()) + " argument(s) (" +
                 std::to_string(args.args.size()) + " given)");
    }
  }
  for (const auto& [key, value] : args.kwargs) {
    size_t idx = params_.size();
    for (size_t i = 0; i < params_.size(); ++i) {
      if (params_[i] == key) idx = i;
    }
    if (idx == params_.size()) {
      if (!varkwargs) type_error(name_ + "() got an unexpected keyword argument '" + key + "'");
      extra_kwargs_.emplace_back(key, value);
      continue;
    }
    if (bound_[idx] != nullptr) {
      type_error(name_ + "() got multiple values for argument '" + key + "'");
    }
    bound_[idx] = &value;
  }
}

const Value& ArgBinder::required(size_t i) const {
  if (bound_[i] == nullptr) {
    type_error(name_ + "() missing required argument '" + std::string(params_[i]) + "'");
  }
  return *bound_[i];
}

}  // namespace kite::jinja
