#include "frontend/jinja/renderer.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "frontend/jinja/builtins.h"

namespace kite::jinja {

// ---- Scope ----

const Value* Scope::find(std::string_view name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent_.get()) {
    for (const auto& [k, v] : s->vars_) {
      if (k == name) return &v;
    }
  }
  return nullptr;
}

void Scope::set(std::string_view name, Value value) {
  for (auto& [k, v] : vars_) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  vars_.emplace_back(std::string(name), std::move(value));
}

void Scope::clear() {
  vars_.clear();
  parent_.reset();
}

// ---- objects ----

std::string BuiltinFunction::repr() const {
  if (self_type_.empty()) return "<built-in function " + name_ + ">";
  return "<built-in method " + name_ + " of " + self_type_ + " object>";
}

std::string Namespace::repr() const {
  return "<Namespace " + jinja::repr(Value::dict(attrs_)) + ">";
}

std::optional<Value> Namespace::get_attr(Renderer& r, std::string_view name) const {
  if (const Value* v = attrs_.find(name)) return *v;
  return std::nullopt;
}

namespace {

// A macro, or the `caller` of a {% call %} block.
class Macro final : public Object {
 public:
  Macro(const Stmt* def, std::shared_ptr<Scope> closure)
      : def_(def), closure_(std::move(closure)) {}
  std::string type_name() const override { return "Macro"; }
  std::string module_name() const override { return "jinja2.runtime"; }
  std::string repr() const override { return "<Macro '" + def_->name + "'>"; }
  bool is_callable() const override { return true; }
  Value call(Renderer& r, CallArgs args) const override {
    return r.invoke_macro(*def_, closure_, std::move(args));
  }
  std::optional<Value> get_attr(Renderer& r, std::string_view name) const override {
    if (name == "name") return Value(def_->name);
    if (name == "arguments") {
      std::vector<Value> names;
      for (const auto& p : def_->params) names.emplace_back(p.name);
      return Value::list(std::move(names), ListTag::kTuple);
    }
    if (name == "catch_kwargs") return Value(def_->uses_kwargs);
    if (name == "catch_varargs") return Value(def_->uses_varargs);
    if (name == "caller") return Value(def_->uses_caller);
    return std::nullopt;
  }

 private:
  const Stmt* def_;
  std::shared_ptr<Scope> closure_;
};

// jinja2.runtime.LoopContext: the `loop` variable.
class LoopContext final : public Object {
 public:
  LoopContext(std::vector<Value> items, int depth0, const Stmt* def, std::shared_ptr<Scope> scope)
      : items_(std::move(items)), depth0_(depth0), def_(def), scope_(std::move(scope)) {}

  std::string type_name() const override { return "LoopContext"; }
  std::string module_name() const override { return "jinja2.runtime"; }
  std::string repr() const override {
    return "<LoopContext " + std::to_string(index0_ + 1) + "/" + std::to_string(items_.size()) +
           ">";
  }
  std::optional<size_t> length() const override { return items_.size(); }
  bool truthy() const override { return !items_.empty(); }
  bool is_iterable() const override { return true; }
  std::vector<Value> iterate() override {
    return std::vector<Value>(items_.begin() + static_cast<std::ptrdiff_t>(index0_) + 1,
                              items_.end());
  }
  bool is_callable() const override { return true; }
  Value call(Renderer& r, CallArgs args) const override {
    if (!def_->recursive) {
      type_error("Tried to call non recursive loop. Maybe you forgot the 'recursive' modifier.");
    }
    ArgBinder b("loop", args, {"iterable"});
    return Value(r.recurse_loop(*def_, scope_, b.required(0), depth0_ + 1));
  }

