// Global functions: Jinja's defaults (range, dict, namespace, cycler, joiner) as the sandbox
// exposes them, and transformers' raise_exception / strftime_now.
#include <locale.h>

#include <clocale>
#include <ctime>

#include "frontend/jinja/builtins.h"
#include "frontend/jinja/renderer.h"

namespace kite::jinja {

namespace {

constexpr int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

int64_t index_arg(const Value& v) {
  if (!v.is_integral()) {
    type_error(std::string("'")
                   .append(type_name(v))
                   .append("' object cannot be interpreted as an integer"));
  }
  return v.as_int();
}

Value g_range(Renderer& r, const Value&, const CallArgs& a) {
  if (!a.kwargs.empty()) type_error("range() takes no keyword arguments");
  if (a.args.empty() || a.args.size() > 3) {
    type_error("range expected at most 3 arguments, got " + std::to_string(a.args.size()));
  }
  int64_t start = 0;
  int64_t stop;
  int64_t step = 1;
  if (a.args.size() == 1) {
    stop = index_arg(a.args[0]);
  } else {
    start = index_arg(a.args[0]);
    stop = index_arg(a.args[1]);
    if (a.args.size() == 3) step = index_arg(a.args[2]);
  }
  if (step == 0) fail(ErrorKind::kType, "range() arg 3 must not be zero");
  // len(range) computed without overflow.
  __int128 n = 0;
  if (step > 0 && start < stop) n = ((__int128)stop - start - 1) / step + 1;
  if (step < 0 && start > stop) n = ((__int128)start - stop - 1) / (-(__int128)step) + 1;
  if (n > kMaxRange) {
    fail(ErrorKind::kType,
         "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  }
  r.charge(static_cast<uint64_t>(n));
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(n));
  for (__int128 i = 0; i < n; ++i) items.emplace_back(static_cast<int64_t>(start + i * step));
  return Value::list(std::move(items));
}

// dict(mapping_or_pairs=(), **kwargs), also what namespace() stores.
DictData make_dict(const CallArgs& a, const char* name) {
  if (a.args.size() > 1) {
    type_error(std::string(name) + " expected at most 1 argument, got " +
               std::to_string(a.args.size()));
  }
  DictData d;
  if (!a.args.empty()) {
    const Value& src = a.args[0];
    if (src.is_dict()) {
      d = src.as_dict();
    } else {
      size_t i = 0;
      for (const Value& pair : iterate(src)) {
        if (!is_iterable(pair)) {
          type_error("cannot convert dictionary update sequence element #" + std::to_string(i) +
                     " to a sequence");
        }
        const std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2) {
          fail(ErrorKind::kType, "dictionary update sequence element #" + std::to_string(i) +
                                     " has length " + std::to_string(kv.size()) +
                                     "; 2 is required");
        }
        if (!is_hashable(kv[0])) type_error("unhashable type: '" + type_name(kv[0]) + "'");
        d.set(kv[0], kv[1]);
        ++i;
      }
    }
  }
  for (const auto& [k, v] : a.kwargs) d.set(Value(k), v);
  return d;
}

Value g_dict(Renderer&, const Value&, const CallArgs& a) {
  return Value::dict(make_dict(a, "dict"));
}

Value g_namespace(Renderer& r, const Value&, const CallArgs& a) {
  auto ns = std::make_shared<Namespace>();
  const DictData attrs = make_dict(a, "namespace");
  for (const auto& [k, v] : attrs.entries()) {
    if (!k.is_string()) type_error("keywords must be strings");
    ns->set(k.as_string(), v);
  }
  r.track(ns);
  return Value::object(ns);
}

class Cycler final : public Object {
 public:
  explicit Cycler(std::vector<Value> items) : items_(std::move(items)) {}
  std::string type_name() const override { return "Cycler"; }
  std::string module_name() const override { return "jinja2.utils"; }
  std::optional<Value> get_attr(Renderer&, std::string_view name) const override {
    if (name == "current") return items_[pos_];
    if (name == "items") return Value::list(items_, ListTag::kTuple);
    if (name == "next" || name == "reset") {
      return Value::object(std::make_shared<BuiltinFunction>(
          std::string(name), name == "next" ? &next : &reset, Value::object(self_.lock())));
    }
    return std::nullopt;
  }
  void set_self(const std::shared_ptr<Object>& self) { self_ = self; }

 private:
  static Value next(Renderer&, const Value& self, const CallArgs& a) {
    ArgBinder("next", a, {});
    auto* c = static_cast<Cycler*>(self.as_object());
    Value rv = c->items_[c->pos_];
    c->pos_ = (c->pos_ + 1) % c->items_.size();
    return rv;
  }
  static Value reset(Renderer&, const Value& self, const CallArgs& a) {
    ArgBinder("reset", a, {});
    static_cast<Cycler*>(self.as_object())->pos_ = 0;
    return Value::none();
  }

