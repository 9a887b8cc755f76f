#include "frontend/jinja/parser.h"

#include <algorithm>
#include <initializer_list>
#include <unordered_map>

#include "frontend/jinja/builtins.h"
#include "frontend/jinja/lexer.h"

namespace kite::jinja {

namespace {

class Parser {
 public:
  Parser(std::vector<Token> tokens, Program* program)
      : tokens_(std::move(tokens)), program_(program) {}

  Body parse() { return subparse({}); }

 private:
  // ---- token stream ----
  const Token& current() const { return tokens_[pos_]; }
  const Token& look() const { return tokens_[std::min(pos_ + 1, tokens_.size() - 1)]; }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool test(Tok type) const { return current().type == type; }
  bool test_name(std::string_view name) const {
    return current().type == Tok::kName && current().text == name;
  }
  bool skip_if(Tok type) {
    if (!test(type)) return false;
    next();
    return true;
  }
  bool skip_if_name(std::string_view name) {
    if (!test_name(name)) return false;
    next();
    return true;
  }

  [[noreturn]] void fail_at(const std::string& message, size_t offset) const {
    throw TemplateError(ErrorKind::kSyntax, message, offset);
  }
  [[noreturn]] void fail_here(const std::string& message) const {
    fail_at(message, current().offset);
  }

  const Token& expect(Tok type) {
    if (!test(type)) {
      if (test(Tok::kEof)) {
        fail_here("unexpected end of template, expected '" + token_type_name(type) + "'.");
      }
      fail_here("expected token '" + token_type_name(type) + "', got '" +
                describe_token(current()) + "'");
    }
    return next();
  }
  const Token& expect_name(std::string_view name) {
    if (!test_name(name)) {
      if (test(Tok::kEof))
        fail_here("unexpected end of template, expected '" + std::string(name) + "'.");
      fail_here("expected token '" + std::string(name) + "', got '" + describe_token(current()) +
                "'");
    }
    return next();
  }

  static std::string token_type_name(Tok type) {
    switch (type) {
      case Tok::kName:
        return "name";
      case Tok::kBlockEnd:
        return "end of statement block";
      case Tok::kVariableEnd:
        return "end of print statement";
      case Tok::kRParen:
        return ")";
      case Tok::kRBracket:
        return "]";
      case Tok::kRBrace:
        return "}";
      case Tok::kLParen:
        return "(";
      case Tok::kColon:
        return ":";
      case Tok::kComma:
        return ",";
      case Tok::kAssign:
        return "=";
      default:
        return "token";
    }
  }

  // ---- nesting guards ----
  struct DepthGuard {
    DepthGuard(int* depth, int limit, const Parser& p) : depth_(depth) {
      if (++*depth_ > limit) p.fail_here("template nesting is too deep");
    }
    ~DepthGuard() { --*depth_; }
    int* depth_;
  };

  ExprPtr make(ExprKind kind, size_t offset) { return std::make_unique<Expr>(kind, offset); }

  // Records the node's depth and rejects trees deeper than kMaxExprDepth (long left-deep chains
  // such as a+a+a+... are built by loops, not recursion, so the recursion guard misses them).
  ExprPtr finish(ExprPtr e) {
    int d = 0;
    auto take = [&](const ExprPtr& c) {
      if (c) d = std::max(d, depth_of(*c));
    };
    take(e->a);
    take(e->b);
    take(e->c);
    take(e->dyn_args);
    take(e->dyn_kwargs);
    for (const auto& x : e->items) take(x);
    for (const auto& [k, v] : e->pairs) {
      take(k);
      take(v);
    }
    for (const auto& kw : e->kwargs) take(kw.value);
    for (const auto& [op, x] : e->ops) take(x);
    if (d + 1 > kMaxExprDepth) fail_at("expression nesting is too deep", e->offset);
    depths_[e.get()] = d + 1;
    return e;
  }
  int depth_of(const Expr& e) const {
    auto it = depths_.find(&e);
    return it == depths_.end() ? 1 : it->second;
  }

