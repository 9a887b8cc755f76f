#include "core/json_util.h"

#include "core/mapped_file.h"

namespace kite::json {

namespace bj = boost::json;

Result<bj::value> parse(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  bj::parse_options opts;
  opts.allow_invalid_utf8 =
      true;  // some tokenizer files hold raw bytes; we validate where it matters
  bj::value v = bj::parse(text, ec, {}, opts);
  if (ec) return invalid_argument(std::string(what) + ": malformed JSON: " + ec.message());
  return v;
}

Result<bj::value> parse_file(const std::string& path) {
  KITE_ASSIGN_OR_RETURN(std::string text, read_file(path));
  return parse(text, path);
}

std::string_view kind_name(const bj::value& v, std::string_view bool_name) {
  switch (v.kind()) {
    case bj::kind::object:
      return "object";
    case bj::kind::array:
      return "array";
    case bj::kind::string:
      return "string";
    case bj::kind::int64:
    case bj::kind::uint64:
      return "integer";
    case bj::kind::double_:
      return "number";
    case bj::kind::bool_:
      return bool_name;
    case bj::kind::null:
      return "null";
  }
  return "unknown";
}

namespace {
Status wrong_type(std::string_view key, std::string_view want, const bj::value& v) {
  return invalid_argument("field '" + std::string(key) + "' must be " + std::string(want) +
                          ", got " + std::string(kind_name(v)));
}
}  // namespace

Result<std::optional<int64_t>> get_int(const bj::object& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->value().is_null()) return std::optional<int64_t>();
  const bj::value& v = it->value();
  if (v.is_int64()) return std::optional<int64_t>(v.get_int64());
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return std::optional<int64_t>(static_cast<int64_t>(v.get_uint64()));
  }
  if (v.is_double()) {  // 1e3 or 4096.0 written by some tools
    double d = v.get_double();
    // Range first: casting an out-of-range double to int64 is undefined behaviour.
    if (d > -9.2e18 && d < 9.2e18 && d == static_cast<double>(static_cast<int64_t>(d))) {
      return std::optional<int64_t>(static_cast<int64_t>(d));
    }
  }
  return wrong_type(key, "an integer", v);
}

Result<std::optional<double>> get_double(const bj::object& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->value().is_null()) return std::optional<double>();
  const bj::value& v = it->value();
  if (v.is_double()) return std::optional<double>(v.get_double());
  if (v.is_int64()) return std::optional<double>(static_cast<double>(v.get_int64()));
  if (v.is_uint64()) return std::optional<double>(static_cast<double>(v.get_uint64()));
  return wrong_type(key, "a number", v);
}

Result<std::optional<bool>> get_bool(const bj::object& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->value().is_null()) return std::optional<bool>();
  if (!it->value().is_bool()) return wrong_type(key, "a bool", it->value());
  return std::optional<bool>(it->value().get_bool());
}

Result<std::optional<std::string>> get_string(const bj::object& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->value().is_null()) return std::optional<std::string>();
  if (!it->value().is_string()) return wrong_type(key, "a string", it->value());
  return std::optional<std::string>(std::string(it->value().get_string()));
}

}  // namespace kite::json