  std::vector<Value> items_;
  size_t pos_ = 0;
  std::weak_ptr<Object> self_;
};

Value g_cycler(Renderer&, const Value&, const CallArgs& a) {
  if (!a.kwargs.empty()) type_error("cycler() takes no keyword arguments");
  if (a.args.empty()) fail(ErrorKind::kType, "at least one item has to be provided");
  auto c = std::make_shared<Cycler>(a.args);
  c->set_self(c);
  return Value::object(c);
}

class Joiner final : public Object {
 public:
  explicit Joiner(std::string sep) : sep_(std::move(sep)) {}
  std::string type_name() const override { return "Joiner"; }
  std::string module_name() const override { return "jinja2.utils"; }
  bool is_callable() const override { return true; }
  Value call(Renderer&, CallArgs args) const override {
    ArgBinder("joiner", args, {});
    if (!used_) {
      used_ = true;
      return Value("");
    }
    return Value(sep_);
  }
  std::optional<Value> get_attr(Renderer&, std::string_view name) const override {
    if (name == "sep") return Value(sep_);
    if (name == "used") return Value(used_);
    return std::nullopt;
  }

 private:
  std::string sep_;
  mutable bool used_ = false;
};

Value g_joiner(Renderer&, const Value&, const CallArgs& a) {
  ArgBinder b("joiner", a, {"sep"});
  return Value::object(std::make_shared<Joiner>(b.get(0) ? to_str(*b.get(0)) : ", "));
}

Value g_raise_exception(Renderer&, const Value&, const CallArgs& a) {
  ArgBinder b("raise_exception", a, {"message"});
  throw TemplateError(ErrorKind::kRaised, to_str(b.required(0)));
}

// datetime.now().strftime(format) on a naive datetime: %f is the microseconds (0 here), %z and
// %Z are empty, the rest is C strftime in the "C" locale, as CPython on Linux does.
Value g_strftime_now(Renderer& r, const Value&, const CallArgs& a) {
  ArgBinder b("strftime_now", a, {"format"});
  const Value& fmt_v = b.required(0);
  if (!fmt_v.is_string()) {
    type_error("strftime() argument 1 must be str, not " + type_name(fmt_v));
  }
  const std::string& fmt = fmt_v.as_string();
  if (fmt.find('\0') != std::string::npos) fail(ErrorKind::kType, "embedded null character");
  std::string expanded;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] == '%' && i + 1 < fmt.size()) {
      const char c = fmt[i + 1];
      if (c == 'f') {
        expanded += "000000";
        ++i;
        continue;
      }
      if (c == 'z' || c == 'Z') {
        ++i;
        continue;
      }
      if (c == ':' && i + 2 < fmt.size() && fmt[i + 2] == 'z') {
        i += 2;
        continue;
      }
      expanded += fmt.substr(i, 2);
      ++i;
      continue;
    }
    expanded.push_back(fmt[i]);
  }
  static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(nullptr));
  const std::tm tm = r.options().now;
  std::string out(expanded.size() * 8 + 64, '\0');
  size_t n = strftime_l(out.data(), out.size(), expanded.c_str(), &tm, c_locale);
  if (n == 0 && !expanded.empty()) {
    // Either empty output or a short buffer: retry with a bigger one.
    out.assign(expanded.size() * 64 + 1024, '\0');
    n = strftime_l(out.data(), out.size(), expanded.c_str(), &tm, c_locale);
  }
  out.resize(n);
  r.check_size(out.size());
  return Value(std::move(out));
}

Value g_lipsum(Renderer&, const Value&, const CallArgs&) {
  fail(ErrorKind::kUnsupported, "lipsum() is not supported");
}

struct GlobalDef {
  std::string_view name;
  BuiltinFunction::Fn fn;
};

constexpr GlobalDef kGlobals[] = {
    {"range", g_range},
    {"dict", g_dict},
    {"namespace", g_namespace},
    {"cycler", g_cycler},
    {"joiner", g_joiner},
    {"lipsum", g_lipsum},
    {"raise_exception", g_raise_exception},
    {"strftime_now", g_strftime_now},
};

}  // namespace

Value find_global(std::string_view name) {
  for (const GlobalDef& g : kGlobals) {
    if (g.name == name) {
      return Value::object(std::make_shared<BuiltinFunction>(std::string(name), g.fn));
    }
  }
  return Value();
}

}  // namespace kite::jinja