  std::optional<Value> get_attr(Renderer& r, std::string_view name) const override {
    const auto n = static_cast<int64_t>(items_.size());
    const auto i = static_cast<int64_t>(index0_);
    if (name == "index0") return Value(i);
    if (name == "index") return Value(i + 1);
    if (name == "revindex") return Value(n - i);
    if (name == "revindex0") return Value(n - i - 1);
    if (name == "first") return Value(i == 0);
    if (name == "last") return Value(i == n - 1);
    if (name == "length") return Value(n);
    if (name == "depth0") return Value(static_cast<int64_t>(depth0_));
    if (name == "depth") return Value(static_cast<int64_t>(depth0_ + 1));
    if (name == "previtem") {
      return i > 0 ? items_[index0_ - 1] : Value::undefined("there is no previous item");
    }
    if (name == "nextitem") {
      return i + 1 < n ? items_[index0_ + 1] : Value::undefined("there is no next item");
    }
    if (name == "cycle")
      return Value::object(std::make_shared<BuiltinFunction>("cycle", &cycle, self()));
    if (name == "changed") {
      return Value::object(std::make_shared<BuiltinFunction>("changed", &changed, self()));
    }
    return std::nullopt;
  }

  const std::vector<Value>& items() const { return items_; }
  void set_index(size_t i) { index0_ = i; }
  void set_self(const Value& v) { self_ = v.object_ptr(); }

 private:
  Value self() const { return Value::object(self_.lock()); }

  static Value cycle(Renderer& r, const Value& self, const CallArgs& args) {
    const auto* loop = static_cast<const LoopContext*>(self.as_object());
    if (args.args.empty()) type_error("no items for cycling given");
    return args.args[loop->index0_ % args.args.size()];
  }

  static Value changed(Renderer& r, const Value& self, const CallArgs& args) {
    auto* loop = static_cast<LoopContext*>(self.as_object());
    Value now = Value::list(args.args, ListTag::kTuple);
    if (loop->has_last_ && py_equal(loop->last_changed_, now)) return Value(false);
    loop->has_last_ = true;
    loop->last_changed_ = std::move(now);
    return Value(true);
  }

