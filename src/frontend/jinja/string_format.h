// Python string formatting: `fmt % args` (printf-style; also the `format` filter) and
// `fmt.format(*args, **kwargs)` with the format-spec mini-language.
#pragma once

#include <string>
#include <string_view>

#include "frontend/jinja/value.h"

namespace kite::jinja {

// `fmt % args`: a tuple supplies positional arguments, a dict named ones (%(name)s), anything
// else is the single argument. Raises TypeError/ValueError as Python does.
std::string percent_format(Renderer& r, std::string_view fmt, const Value& args);

// str.format(*args, **kwargs).
std::string brace_format(Renderer& r, std::string_view fmt, const CallArgs& args);

// format(value, spec): the format-spec mini-language for str, int, bool and float.
std::string format_value(Renderer& r, const Value& value, std::string_view spec);

}  // namespace kite::jinja
