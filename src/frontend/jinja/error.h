// Errors inside the Jinja interpreter.
//
// The lexer, parser and renderer throw TemplateError to unwind from deep inside an expression;
// ChatTemplate::parse/render (the module boundary) catch it and return a Status. Nothing else in
// kite sees these exceptions.
#pragma once

#include <cstddef>
#include <exception>
#include <string>
#include <utility>

namespace kite::jinja {

enum class ErrorKind {
  kSyntax,       // TemplateSyntaxError: the template does not parse
  kType,         // TypeError / ValueError / ZeroDivisionError ...: a bad operation at render time
  kUndefined,    // UndefinedError: an operation on an undefined value
  kSecurity,     // SecurityError: the sandbox refused (mutating methods, private attributes)
  kRaised,       // the template called raise_exception(message)
  kLimit,        // a resource guard tripped (output size, loop iterations, recursion depth)
  kUnsupported,  // a Jinja/Python feature kite does not implement
};

constexpr size_t kNoOffset = static_cast<size_t>(-1);

class TemplateError : public std::exception {
 public:
  TemplateError(ErrorKind kind, std::string message, size_t offset = kNoOffset)
      : kind_(kind), message_(std::move(message)), offset_(offset) {}

  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  // Byte offset in the (newline-normalised) template source; kNoOffset when unknown.
  size_t offset() const { return offset_; }
  void set_offset(size_t offset) { offset_ = offset; }
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  ErrorKind kind_;
  std::string message_;
  size_t offset_;
};

[[noreturn]] inline void fail(ErrorKind kind, std::string message) {
  throw TemplateError(kind, std::move(message));
}
[[noreturn]] inline void type_error(std::string message) {
  throw TemplateError(ErrorKind::kType, std::move(message));
}

}  // namespace kite::jinja
