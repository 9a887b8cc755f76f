// FieldReader: reads typed fields of one JSON object of a request; the first problem found
// (wrong type, value out of range, unknown field) is kept as an ApiError naming the field by its
// full path ("stream_options.include_usage", "messages[2].content").
//
//   FieldReader r(obj);
//   auto t = r.number("temperature", 0.0, kInf);
//   r.reject_unknown({"temperature", ...});
//   if (!r.ok()) return r.error();
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "server/api_error.h"

namespace kite::server {

class FieldReader {
 public:
  static constexpr double kInf = std::numeric_limits<double>::infinity();

  // `path` prefixes field names in errors ("" for the request body itself).
  explicit FieldReader(const boost::json::object& obj, std::string path = "")
      : obj_(obj), path_(std::move(path)) {}

  bool ok() const { return !error_.has_value(); }
  const ApiError& error() const { return *error_; }
  // Records an error unless one is already kept (the first problem wins).
  void fail(ApiError e);

  // The path of this object itself ("messages[2]"; "" for the request body).
  const std::string& path_prefix() const { return path_; }
  // The full path of a field of this object ("stream_options.include_usage").
  std::string path(std::string_view key) const;
  // The raw value of a field; nullptr when absent or JSON null.
  const boost::json::value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed getters: absent or null -> nullopt; wrong type or out of [lo, hi] -> nullopt and an
  // error. Integers accept integral floats (4.0); numbers accept integers; NaN/Inf never pass.
  std::optional<int64_t> integer(std::string_view key, int64_t lo = INT64_MIN,
                                 int64_t hi = INT64_MAX);
  std::optional<double> number(std::string_view key, double lo = -kInf, double hi = kInf);
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::string> string(std::string_view key);
  // An object / array field (borrowed from the document).
  const boost::json::object* object(std::string_view key);
  const boost::json::array* array(std::string_view key);
  // A seed: any JSON integer (negative ones are taken modulo 2^64).
  std::optional<uint64_t> seed(std::string_view key);

  // Fails with unknown_parameter on the first field not in `allowed`.
  void reject_unknown(std::initializer_list<std::string_view> allowed);

 private:
  const boost::json::object& obj_;
  std::string path_;
  std::optional<ApiError> error_;
};

// Reads an array of objects: element i must be an object (else invalid_type naming
// "{where}[i]") and is handed to `item(FieldReader& reader, size_t i)`, whose reader has the path
// "{where}[i]". Stops at the first problem, which is recorded in `r`. Returns r.ok().
template <typename ItemFn>
bool read_objects(FieldReader& r, const boost::json::array& a, const std::string& where,
                  ItemFn&& item) {
  for (size_t i = 0; i < a.size() && r.ok(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!a[i].is_object()) {
      r.fail(invalid_type(at, "'" + at + "' must be an object"));
      break;
    }
    FieldReader ir(a[i].get_object(), at);
    item(ir, i);
    if (!ir.ok()) r.fail(ir.error());
  }
  return r.ok();
}

// Integer value of a JSON number when it is integral and fits int64.
std::optional<int64_t> as_integer(const boost::json::value& v);
// "object", "array", "string", "integer", "number", "boolean", "null".
std::string_view json_kind_name(const boost::json::value& v);
// A number as error messages show it: integers plainly, others in the shortest round-trip form.
std::string format_number(double x);

}  // namespace kite::server
