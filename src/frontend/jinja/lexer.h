// Jinja2 lexer with the environment transformers renders chat templates in: default
// delimiters, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False.
//
// Whitespace control follows Jinja 3.1 exactly: `{%-`/`-%}` strip all whitespace on that side,
// `{%+` turns off lstrip_blocks for the tag, `+%}` turns off trim_blocks, and `{% raw %}` blocks
// pass their contents through as data.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kite::jinja {

enum class Tok : uint8_t {
  kData,
  kVariableBegin,
  kVariableEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInteger,
  kFloat,
  // operators
  kAdd,
  kSub,
  kMul,
  kDiv,
  kFloorDiv,
  kMod,
  kPow,
  kTilde,
  kLBracket,
  kRBracket,
  kLParen,
  kRParen,
  kLBrace,
  kRBrace,
  kEq,
  kNe,
  kGt,
  kGe,
  kLt,
  kLe,
  kAssign,
  kDot,
  kColon,
  kPipe,
  kComma,
  kSemicolon,
  kEof,
};

struct Token {
  Tok type;
  size_t offset;     // byte offset in the normalised source
  std::string text;  // data text, name, or decoded string literal
  int64_t int_value = 0;
  double float_value = 0.0;
};

// "end of print statement", "'if'", "'+'", ... (Jinja's describe_token wording).
std::string describe_token(const Token& t);

// Newline-normalised source (\r\n and \r become \n; one trailing newline removed), as Jinja
// prepares it before lexing. Offsets in tokens and errors refer to this text.
std::string normalize_source(std::string_view source);

// Tokenizes normalised source. Throws TemplateError(kSyntax) with an offset on bad input.
// REQUIRES: `source` is valid UTF-8.
std::vector<Token> tokenize(std::string_view source);

}  // namespace kite::jinja
