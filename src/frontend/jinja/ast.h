// Syntax tree of a parsed template. Immutable after parsing; shared by every render (so one
// parsed ChatTemplate can render on many threads at once).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "frontend/jinja/value.h"

namespace kite::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind : uint8_t {
  kConst,     // value
  kName,      // name
  kNsRef,     // name.attr as an assignment target (namespace attribute)
  kGetAttr,   // a.name
  kGetItem,   // a[b]
  kSlice,     // start:stop:step inside []
  kCall,      // a(args)
  kFilter,    // a | name(args); a == nullptr in {% filter %} blocks
  kTest,      // a is name(args)
  kUnary,     // -a, +a, not a
  kBinary,    // a op b (arithmetic, and, or)
  kConcat,    // a ~ b ~ ...
  kCompare,   // a op b op c ...
  kCondExpr,  // b if a else c
  kList,
  kTuple,
  kDict,
};

enum class Op : uint8_t {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kFloorDiv,
  kMod,
  kPow,
  kNeg,
  kPos,
  kNot,
  kAnd,
  kOr,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kIn,
  kNotIn,
};

struct Keyword {
  std::string name;
  ExprPtr value;
};

struct Expr {
  ExprKind kind;
  size_t offset;  // where it starts in the source, for error messages

  // Fields used by the kinds (see ExprKind); unused ones stay empty.
  Value value;                 // kConst
  std::string name;            // kName, kNsRef (namespace), kGetAttr (attr), kFilter/kTest (name)
  std::string attr;            // kNsRef
  Op op = Op::kAdd;            // kUnary, kBinary
  ExprPtr a, b, c;             // operands; kSlice: start/stop/step; kCondExpr: test/then/else
  std::vector<ExprPtr> items;  // kList/kTuple/kConcat, kCall/Filter/Test args
  std::vector<std::pair<ExprPtr, ExprPtr>> pairs;  // kDict
  std::vector<Keyword> kwargs;                     // kCall/kFilter/kTest
  ExprPtr dyn_args, dyn_kwargs;                    // *args, **kwargs
  std::vector<std::pair<Op, ExprPtr>> ops;         // kCompare: operator and right operand
  // kFilter/kTest: index into the builtin table, resolved at parse time.
  int builtin = -1;

  Expr(ExprKind k, size_t off) : kind(k), offset(off) {}
};

enum class StmtKind : uint8_t {
  kOutput,  // template data and {{ expressions }}
  kIf,
  kFor,
  kSet,       // {% set target = expr %}
  kSetBlock,  // {% set target %}...{% endset %}
  kMacro,
  kCallBlock,  // {% call(params) macro(args) %}...{% endcall %}
  kFilterBlock,
  kWith,
  kBreak,
  kContinue,
  kScope,  // a body rendered in place (the `generation` tag)
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  StmtKind kind;
  size_t offset;

  // kOutput: each node is data text (expr == null) or an expression.
  struct OutputNode {
    std::string text;
    ExprPtr expr;
  };
  std::vector<OutputNode> output;

  // kIf: branches (test, body) in order; else_body.
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body else_body;

  // kFor: target in iter [if filter] [recursive]; body; else_body.
  // kSet/kSetBlock/kWith: target(s) and value(s).
  ExprPtr target;
  ExprPtr iter;
  ExprPtr filter;  // kFor condition; kSetBlock/kFilterBlock filter chain (kFilter, a = null)
  bool recursive = false;
  Body body;
  std::vector<ExprPtr> targets;  // kWith
  std::vector<ExprPtr> values;   // kWith

  // kMacro / kCallBlock.
  std::string name;
  std::vector<MacroParam> params;
  ExprPtr call;  // kCallBlock: the call expression
  bool uses_caller = false;
  bool uses_varargs = false;
  bool uses_kwargs = false;

  Stmt(StmtKind k, size_t off) : kind(k), offset(off) {}
};

// A parsed template: its top-level body and the normalised source (for error positions).
struct Program {
  std::string source;
  Body body;
};

}  // namespace kite::jinja