  // ---- statements ----
  Body subparse(std::initializer_list<std::string_view> end_tokens) {
    DepthGuard guard(&stmt_depth_, kMaxStmtDepth, *this);
    if (end_tokens.size() != 0) end_stack_.emplace_back(end_tokens.begin(), end_tokens.end());
    Body body;
    StmtPtr output;
    auto flush = [&] {
      if (output) body.push_back(std::move(output));
      output.reset();
    };
    auto out_node = [&](size_t offset) -> Stmt& {
      if (!output) output = std::make_unique<Stmt>(StmtKind::kOutput, offset);
      return *output;
    };
    while (!test(Tok::kEof)) {
      const Token& t = current();
      if (t.type == Tok::kData) {
        out_node(t.offset).output.push_back({t.text, nullptr});
        next();
      } else if (t.type == Tok::kVariableBegin) {
        next();
        ExprPtr e = parse_tuple(false, true, {}, false, false);
        expect(Tok::kVariableEnd);
        out_node(t.offset).output.push_back({"", std::move(e)});
      } else if (t.type == Tok::kBlockBegin) {
        flush();
        next();
        if (end_tokens.size() != 0 && test(Tok::kName) &&
            std::find(end_tokens.begin(), end_tokens.end(), current().text) != end_tokens.end()) {
          end_stack_.pop_back();
          return body;
        }
        parse_statement(&body);
        expect(Tok::kBlockEnd);
      } else {
        fail_here("unexpected '" + describe_token(t) + "'");
      }
    }
    flush();
    if (end_tokens.size() != 0) fail_eof();
    return body;
  }

  std::string expected_tags_message() const {
    std::string msg;
    if (!end_stack_.empty()) {
      msg = " Jinja was looking for the following tags: ";
      const auto& tags = end_stack_.back();
      for (size_t i = 0; i < tags.size(); ++i) {
        if (i) msg += i + 1 == tags.size() ? " or " : ", ";
        msg += "'" + std::string(tags[i]) + "'";
      }
      msg += ".";
    }
    if (!tag_stack_.empty()) {
      msg += " The innermost block that needs to be closed is '" + tag_stack_.back() + "'.";
    }
    return msg;
  }

  [[noreturn]] void fail_eof() const {
    fail_here("Unexpected end of template." + expected_tags_message());
  }

  Body parse_block_body(std::initializer_list<std::string_view> end_tokens, bool drop_needle) {
    skip_if(Tok::kColon);
    expect(Tok::kBlockEnd);
    Body body = subparse(end_tokens);
    if (drop_needle) next();
    return body;
  }

  void parse_statement(Body* out) {
    if (!test(Tok::kName)) fail_here("tag name expected");
    const Token& tok = current();
    const std::string tag = tok.text;
    static constexpr std::string_view kLoader[] = {"include", "import", "from", "extends", "block"};
    for (std::string_view t : kLoader) {
      if (tag == t) {
        throw TemplateError(ErrorKind::kUnsupported,
                            "the '" + tag +
                                "' tag needs a template loader, which chat templates "
                                "do not have",
                            tok.offset);
      }
    }
    if (tag == "autoescape") {
      throw TemplateError(ErrorKind::kUnsupported, "the 'autoescape' tag is not supported",
                          tok.offset);
    }
    tag_stack_.push_back(tag);
    if (tag == "for") {
      out->push_back(parse_for());
    } else if (tag == "if") {
      out->push_back(parse_if());
    } else if (tag == "set") {
      out->push_back(parse_set());
    } else if (tag == "macro") {
      out->push_back(parse_macro());
    } else if (tag == "call") {
      out->push_back(parse_call_block());
    } else if (tag == "filter") {
      out->push_back(parse_filter_block());
    } else if (tag == "with") {
      out->push_back(parse_with());
    } else if (tag == "print") {
      auto s = std::make_unique<Stmt>(StmtKind::kOutput, next().offset);
      while (!test(Tok::kBlockEnd)) {
        if (!s->output.empty()) expect(Tok::kComma);
        s->output.push_back({"", parse_expression(true)});
      }
      out->push_back(std::move(s));
    } else if (tag == "break" || tag == "continue") {
      next();
      if (loop_depth_ == 0) fail_at("'" + tag + "' outside loop", tok.offset);
      out->push_back(std::make_unique<Stmt>(tag == "break" ? StmtKind::kBreak : StmtKind::kContinue,
                                            tok.offset));
    } else if (tag == "generation") {
      auto s = std::make_unique<Stmt>(StmtKind::kScope, next().offset);
      s->body = parse_block_body({"endgeneration"}, true);
      out->push_back(std::move(s));
    } else {
      tag_stack_.pop_back();
      std::string msg = "Encountered unknown tag '" + tag + "'.";
      if (!end_stack_.empty()) msg += expected_tags_message();
      fail_here(msg);
    }
    tag_stack_.pop_back();
  }

