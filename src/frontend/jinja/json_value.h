// Conversions between JSON and template values.
#pragma once

#include <boost/json.hpp>
#include <string>

#include "frontend/jinja/value.h"

namespace kite::jinja {

// JSON -> Value as Python's json.loads gives it: objects keep key order, integers stay
// integers (those outside int64 are rejected), numbers with a fraction or exponent are floats.
// Throws TemplateError(kType) for integers out of range.
Value from_json(const boost::json::value& v);

struct JsonDumpOptions {
  bool ensure_ascii = false;
  // Indent per level; nullopt = single line. (An int n in Python means n spaces.)
  std::optional<std::string> indent;
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};

// Python's json.dumps(value, ...) as transformers' `tojson` filter calls it. Raises TypeError for
// values JSON cannot hold (Undefined, macros, ...), as Python does.
std::string to_json(const Value& v, const JsonDumpOptions& options);

}  // namespace kite::jinja