  std::vector<Value> items_;
  size_t index0_ = 0;
  int depth0_;
  const Stmt* def_;
  std::shared_ptr<Scope> scope_;
  std::weak_ptr<Object> self_;
  bool has_last_ = false;
  Value last_changed_;
};

struct DepthGuard {
  DepthGuard(int* depth, int limit) : depth_(depth) {
    if (++*depth_ > limit) {
      --*depth_;
      fail(ErrorKind::kLimit,
           "template recursion is too deep (more than " + std::to_string(limit) + " levels)");
    }
  }
  ~DepthGuard() { --*depth_; }
  int* depth_;
};

// Restores the output target when a capture ends (also on errors).
struct OutputSwap {
  OutputSwap(std::string** slot, std::string* buffer) : slot_(slot), saved_(*slot) {
    *slot = buffer;
  }
  ~OutputSwap() { *slot_ = saved_; }
  std::string** slot_;
  std::string* saved_;
};

size_t line_of(const std::string& source, size_t offset) {
  offset = std::min(offset, source.size());
  return 1 + static_cast<size_t>(std::count(
                 source.begin(), source.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

}  // namespace

// ---- Renderer ----

Renderer::Renderer(const Program& program, RenderOptions options)
    : program_(program), options_(std::move(options)) {}

Renderer::~Renderer() {
  // Break reference cycles (a namespace holding itself, a macro held by its own scope).
  for (auto& weak : namespaces_) {
    if (auto ns = weak.lock()) ns->clear();
  }
  for (auto& weak : scopes_) {
    if (auto scope = weak.lock()) scope->clear();
  }
}

void Renderer::step_limit_exceeded() const {
  fail(ErrorKind::kLimit, "template exceeded its work limit of " +
                              std::to_string(options_.limits.max_steps) + " steps (runaway loop?)");
}

namespace {
// A value's size in scan units: 16 string bytes or one list/dict item is one step.
uint64_t scan_units(const Value& v) {
  if (v.is_string()) return v.as_string().size() / 16 + 1;
  if (v.is_list()) return v.as_list().items.size() + 1;
  if (v.is_dict()) return v.as_dict().size() + 1;
  return 1;
}
}  // namespace

void Renderer::charge_scan(const Value& v) { charge(scan_units(v)); }

Value BuiltinFunction::call(Renderer& r, CallArgs args) const {
  if (!args.args.empty() && args.args[0].is_string()) {
    r.charge_search(self_, args.args[0]);
  } else {
    r.charge_scan(self_);
  }
  return fn_(r, self_, args);
}

void Renderer::charge_search(const Value& haystack, const Value& needle) {
  // Both factors are bounded by kMaxBuiltStringBytes (2^28), so the product fits.
  const uint64_t m = needle.is_string() ? std::max<size_t>(needle.as_string().size(), 1) : 1;
  charge(scan_units(haystack) * m);
}

void Renderer::check_size(size_t count, size_t unit) {
  if (unit != 0 && count > options_.limits.max_output_bytes / unit) {
    fail(ErrorKind::kLimit, "template built a value larger than the limit of " +
                                std::to_string(options_.limits.max_output_bytes) + " bytes");
  }
  const size_t size = count * unit;
  if (size > options_.limits.max_output_bytes) {
    fail(ErrorKind::kLimit, "template built a value larger than the limit of " +
                                std::to_string(options_.limits.max_output_bytes) + " bytes");
  }
  charge(size / 16);
}

void Renderer::emit(std::string_view text) {
  if (out_->size() + text.size() > options_.limits.max_output_bytes) {
    fail(ErrorKind::kLimit, "rendered output exceeds the limit of " +
                                std::to_string(options_.limits.max_output_bytes) + " bytes");
  }
  charge(text.size() / 16);
  out_->append(text);
}

std::string Renderer::render(const Context& context) {
  auto root = std::make_shared<Scope>(nullptr);
  track(root);
  for (const auto& [name, value] : context) root->set(name, value);
  std::string result;
  OutputSwap swap(&out_, &result);
  exec_body(program_.body, root);
  return result;
}

Renderer::Flow Renderer::exec_body(const Body& body, const std::shared_ptr<Scope>& scope) {
  for (const auto& s : body) {
    const Flow flow = exec(*s, scope);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Renderer::Flow Renderer::exec(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  DepthGuard guard(&depth_, options_.limits.max_depth);
  try {
    return exec_inner(s, scope);
  } catch (TemplateError& e) {
    if (e.offset() == kNoOffset) e.set_offset(s.offset);
    throw;
  }
}

std::string Renderer::capture(const Body& body, const std::shared_ptr<Scope>& scope, Flow* flow) {
  std::string buffer;
  OutputSwap swap(&out_, &buffer);
  const Flow f = exec_body(body, scope);
  if (flow != nullptr) *flow = f;
  return buffer;
}

namespace {

// Applies a `| f | g` chain built by the parser for {% filter %} / {% set x | f %}: the innermost
// node has a == nullptr and stands for `operand`.
Value apply_filter_chain(Renderer& r, const Expr& chain, Value operand,
                         const std::function<CallArgs(const Expr&)>& eval_args) {
  if (chain.a) operand = apply_filter_chain(r, *chain.a, std::move(operand), eval_args);
  r.charge_scan(operand);
  return filter_at(chain.builtin)(r, operand, eval_args(chain));
}

}  // namespace

Renderer::Flow Renderer::exec_inner(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  charge(1);
  switch (s.kind) {
    case StmtKind::kOutput:
      for (const auto& node : s.output) {
        if (node.expr) {
          emit(to_str(eval(*node.expr, *scope)));
        } else {
          emit(node.text);
        }
      }
      return Flow::kNormal;
    case StmtKind::kIf:
      for (const auto& [cond, body] : s.branches) {
        if (truthy(eval(*cond, *scope))) return exec_body(body, scope);
      }
      return exec_body(s.else_body, scope);
    case StmtKind::kFor:
      return exec_for(s, scope, eval(*s.iter, *scope), 0, nullptr);
    case StmtKind::kSet:
      assign(*s.target, eval(*s.iter, *scope), *scope);
      return Flow::kNormal;
    case StmtKind::kSetBlock: {
      Flow flow = Flow::kNormal;
      Value text(capture(s.body, scope, &flow));
      if (flow != Flow::kNormal) return flow;
      if (s.filter) {
        text = apply_filter_chain(*this, *s.filter, std::move(text),
                                  [&](const Expr& e) { return eval_args(e, *scope); });
      }
      assign(*s.target, text, *scope);
      return Flow::kNormal;
    }
    case StmtKind::kMacro:
      track(scope);
      scope->set(s.name, Value::object(std::make_shared<Macro>(&s, scope)));
      return Flow::kNormal;
    case StmtKind::kCallBlock: {
      track(scope);
      Value caller = Value::object(std::make_shared<Macro>(&s, scope));
      const Expr& call_expr = *s.call;
      Value callee = eval(*call_expr.a, *scope);
      CallArgs args = eval_args(call_expr, *scope);
      args.kwargs.emplace_back("caller", std::move(caller));
      emit(to_str(call(callee, std::move(args))));
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      Flow flow = Flow::kNormal;
      Value text(capture(s.body, scope, &flow));
      text = apply_filter_chain(*this, *s.filter, std::move(text),
                                [&](const Expr& e) { return eval_args(e, *scope); });
      emit(to_str(text));
      return flow;
    }
    case StmtKind::kWith: {
      auto inner = std::make_shared<Scope>(scope);
      for (size_t i = 0; i < s.targets.size(); ++i) {
        assign(*s.targets[i], eval(*s.values[i], *scope), *inner);
      }
      return exec_body(s.body, inner);
    }
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
    case StmtKind::kScope:
      return exec_body(s.body, scope);
  }
  return Flow::kNormal;
}

Renderer::Flow Renderer::exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope,
                                  const Value& iterable, int depth0, std::string* out_override) {
  std::vector<Value> items = iterate(iterable);
  charge(items.size());
  if (s.filter) {
    std::vector<Value> kept;
    for (Value& item : items) {
      Scope probe(scope);
      assign(*s.target, item, probe);
      if (truthy(eval(*s.filter, probe))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  std::optional<OutputSwap> swap;
  if (out_override != nullptr) swap.emplace(&out_, out_override);
  // Jinja runs the else block unless some iteration ran its body to the end (a `break` or
  // `continue` in every iteration so far leaves it due).
  bool body_completed = false;
  const size_t n = items.size();
  auto loop = std::make_shared<LoopContext>(std::move(items), depth0, &s, scope);
  if (s.recursive) track(scope);
  const Value loop_value = Value::object(loop);
  loop->set_self(loop_value);
  for (size_t i = 0; i < n; ++i) {
    charge(1);
    loop->set_index(i);
    auto iteration = std::make_shared<Scope>(scope);
    assign(*s.target, loop->items()[i], *iteration);
    iteration->set("loop", loop_value);
    const Flow flow = exec_body(s.body, iteration);
    if (flow == Flow::kBreak) break;
    if (flow == Flow::kNormal) body_completed = true;
  }
  if (!body_completed && !s.else_body.empty()) {
    exec_body(s.else_body, std::make_shared<Scope>(scope));
  }
  return Flow::kNormal;
}

std::string Renderer::recurse_loop(const Stmt& loop, const std::shared_ptr<Scope>& scope,
                                   const Value& iterable, int depth0) {
  std::string buffer;
  exec_for(loop, scope, iterable, depth0, &buffer);
  return buffer;
}

void Renderer::assign(const Expr& target, const Value& value, Scope& scope) {
  switch (target.kind) {
    case ExprKind::kName:
      scope.set(target.name, value);
      return;
    case ExprKind::kNsRef: {
      const Value* ns = scope.find(target.name);
      auto* obj =
          ns != nullptr && ns->is_object() ? dynamic_cast<Namespace*>(ns->as_object()) : nullptr;
      if (obj == nullptr) {
        throw TemplateError(ErrorKind::kType, "cannot assign attribute on non-namespace object",
                            target.offset);
      }
      obj->set(target.attr, value);
      return;
    }
    case ExprKind::kTuple: {
      const std::vector<Value> parts = iterate(value);
      const size_t want = target.items.size();
      if (parts.size() < want) {
        type_error("not enough values to unpack (expected " + std::to_string(want) + ", got " +
                   std::to_string(parts.size()) + ")");
      }
      if (parts.size() > want) {
        type_error("too many values to unpack (expected " + std::to_string(want) + ")");
      }
      for (size_t i = 0; i < want; ++i) assign(*target.items[i], parts[i], scope);
      return;
    }
    default:
      type_error("cannot assign to this expression");
  }
}

Value Renderer::invoke_macro(const Stmt& def, const std::shared_ptr<Scope>& closure,
                             CallArgs args) {
  charge(1);
  auto scope = std::make_shared<Scope>(closure);
  const size_t n = def.params.size();
  std::vector<bool> given(n, false);
  std::vector<Value> varargs;
  DictData kwargs;
  Value caller = Value::undefined("No caller defined");
  const std::string& name = def.name;
  for (size_t i = 0; i < args.args.size(); ++i) {
    if (i < n) {
      scope->set(def.params[i].name, std::move(args.args[i]));
      given[i] = true;
    } else if (def.uses_varargs) {
      varargs.push_back(std::move(args.args[i]));
    } else {
      type_error("macro '" + name + "' takes not more than " + std::to_string(n) + " argument(s)");
    }
  }
  for (auto& [key, value] : args.kwargs) {
    size_t idx = n;
    for (size_t i = 0; i < n; ++i) {
      if (def.params[i].name == key) idx = i;
    }
    if (idx < n) {
      if (given[idx])
        type_error("macro '" + name + "' got multiple values for argument '" + key + "'");
      scope->set(key, std::move(value));
      given[idx] = true;
    } else if (key == "caller" && def.uses_caller) {
      caller = std::move(value);
    } else if (def.uses_kwargs) {
      kwargs.set(Value(key), std::move(value));
    } else {
      type_error("macro '" + name + "' takes no keyword argument '" + key + "'");
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (given[i]) continue;
    const MacroParam& p = def.params[i];
    scope->set(p.name, p.default_value
                           ? eval(*p.default_value, *scope)
                           : Value::undefined("parameter '" + p.name + "' was not provided"));
  }
  if (def.uses_varargs) scope->set("varargs", Value::list(std::move(varargs), ListTag::kTuple));
  if (def.uses_kwargs) scope->set("kwargs", Value::dict(std::move(kwargs)));
  if (def.uses_caller) scope->set("caller", std::move(caller));
  return Value(capture(def.body, scope, nullptr));
}

// ---- expressions ----

Value Renderer::call(const Value& callee, CallArgs args) {
  if (callee.is_undefined()) callee.fail_undefined();
  if (callee.is_object() && callee.as_object()->is_callable()) {
    return callee.as_object()->call(*this, std::move(args));
  }
  type_error("'" + type_name(callee) + "' object is not callable");
}

Value Renderer::lookup(const std::string& name, const Scope& scope) const {
  if (const Value* v = scope.find(name)) return *v;
  Value g = find_global(name);
  if (!g.is_undefined()) return g;
  return Value::undefined("'" + name + "' is undefined");
}

CallArgs Renderer::eval_args(const Expr& e, Scope& scope) {
  CallArgs args;
  args.args.reserve(e.items.size());
  for (const auto& item : e.items) args.args.push_back(eval(*item, scope));
  if (e.dyn_args) {
    for (Value& v : iterate(eval(*e.dyn_args, scope))) args.args.push_back(std::move(v));
  }
  for (const auto& kw : e.kwargs) args.kwargs.emplace_back(kw.name, eval(*kw.value, scope));
  if (e.dyn_kwargs) {
    const Value d = eval(*e.dyn_kwargs, scope);
    if (!d.is_dict()) type_error("argument after ** must be a mapping, not " + type_name(d));
    for (const auto& [k, v] : d.as_dict().entries()) {
      if (!k.is_string()) type_error("keywords must be strings");
      args.kwargs.emplace_back(k.as_string(), v);
    }
  }
  return args;
}

Value Renderer::eval(const Expr& e, Scope& scope) {
  charge(1);
  DepthGuard guard(&depth_, options_.limits.max_depth);
  try {
    return eval_inner(e, scope);
  } catch (TemplateError& err) {
    if (err.offset() == kNoOffset) err.set_offset(e.offset);
    throw;
  }
}

Value Renderer::eval_inner(const Expr& e, Scope& scope) {
  switch (e.kind) {
    case ExprKind::kConst:
      return e.value;
    case ExprKind::kName:
      return lookup(e.name, scope);
    case ExprKind::kGetAttr:
      return get_attr(*this, eval(*e.a, scope), e.name);
    case ExprKind::kGetItem: {
      Value obj = eval(*e.a, scope);
      if (e.b->kind == ExprKind::kSlice) {
        const Expr& s = *e.b;
        return slice_value(obj, s.a ? eval(*s.a, scope) : Value::none(),
                           s.b ? eval(*s.b, scope) : Value::none(),
                           s.c ? eval(*s.c, scope) : Value::none());
      }
      return get_item(*this, obj, eval(*e.b, scope));
    }
    case ExprKind::kCall: {
      Value callee = eval(*e.a, scope);
      return call(callee, eval_args(e, scope));
    }
    case ExprKind::kFilter: {
      Value operand = eval(*e.a, scope);
      charge_scan(operand);
      return filter_at(e.builtin)(*this, operand, eval_args(e, scope));
    }
    case ExprKind::kTest: {
      Value operand = eval(*e.a, scope);
      charge_scan(operand);
      return Value(test_at(e.builtin)(*this, operand, eval_args(e, scope)));
    }
    case ExprKind::kUnary:
      if (e.op == Op::kNot) return Value(!truthy(eval(*e.a, scope)));
      return unary_op(e.op, eval(*e.a, scope));
    case ExprKind::kBinary: {
      Value left = eval(*e.a, scope);
      if (e.op == Op::kAnd) return truthy(left) ? eval(*e.b, scope) : left;
      if (e.op == Op::kOr) return truthy(left) ? left : eval(*e.b, scope);
      return binary_op(*this, e.op, left, eval(*e.b, scope));
    }
    case ExprKind::kConcat: {
      std::string s;
      for (const auto& item : e.items) {
        s += to_str(eval(*item, scope));
        check_size(s.size());
      }
      return Value(std::move(s));
    }
    case ExprKind::kCompare: {
      Value left = eval(*e.a, scope);
      for (const auto& [op, expr] : e.ops) {
        Value right = eval(*expr, scope);
        if (op == Op::kIn || op == Op::kNotIn) {
          charge_search(right, left);
        } else {
          charge_scan(left);
          charge_scan(right);
        }
        if (!compare_op(op, left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case ExprKind::kCondExpr:
      if (truthy(eval(*e.a, scope))) return eval(*e.b, scope);
      if (e.c) return eval(*e.c, scope);
      return Value::undefined("the inline if-expression on line " +
                              std::to_string(line_of(program_.source, e.offset)) +
                              " evaluated to false and no else section was defined.");
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const auto& item : e.items) items.push_back(eval(*item, scope));
      return Value::list(std::move(items),
                         e.kind == ExprKind::kTuple ? ListTag::kTuple : ListTag::kList);
    }
    case ExprKind::kDict: {
      DictData d;
      for (const auto& [k, v] : e.pairs) {
        Value key = eval(*k, scope);
        if (!is_hashable(key)) type_error("unhashable type: '" + type_name(key) + "'");
        d.set(std::move(key), eval(*v, scope));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::kSlice:
      fail(ErrorKind::kUnsupported, "slices are only supported directly inside [ ]");
    case ExprKind::kNsRef:
      fail(ErrorKind::kType, "namespace references can only be assigned");
  }
  return Value();
}

}  // namespace kite::jinja
