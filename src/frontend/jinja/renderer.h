// Renderer: executes a parsed Program with a set of top-level variables.
//
// Scoping follows Jinja 3: a `for` iteration, a macro call and a `with` block get a new scope
// whose parent is the enclosing one; `set` writes to the innermost scope (so assignments in a
// loop do not leak out: use namespace()); macros see their defining scope at call time.
//
// One Renderer renders once, on one thread. Guards: output and value sizes, total work (steps),
// and evaluation depth; tripping one raises TemplateError(kLimit) instead of exhausting memory,
// time or stack.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "frontend/jinja/ast.h"
#include "frontend/jinja/value.h"

namespace kite::jinja {

struct RenderLimits {
  size_t max_output_bytes = 32u << 20;  // rendered text, and any one string or list built
  uint64_t max_steps = 20'000'000;      // evaluation steps + loop iterations + copied bytes/16
  int max_depth = 400;                  // nested evaluations (macro recursion)
};

struct RenderOptions {
  RenderLimits limits;
  std::tm now{};  // what strftime_now() formats
};

// A variable scope; lookups walk to the parent.
class Scope {
 public:
  explicit Scope(std::shared_ptr<Scope> parent) : parent_(std::move(parent)) {}
  const Value* find(std::string_view name) const;
  void set(std::string_view name, Value value);
  // Drops variables and the parent link (breaks reference cycles at the end of a render).
  void clear();

 private:
  std::shared_ptr<Scope> parent_;
  std::vector<std::pair<std::string, Value>> vars_;
};

// A C++ callable exposed to templates (global functions, bound Python methods).
class BuiltinFunction final : public Object {
 public:
  using Fn = Value (*)(Renderer& r, const Value& self, const CallArgs& args);
  BuiltinFunction(std::string name, Fn fn, Value self = Value(), std::string self_type = "")
      : name_(std::move(name)), fn_(fn), self_(std::move(self)), self_type_(std::move(self_type)) {}
  std::string type_name() const override { return "builtin_function_or_method"; }
  std::string repr() const override;
  bool is_callable() const override { return true; }
  // A method scans its object (and searches it for a string argument) before it runs.
  Value call(Renderer& r, CallArgs args) const override;

 private:
  std::string name_;
  Fn fn_;
  Value self_;
  std::string self_type_;
};

// jinja2.utils.Namespace: the one mutable object (`{% set ns.attr = value %}`).
class Namespace final : public Object {
 public:
  std::string type_name() const override { return "Namespace"; }
  std::string module_name() const override { return "jinja2.utils"; }
  std::string repr() const override;
  std::optional<Value> get_attr(Renderer& r, std::string_view name) const override;
  void set(std::string_view name, Value value) { attrs_.set(Value(name), std::move(value)); }
  void clear() { attrs_ = DictData(); }

 private:
  DictData attrs_;
};

// Top-level variables of a render, in order.
using Context = std::vector<std::pair<std::string, Value>>;

class Renderer {
 public:
  Renderer(const Program& program, RenderOptions options);
  ~Renderer();

  // Renders the program. Throws TemplateError.
  std::string render(const Context& context);

  // ---- services for builtins ----
  // Calls any callable value (macro, builtin, loop, cycler method, ...).
  Value call(const Value& callee, CallArgs args);
  // Spends `units` of the step budget; raises kLimit when it runs out.
  void charge(uint64_t units) {
    steps_ += units;
    if (steps_ > options_.limits.max_steps) step_limit_exceeded();
  }
  // Raises kLimit when a string or list of `count` elements of `unit` bytes/items each would
  // exceed the output limit (the product is overflow-checked); charges the copy.
  void check_size(size_t count, size_t unit = 1);
  // Charges a pass over `v`: a string's bytes as a copy costs (1/16 step each), a list's or
  // dict's items 1 step each. Every builtin that scans its operand pays this first.
  void charge_scan(const Value& v);
  // Charges a substring / item search of `needle` in `haystack`: the scan times the needle's
  // length, the worst case of the search.
  void charge_search(const Value& haystack, const Value& needle);
  const RenderOptions& options() const { return options_; }
  // Namespaces, and scopes captured by macros and loops, are cleared when the render ends, so
  // reference cycles through them cannot leak.
  void track(const std::shared_ptr<Namespace>& ns) { remember(&namespaces_, ns); }
  void track(const std::shared_ptr<Scope>& scope) { remember(&scopes_, scope); }

  // Internal: runs a macro or caller body (used by the Macro object).
  Value invoke_macro(const Stmt& def, const std::shared_ptr<Scope>& closure, CallArgs args);
  // Internal: runs a recursive loop body again over `items` (loop(...) in a recursive for).
  std::string recurse_loop(const Stmt& loop, const std::shared_ptr<Scope>& scope,
                           const Value& iterable, int depth0);

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  [[noreturn]] void step_limit_exceeded() const;
  // Appends unless it is the last one remembered; drops expired entries as the list grows, so
  // a loop defining macros or namespaces keeps this bounded by what is alive.
  template <typename T>
  static void remember(std::vector<std::weak_ptr<T>>* list, const std::shared_ptr<T>& p) {
    if (!list->empty() && !list->back().owner_before(p) && !p.owner_before(list->back())) return;
    if (list->size() >= 64 && (list->size() & (list->size() - 1)) == 0) {
      std::erase_if(*list, [](const std::weak_ptr<T>& w) { return w.expired(); });
    }
    list->push_back(p);
  }
  void emit(std::string_view text);

  Flow exec_body(const Body& body, const std::shared_ptr<Scope>& scope);
  Flow exec(const Stmt& s, const std::shared_ptr<Scope>& scope);
  Flow exec_inner(const Stmt& s, const std::shared_ptr<Scope>& scope);
  Flow exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope, const Value& iterable,
                int depth0, std::string* out_override);
  std::string capture(const Body& body, const std::shared_ptr<Scope>& scope, Flow* flow);
  void assign(const Expr& target, const Value& value, Scope& scope);

  Value eval(const Expr& e, Scope& scope);
  Value eval_inner(const Expr& e, Scope& scope);
  Value lookup(const std::string& name, const Scope& scope) const;
  CallArgs eval_args(const Expr& e, Scope& scope);

  const Program& program_;
  RenderOptions options_;
  std::string* out_ = nullptr;
  uint64_t steps_ = 0;
  int depth_ = 0;
  std::vector<std::weak_ptr<Namespace>> namespaces_;
  std::vector<std::weak_ptr<Scope>> scopes_;
};

// Arithmetic and comparison with Python semantics (operators.cpp).
Value binary_op(Renderer& r, Op op, const Value& a, const Value& b);
Value unary_op(Op op, const Value& a);
bool compare_op(Op op, const Value& a, const Value& b);
// markupsafe.escape of a string.
std::string html_escape(std::string_view s);

}  // namespace kite::jinja
