// Value: the dynamic values a Jinja template computes with, modelled on the Python objects
// Jinja2 sees under transformers: Undefined, None, bool, int (64-bit here), float, str (with
// Markup's "safe" mark), list/tuple (and dict views), dict (insertion-ordered), and objects
// (namespace, loop, macros, builtin functions, generators, ...).
//
// Lists and dicts are immutable once built (the sandbox transformers uses forbids mutating
// methods), so they are shared by pointer; copying a Value is cheap except for strings.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "frontend/jinja/error.h"

namespace kite::jinja {

class Renderer;
class Value;
class Object;

// How a sequence prints and behaves: Python list, tuple, the dict views returned by
// dict.keys()/values()/items(), or the namedtuple of the groupby filter.
enum class ListTag : uint8_t { kList, kTuple, kDictKeys, kDictValues, kDictItems, kGroupTuple };

struct ListData;
class DictData;

// Arguments of a call: positional then keyword, in source order.
struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kObject
  };

  Value() : v_(UndefinedT{}) {}                  // plain Undefined
  Value(bool b) : v_(b) {}                       // NOLINT(google-explicit-constructor)
  Value(int i) : v_(static_cast<int64_t>(i)) {}  // NOLINT(google-explicit-constructor)
  Value(int64_t i) : v_(i) {}                    // NOLINT(google-explicit-constructor)
  Value(double f) : v_(f) {}                     // NOLINT(google-explicit-constructor)
  Value(std::string s, bool safe = false)        // NOLINT(google-explicit-constructor)
      : v_(StringT{std::move(s), safe}) {}
  Value(const char* s) : v_(StringT{s, false}) {}  // NOLINT(google-explicit-constructor)
  Value(std::string_view s) : v_(StringT{std::string(s), false}) {}  // NOLINT

  static Value none() { return Value(NoneT{}); }
  // An Undefined whose use fails with `message`; `security` makes it a SecurityError.
  static Value undefined(std::string message, bool security = false);
  static Value list(std::vector<Value> items, ListTag tag = ListTag::kList);
  static Value dict(DictData d);
  static Value object(std::shared_ptr<Object> o);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  // bool, int or float (Python's numbers.Number).
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  // bool or int (usable as an integer).
  bool is_integral() const { return is_bool() || is_int(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_object() const { return kind() == Kind::kObject; }

  bool as_bool() const { return std::get<bool>(v_); }
  // REQUIRES: is_integral().
  int64_t as_int() const {
    return is_bool() ? static_cast<int64_t>(as_bool()) : std::get<int64_t>(v_);
  }
  // REQUIRES: is_number().
  double as_float() const;
  const std::string& as_string() const { return std::get<StringT>(v_).s; }
  bool is_safe() const { return is_string() && std::get<StringT>(v_).safe; }
  const ListData& as_list() const { return *std::get<ListPtr>(v_); }
  ListTag list_tag() const;
  const DictData& as_dict() const { return *std::get<DictPtr>(v_); }
  Object* as_object() const { return std::get<ObjectPtr>(v_).get(); }
  const std::shared_ptr<Object>& object_ptr() const { return std::get<ObjectPtr>(v_); }
  // Identity of a shared payload (list, dict, object); nullptr for scalars.
  const void* identity() const;

  // The error an operation on this Undefined raises.
  [[noreturn]] void fail_undefined() const;
  std::string undefined_message() const;

 private:
  struct UndefinedT {
    std::shared_ptr<const std::pair<std::string, bool>> info;  // message, is-security
  };
  struct NoneT {};
  struct StringT {
    std::string s;
    bool safe = false;
  };
  using ListPtr = std::shared_ptr<const ListData>;
  using DictPtr = std::shared_ptr<const DictData>;
  using ObjectPtr = std::shared_ptr<Object>;

  explicit Value(NoneT n) : v_(n) {}

  std::variant<UndefinedT, NoneT, bool, int64_t, double, StringT, ListPtr, DictPtr, ObjectPtr> v_;
};

struct ListData {
  std::vector<Value> items;
  ListTag tag = ListTag::kList;
  uint32_t depth = 1;  // nesting depth of lists/dicts, bounded by kMaxNesting
};

// Deepest list/dict nesting a render may build (keeps repr/tojson/destruction recursion bounded).
inline constexpr uint32_t kMaxNesting = 512;
// Hard cap on any one string repr()/tojson builds (lists may share one big string many times).
inline constexpr size_t kMaxBuiltStringBytes = size_t{256} << 20;

inline ListTag Value::list_tag() const { return as_list().tag; }

// An insertion-ordered dict with Python key equality (1 == 1.0 == True).
class DictData {
 public:
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  // Inserts, or replaces the value in place (keeping the key's position) as Python does.
  void set(Value key, Value value);
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }
  uint32_t depth() const { return depth_; }

 private:
  static constexpr size_t kIndexFrom = 8;  // smaller dicts are scanned
  uint32_t depth_ = 1;
  std::vector<std::pair<Value, Value>> entries_;
  std::map<std::string, size_t, std::less<>> string_index_;  // str keys -> position
};