  StmtPtr parse_for() {
    auto s = std::make_unique<Stmt>(StmtKind::kFor, next().offset);
    s->target = parse_assign_target(true, false, {"in"}, false);
    expect_name("in");
    s->iter = parse_tuple(false, false, {"recursive"}, false, false);
    if (skip_if_name("if")) s->filter = parse_expression(true);
    s->recursive = skip_if_name("recursive");
    ++loop_depth_;
    s->body = parse_block_body({"endfor", "else"}, false);
    --loop_depth_;
    if (next().text != "endfor") s->else_body = parse_block_body({"endfor"}, true);
    return s;
  }

  StmtPtr parse_if() {
    auto s = std::make_unique<Stmt>(StmtKind::kIf, next().offset);
    while (true) {
      ExprPtr cond = parse_tuple(false, false, {}, false, false);
      Body body = parse_block_body({"elif", "else", "endif"}, false);
      s->branches.emplace_back(std::move(cond), std::move(body));
      const Token& t = next();
      if (t.text == "elif") continue;
      if (t.text == "else") s->else_body = parse_block_body({"endif"}, true);
      break;
    }
    return s;
  }

  StmtPtr parse_set() {
    const size_t offset = next().offset;
    ExprPtr target = parse_assign_target(true, false, {}, true);
    if (skip_if(Tok::kAssign)) {
      auto s = std::make_unique<Stmt>(StmtKind::kSet, offset);
      s->target = std::move(target);
      s->iter = parse_tuple(false, true, {}, false, false);
      return s;
    }
    auto s = std::make_unique<Stmt>(StmtKind::kSetBlock, offset);
    s->target = std::move(target);
    s->filter = parse_filter(nullptr, false);
    s->body = parse_block_body({"endset"}, true);
    return s;
  }

  void parse_signature(Stmt* s) {
    expect(Tok::kLParen);
    while (!test(Tok::kRParen)) {
      if (!s->params.empty()) expect(Tok::kComma);
      const Token& name = expect(Tok::kName);
      MacroParam p{name.text, nullptr};
      if (skip_if(Tok::kAssign)) {
        p.default_value = parse_expression(true);
      } else if (!s->params.empty() && s->params.back().default_value) {
        fail_at("non-default argument follows default argument", name.offset);
      }
      s->params.push_back(std::move(p));
    }
    expect(Tok::kRParen);
  }

  // Which of the special names caller / varargs / kwargs a macro body refers to.
  static void scan_names(const Expr* e, Stmt* macro) {
    if (e == nullptr) return;
    if (e->kind == ExprKind::kName) {
      macro->uses_caller |= e->name == "caller";
      macro->uses_varargs |= e->name == "varargs";
      macro->uses_kwargs |= e->name == "kwargs";
    }
    scan_names(e->a.get(), macro);
    scan_names(e->b.get(), macro);
    scan_names(e->c.get(), macro);
    scan_names(e->dyn_args.get(), macro);
    scan_names(e->dyn_kwargs.get(), macro);
    for (const auto& x : e->items) scan_names(x.get(), macro);
    for (const auto& [k, v] : e->pairs) {
      scan_names(k.get(), macro);
      scan_names(v.get(), macro);
    }
    for (const auto& kw : e->kwargs) scan_names(kw.value.get(), macro);
    for (const auto& [op, x] : e->ops) scan_names(x.get(), macro);
  }
  static void scan_body(const Body& body, Stmt* macro) {
    for (const auto& st : body) {
      for (const auto& node : st->output) scan_names(node.expr.get(), macro);
      for (const auto& [cond, b] : st->branches) {
        scan_names(cond.get(), macro);
        scan_body(b, macro);
      }
      scan_body(st->else_body, macro);
      scan_body(st->body, macro);
      scan_names(st->target.get(), macro);
      scan_names(st->iter.get(), macro);
      scan_names(st->filter.get(), macro);
      scan_names(st->call.get(), macro);
      for (const auto& v : st->values) scan_names(v.get(), macro);
      for (const auto& p : st->params) scan_names(p.default_value.get(), macro);
    }
  }

