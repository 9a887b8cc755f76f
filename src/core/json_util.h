// Helpers for reading JSON documents we do not control (config.json, tokenizer.json, requests)
// with Boost.JSON: every malformed or mistyped field becomes a Status naming the field.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kite/status.h"

namespace kite::json {

// Parses text; `what` names the document in the error ("config.json").
Result<boost::json::value> parse(std::string_view text, std::string_view what);
// Reads and parses a file.
Result<boost::json::value> parse_file(const std::string& path);

// Typed optional fields of an object. Absent or null -> nullopt; present with the wrong type ->
// kInvalidArgument naming `key`.
Result<std::optional<int64_t>> get_int(const boost::json::object& obj, std::string_view key);
Result<std::optional<double>> get_double(const boost::json::object& obj, std::string_view key);
Result<std::optional<bool>> get_bool(const boost::json::object& obj, std::string_view key);
Result<std::optional<std::string>> get_string(const boost::json::object& obj, std::string_view key);

// "object", "array", "string", "int64", "double", "bool", "null".
// "object", "array", "string", "integer", "number", "null", and `bool_name` for booleans
// ("bool" in kite's file-format errors, "boolean" in the OpenAI-style API errors).
std::string_view kind_name(const boost::json::value& v, std::string_view bool_name = "bool");

}  // namespace kite::json