// Objects: everything with behaviour of its own. Default behaviour is that of a plain Python
// object: truthy, not callable, not iterable, no attributes.
class Object {
 public:
  virtual ~Object() = default;
  // Python type name, used in messages ("Namespace", "LoopContext", "generator", ...).
  virtual std::string type_name() const = 0;
  // Python module of the type, for Jinja's "'jinja2.utils.Namespace object' has no attribute".
  virtual std::string module_name() const { return "builtins"; }
  virtual std::string repr() const {
    return std::string("<").append(type_name()).append(" object>");
  }
  // The attribute `name`, or nullopt when there is none.
  virtual std::optional<Value> get_attr(Renderer& r, std::string_view name) const {
    return std::nullopt;
  }
  virtual bool is_callable() const { return false; }
  virtual Value call(Renderer& r, CallArgs args) const {
    type_error("'" + type_name() + "' object is not callable");
  }
  virtual bool truthy() const { return true; }
  // len(); nullopt when the object has no length.
  virtual std::optional<size_t> length() const { return std::nullopt; }
  virtual bool is_iterable() const { return false; }
  // iter(): the items (generators are consumed).
  virtual std::vector<Value> iterate() {
    type_error("'" + type_name() + "' object is not iterable");
  }
  // For generators: the next item, or nullopt when exhausted.
  virtual std::optional<Value> next_item() { return std::nullopt; }
};

// A one-shot iterator (what Jinja's select/map/... filters return): truthy even when empty,
// no len(), no indexing, and a second iteration sees only what the first left.
class Generator final : public Object {
 public:
  explicit Generator(std::vector<Value> items, std::string type = "generator")
      : items_(std::move(items)), type_(std::move(type)) {}
  std::string type_name() const override { return type_; }
  std::string repr() const override { return std::string("<").append(type_).append(" object>"); }
  bool is_iterable() const override { return true; }
  std::vector<Value> iterate() override;
  std::optional<Value> next_item() override;

 private:
  std::vector<Value> items_;
  size_t pos_ = 0;
  std::string type_;
};

// Python semantics of the basic operations. All throw TemplateError on type errors.
bool truthy(const Value& v);
bool py_equal(const Value& a, const Value& b);
// <0, 0, >0 like Python's ordering; throws TypeError for unorderable pairs ("<" names the op).
int py_compare(const Value& a, const Value& b, std::string_view op = "<");
// Python str(): Undefined prints as "", None as "None", lists through repr() of their items.
std::string to_str(const Value& v);
std::string repr(const Value& v);
// Python's type(v).__name__ ("int", "str", "list", "Undefined", ...).
std::string type_name(const Value& v);
// Jinja's object_type_repr ("None", "dict object", "list object", ...).
std::string object_type_repr(const Value& v);
// iter(v), materialised. Undefined iterates as empty; non-iterables raise TypeError.
std::vector<Value> iterate(const Value& v);
bool is_iterable(const Value& v);
// len(v); raises TypeError for values without a length.
size_t py_len(const Value& v);
// `item in container`.
bool py_contains(const Value& container, const Value& item);
// Python repr of a float ("1.0", "1e+16", "inf", "nan").
std::string format_float_repr(double d);
// A Python-hashable value (usable as a dict key)?
bool is_hashable(const Value& v);

// Binds CallArgs to a Python-style signature `name(p0, p1, ..., [*varargs])` and raises
// TypeError on unexpected, duplicate or surplus arguments.
class ArgBinder {
 public:
  ArgBinder(std::string_view fn_name, const CallArgs& args, std::vector<std::string_view> params,
            bool varargs = false, bool varkwargs = false);
  // The argument for parameter i, or nullptr when not given.
  const Value* get(size_t i) const { return bound_[i]; }
  Value get_or(size_t i, Value fallback) const { return bound_[i] ? *bound_[i] : fallback; }
  // Positional arguments beyond the named parameters (when varargs).
  const std::vector<Value>& extra_args() const { return extra_args_; }
  // Keyword arguments not matching a parameter (when varkwargs).
  const std::vector<std::pair<std::string, Value>>& extra_kwargs() const { return extra_kwargs_; }
  // Raises TypeError when parameter i is missing.
  const Value& required(size_t i) const;

 private:
  std::string name_;
  std::vector<std::string_view> params_;
  std::vector<const Value*> bound_;
  std::vector<Value> extra_args_;
  std::vector<std::pair<std::string, Value>> extra_kwargs_;
};

}  // namespace kite::jinja