  StmtPtr parse_macro() {
    auto s = std::make_unique<Stmt>(StmtKind::kMacro, next().offset);
    s->name = expect(Tok::kName).text;
    parse_signature(s.get());
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_block_body({"endmacro"}, true);
    loop_depth_ = saved_loops;
    scan_body(s->body, s.get());
    for (const auto& p : s->params) scan_names(p.default_value.get(), s.get());
    return s;
  }

  StmtPtr parse_call_block() {
    auto s = std::make_unique<Stmt>(StmtKind::kCallBlock, next().offset);
    if (test(Tok::kLParen)) parse_signature(s.get());
    s->call = parse_expression(true);
    if (s->call->kind != ExprKind::kCall) fail_at("expected call", s->offset);
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_block_body({"endcall"}, true);
    loop_depth_ = saved_loops;
    scan_body(s->body, s.get());
    s->name = "caller";
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = std::make_unique<Stmt>(StmtKind::kFilterBlock, next().offset);
    s->filter = parse_filter(nullptr, true);
    s->body = parse_block_body({"endfilter"}, true);
    return s;
  }

  StmtPtr parse_with() {
    auto s = std::make_unique<Stmt>(StmtKind::kWith, next().offset);
    while (!test(Tok::kBlockEnd)) {
      if (!s->targets.empty()) expect(Tok::kComma);
      s->targets.push_back(parse_assign_target(true, false, {}, false));
      expect(Tok::kAssign);
      s->values.push_back(parse_expression(true));
    }
    s->body = parse_block_body({"endwith"}, true);
    return s;
  }

  // ---- assignment targets ----
  void check_assignable(const Expr& e) const {
    if (e.kind == ExprKind::kName || e.kind == ExprKind::kNsRef) {
      if (e.kind == ExprKind::kName &&
          (e.name == "true" || e.name == "false" || e.name == "none" || e.name == "True" ||
           e.name == "False" || e.name == "None")) {
        fail_at("can't assign to 'const'", e.offset);
      }
      return;
    }
    if (e.kind == ExprKind::kTuple) {
      for (const auto& item : e.items) check_assignable(*item);
      return;
    }
    static constexpr const char* kNames[] = {
        "const", "name",   "nsref",  "getattr", "getitem",  "slice", "call",  "filter", "test",
        "unary", "binary", "concat", "compare", "condexpr", "list",  "tuple", "dict"};
    fail_at(std::string("can't assign to '") + kNames[static_cast<int>(e.kind)] + "'", e.offset);
  }

  ExprPtr parse_assign_target(bool with_tuple, bool name_only,
                              std::initializer_list<std::string_view> extra_end,
                              bool with_namespace) {
    ExprPtr target;
    if (name_only) {
      const Token& t = expect(Tok::kName);
      target = make(ExprKind::kName, t.offset);
      target->name = t.text;
    } else if (with_tuple) {
      target = parse_tuple(true, true, extra_end, false, with_namespace);
    } else {
      target = parse_primary(with_namespace);
    }
    check_assignable(*target);
    return target;
  }

  // ---- expressions ----
  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(&expr_depth_, kMaxExprDepth, *this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    ExprPtr expr1 = parse_or();
    while (test_name("if")) {
      const size_t offset = next().offset;
      ExprPtr cond = make(ExprKind::kCondExpr, offset);
      cond->a = parse_or();
      cond->b = std::move(expr1);
      if (skip_if_name("else")) cond->c = parse_condexpr();
      expr1 = finish(std::move(cond));
    }
    return expr1;
  }

