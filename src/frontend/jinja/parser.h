// Recursive-descent parser for Jinja2 templates, following jinja2/parser.py (3.1) rule for rule:
// the same operator precedence (including Jinja's left-associative `**` and `-x|f` meaning
// `(-x)|f`), tuples without parentheses, `is` tests with one bare argument, and the statements
// HF chat templates use: if/elif/else, for (else, `if` filter, recursive), set (incl. block set,
// tuple and namespace targets), macro, call, filter, with, print, break/continue
// (jinja2.ext.loopcontrols) and transformers' `generation` block.
//
// Filters and tests are resolved when parsing: an unknown name is a syntax error, as in Jinja.
// `include`, `import`, `extends` and `block` need a template loader, which transformers does not
// give; they are rejected with a clear message.
#pragma once

#include <memory>
#include <string_view>

#include "frontend/jinja/ast.h"

namespace kite::jinja {

// Nesting limits that keep parsing and rendering recursion bounded on hostile input.
inline constexpr int kMaxExprDepth = 256;
inline constexpr int kMaxStmtDepth = 256;

// Parses newline-normalised, valid UTF-8 source. Throws TemplateError (kSyntax or
// kUnsupported) with the offset of the offending token.
std::unique_ptr<Program> parse_program(std::string source);

}  // namespace kite::jinja
