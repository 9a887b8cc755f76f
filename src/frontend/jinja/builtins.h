// Tables of the builtin filters, tests and global functions, as Jinja's defaults with the
// overrides transformers installs (tojson, raise_exception, strftime_now).
#pragma once

#include <string_view>

#include "frontend/jinja/value.h"

namespace kite::jinja {

// A filter: `operand | name(args)`.
using FilterFn = Value (*)(Renderer& r, const Value& operand, const CallArgs& args);
// A test: `operand is name(args)`.
using TestFn = bool (*)(Renderer& r, const Value& operand, const CallArgs& args);

// Index of a builtin filter / test, or -1 when there is none.
int find_filter(std::string_view name);
int find_test(std::string_view name);
FilterFn filter_at(int index);
TestFn test_at(int index);
// Filters Jinja has but kite does not implement (rejected at parse time with this reason).
bool is_unsupported_filter(std::string_view name);

// Applies a filter / test by name at render time (map('upper'), select('odd'), ...). Raises when
// the name is unknown, as Jinja does.
Value apply_filter(Renderer& r, std::string_view name, const Value& operand, const CallArgs& args);
bool apply_test(Renderer& r, std::string_view name, const Value& operand, const CallArgs& args);

// Global functions (range, dict, namespace, cycler, joiner, raise_exception, strftime_now);
// an Undefined value when `name` is not a global.
Value find_global(std::string_view name);

// Python's getattr/getitem as Jinja's sandbox performs them (environment.getattr/getitem):
// attribute access prefers the Python attribute (str/dict/list methods), item access the item;
// each falls back to the other; misses give an Undefined naming what was missing; mutating
// methods and dunder attributes give an Undefined that raises SecurityError when used.
Value get_attr(Renderer& r, const Value& obj, std::string_view name);
Value get_item(Renderer& r, const Value& obj, const Value& key);
// obj[start:stop:step] with Python slice semantics (None = omitted).
Value slice_value(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Python methods of str / dict / list / tuple / int / float bound to `self`: a callable value,
// or nullopt when the type has no such attribute.
std::optional<Value> python_attribute(const Value& self, std::string_view name);

}  // namespace kite::jinja