  ExprPtr binary(Op op, ExprPtr left, ExprPtr right, size_t offset) {
    ExprPtr e = make(ExprKind::kBinary, offset);
    e->op = op;
    e->a = std::move(left);
    e->b = std::move(right);
    return finish(std::move(e));
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (test_name("or")) {
      const size_t offset = next().offset;
      left = binary(Op::kOr, std::move(left), parse_and(), offset);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (test_name("and")) {
      const size_t offset = next().offset;
      left = binary(Op::kAnd, std::move(left), parse_not(), offset);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (test_name("not")) {
      DepthGuard guard(&expr_depth_, kMaxExprDepth, *this);
      ExprPtr e = make(ExprKind::kUnary, next().offset);
      e->op = Op::kNot;
      e->a = parse_not();
      return finish(std::move(e));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const size_t offset = current().offset;
    ExprPtr expr = parse_math1();
    ExprPtr cmp;
    while (true) {
      Op op;
      const Tok t = current().type;
      if (t == Tok::kEq) {
        op = Op::kEq;
      } else if (t == Tok::kNe) {
        op = Op::kNe;
      } else if (t == Tok::kLt) {
        op = Op::kLt;
      } else if (t == Tok::kLe) {
        op = Op::kLe;
      } else if (t == Tok::kGt) {
        op = Op::kGt;
      } else if (t == Tok::kGe) {
        op = Op::kGe;
      } else if (test_name("in")) {
        op = Op::kIn;
      } else if (test_name("not") && look().type == Tok::kName && look().text == "in") {
        next();
        op = Op::kNotIn;
      } else {
        break;
      }
      next();
      if (!cmp) {
        cmp = make(ExprKind::kCompare, offset);
        cmp->a = std::move(expr);
      }
      cmp->ops.emplace_back(op, parse_math1());
    }
    return cmp ? finish(std::move(cmp)) : std::move(expr);
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (test(Tok::kAdd) || test(Tok::kSub)) {
      const Token& t = next();
      const Op op = t.type == Tok::kAdd ? Op::kAdd : Op::kSub;
      left = binary(op, std::move(left), parse_concat(), t.offset);
    }
    return left;
  }

  ExprPtr parse_concat() {
    const size_t offset = current().offset;
    ExprPtr first = parse_math2();
    if (!test(Tok::kTilde)) return first;
    ExprPtr e = make(ExprKind::kConcat, offset);
    e->items.push_back(std::move(first));
    while (skip_if(Tok::kTilde)) e->items.push_back(parse_math2());
    return finish(std::move(e));
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (test(Tok::kMul) || test(Tok::kDiv) || test(Tok::kFloorDiv) || test(Tok::kMod)) {
      const Token& t = next();
      const Op op = t.type == Tok::kMul        ? Op::kMul
                    : t.type == Tok::kDiv      ? Op::kDiv
                    : t.type == Tok::kFloorDiv ? Op::kFloorDiv
                                               : Op::kMod;
      left = binary(op, std::move(left), parse_pow(), t.offset);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (test(Tok::kPow)) {
      const size_t offset = next().offset;
      left = binary(Op::kPow, std::move(left), parse_unary(true), offset);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(&expr_depth_, kMaxExprDepth, *this);
    ExprPtr node;
    if (test(Tok::kSub) || test(Tok::kAdd)) {
      const Token& t = next();
      node = make(ExprKind::kUnary, t.offset);
      node->op = t.type == Tok::kSub ? Op::kNeg : Op::kPos;
      node->a = parse_unary(false);
      node = finish(std::move(node));
    } else {
      node = parse_primary(false);
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary(bool with_namespace) {
    const Token& t = current();
    ExprPtr node;
    if (t.type == Tok::kName) {
      next();
      if (t.text == "true" || t.text == "True" || t.text == "false" || t.text == "False") {
        node = make(ExprKind::kConst, t.offset);
        node->value = Value(t.text == "true" || t.text == "True");
      } else if (t.text == "none" || t.text == "None") {
        node = make(ExprKind::kConst, t.offset);
        node->value = Value::none();
      } else if (with_namespace && test(Tok::kDot)) {
        next();
        node = make(ExprKind::kNsRef, t.offset);
        node->name = t.text;
        node->attr = expect(Tok::kName).text;
      } else {
        node = make(ExprKind::kName, t.offset);
        node->name = t.text;
      }
    } else if (t.type == Tok::kString) {
      std::string s = next().text;
      while (test(Tok::kString)) s += next().text;
      node = make(ExprKind::kConst, t.offset);
      node->value = Value(std::move(s));
    } else if (t.type == Tok::kInteger || t.type == Tok::kFloat) {
      next();
      node = make(ExprKind::kConst, t.offset);
      node->value = t.type == Tok::kInteger ? Value(t.int_value) : Value(t.float_value);
    } else if (t.type == Tok::kLParen) {
      next();
      node = parse_tuple(false, true, {}, true, false);
      expect(Tok::kRParen);
      return node;
    } else if (t.type == Tok::kLBracket) {
      node = make(ExprKind::kList, next().offset);
      while (!test(Tok::kRBracket)) {
        if (!node->items.empty()) expect(Tok::kComma);
        if (test(Tok::kRBracket)) break;
        node->items.push_back(parse_expression(true));
      }
      expect(Tok::kRBracket);
    } else if (t.type == Tok::kLBrace) {
      node = make(ExprKind::kDict, next().offset);
      while (!test(Tok::kRBrace)) {
        if (!node->pairs.empty()) expect(Tok::kComma);
        if (test(Tok::kRBrace)) break;
        ExprPtr key = parse_expression(true);
        expect(Tok::kColon);
        node->pairs.emplace_back(std::move(key), parse_expression(true));
      }
      expect(Tok::kRBrace);
    } else {
      if (t.type == Tok::kEof) fail_eof();
      fail_here("unexpected '" + describe_token(t) + "'");
    }
    return finish(std::move(node));
  }

  bool is_tuple_end(std::initializer_list<std::string_view> extra_end) const {
    if (test(Tok::kVariableEnd) || test(Tok::kBlockEnd) || test(Tok::kRParen)) return true;
    for (std::string_view name : extra_end) {
      if (test_name(name)) return true;
    }
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr,
                      std::initializer_list<std::string_view> extra_end, bool explicit_parens,
                      bool with_namespace) {
    const size_t offset = current().offset;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect(Tok::kComma);
      if (is_tuple_end(extra_end)) break;
      args.push_back(simplified ? parse_primary(with_namespace) : parse_expression(with_condexpr));
      if (test(Tok::kComma)) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) {
        if (test(Tok::kEof)) fail_eof();
        fail_here("Expected an expression, got '" + describe_token(current()) + "'");
      }
    }
    ExprPtr t = make(ExprKind::kTuple, offset);
    t->items = std::move(args);
    return finish(std::move(t));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (test(Tok::kDot) || test(Tok::kLBracket)) {
        node = parse_subscript(std::move(node));
      } else if (test(Tok::kLParen)) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (test(Tok::kPipe)) {
        node = parse_filter(std::move(node), false);
      } else if (test_name("is")) {
        node = parse_test(std::move(node));
      } else if (test(Tok::kLParen)) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& t = next();
    if (t.type == Tok::kDot) {
      const Token& attr = next();
      if (attr.type == Tok::kName) {
        ExprPtr e = make(ExprKind::kGetAttr, t.offset);
        e->a = std::move(node);
        e->name = attr.text;
        return finish(std::move(e));
      }
      if (attr.type != Tok::kInteger) fail_at("expected name or number", attr.offset);
      ExprPtr e = make(ExprKind::kGetItem, t.offset);
      e->a = std::move(node);
      e->b = make(ExprKind::kConst, attr.offset);
      e->b->value = Value(attr.int_value);
      e->b = finish(std::move(e->b));
      return finish(std::move(e));
    }
    // '['
    std::vector<ExprPtr> args;
    while (!test(Tok::kRBracket)) {
      if (!args.empty()) expect(Tok::kComma);
      args.push_back(parse_subscribed());
    }
    expect(Tok::kRBracket);
    ExprPtr e = make(ExprKind::kGetItem, t.offset);
    e->a = std::move(node);
    if (args.size() == 1) {
      e->b = std::move(args[0]);
    } else {
      ExprPtr tuple = make(ExprKind::kTuple, t.offset);
      tuple->items = std::move(args);
      e->b = finish(std::move(tuple));
    }
    return finish(std::move(e));
  }

  ExprPtr parse_subscribed() {
    const size_t offset = current().offset;
    ExprPtr start;
    if (test(Tok::kColon)) {
      next();
    } else {
      ExprPtr node = parse_expression(true);
      if (!test(Tok::kColon)) return node;
      next();
      start = std::move(node);
    }
    ExprPtr slice = make(ExprKind::kSlice, offset);
    slice->a = std::move(start);
    if (!test(Tok::kColon) && !test(Tok::kRBracket) && !test(Tok::kComma)) {
      slice->b = parse_expression(true);
    }
    if (skip_if(Tok::kColon)) {
      if (!test(Tok::kRBracket) && !test(Tok::kComma)) slice->c = parse_expression(true);
    }
    return finish(std::move(slice));
  }

  void parse_call_args(Expr* e) {
    const Token& lparen = expect(Tok::kLParen);
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok) fail_at("invalid syntax for function call expression", lparen.offset);
    };
    while (!test(Tok::kRParen)) {
      if (require_comma) {
        expect(Tok::kComma);
        if (test(Tok::kRParen)) break;
      }
      if (test(Tok::kMul)) {
        ensure(!e->dyn_args && !e->dyn_kwargs);
        next();
        e->dyn_args = parse_expression(true);
      } else if (test(Tok::kPow)) {
        ensure(!e->dyn_kwargs);
        next();
        e->dyn_kwargs = parse_expression(true);
      } else if (test(Tok::kName) && look().type == Tok::kAssign) {
        ensure(!e->dyn_kwargs);
        std::string key = next().text;
        next();
        e->kwargs.push_back(Keyword{std::move(key), parse_expression(true)});
      } else {
        ensure(!e->dyn_args && !e->dyn_kwargs && e->kwargs.empty());
        e->items.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect(Tok::kRParen);
  }

  ExprPtr parse_call(ExprPtr node) {
    ExprPtr e = make(ExprKind::kCall, node->offset);  // errors point at the callee
    e->a = std::move(node);
    parse_call_args(e.get());
    return finish(std::move(e));
  }

  std::string parse_dotted_name() {
    std::string name = expect(Tok::kName).text;
    while (test(Tok::kDot)) {
      next();
      name += "." + expect(Tok::kName).text;
    }
    return name;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (test(Tok::kPipe) || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      const size_t offset = current().offset;
      ExprPtr e = make(ExprKind::kFilter, offset);
      e->name = parse_dotted_name();
      e->builtin = find_filter(e->name);
      if (e->builtin < 0) {
        if (is_unsupported_filter(e->name)) {
          throw TemplateError(ErrorKind::kUnsupported,
                              "the '" + e->name + "' filter is not supported", offset);
        }
        fail_at("No filter named '" + e->name + "'.", offset);
      }
      e->a = std::move(node);
      if (test(Tok::kLParen)) parse_call_args(e.get());
      node = finish(std::move(e));
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const size_t offset = next().offset;  // 'is'
    const bool negated = skip_if_name("not");
    ExprPtr e = make(ExprKind::kTest, offset);
    const size_t name_offset = current().offset;
    e->name = parse_dotted_name();
    e->builtin = find_test(e->name);
    if (e->builtin < 0) fail_at("No test named '" + e->name + "'.", name_offset);
    e->a = std::move(node);
    const Tok t = current().type;
    if (t == Tok::kLParen) {
      parse_call_args(e.get());
    } else if ((t == Tok::kName || t == Tok::kString || t == Tok::kInteger || t == Tok::kFloat ||
                t == Tok::kLBracket || t == Tok::kLBrace) &&
               !test_name("else") && !test_name("or") && !test_name("and")) {
      if (test_name("is")) fail_here("You cannot chain multiple tests with is");
      e->items.push_back(parse_postfix(parse_primary(false)));
    }
    ExprPtr result = finish(std::move(e));
    if (negated) {
      ExprPtr n = make(ExprKind::kUnary, offset);
      n->op = Op::kNot;
      n->a = std::move(result);
      result = finish(std::move(n));
    }
    return result;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  Program* program_;
  std::vector<std::vector<std::string_view>> end_stack_;
  std::vector<std::string> tag_stack_;
  std::unordered_map<const Expr*, int> depths_;
  int expr_depth_ = 0;
  int stmt_depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

std::unique_ptr<Program> parse_program(std::string source) {
  auto program = std::make_unique<Program>();
  program->source = std::move(source);
  Parser parser(tokenize(program->source), program.get());
  program->body = parser.parse();
  return program;
}

}  // namespace kite::jinja
