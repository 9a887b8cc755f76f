// JsonObj: typed, path-aware access to one object of tokenizer.json / tokenizer_config.json.
// Every missing or mistyped field becomes kInvalidArgument naming its full path, e.g.
// "pre_tokenizer.pretokenizers[1].behavior must be a string, got integer".
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "kite/status.h"

namespace kite::tokjson {

std::string_view kind_name(const boost::json::value& v);

class JsonObj {
 public:
  // kInvalidArgument when v is not an object.
  static Result<JsonObj> of(const boost::json::value& v, std::string path);

  const std::string& path() const { return path_; }
  std::string child_path(std::string_view key) const;
  Status error(std::string_view what) const;  // "<path>: <what>"

  // The field, or nullptr when absent or null.
  const boost::json::value* get(std::string_view key) const;
  bool has(std::string_view key) const { return get(key) != nullptr; }

  Result<std::string> str(std::string_view key) const;  // required
  Result<std::string> str_or(std::string_view key, std::string fallback) const;
  Result<bool> bool_or(std::string_view key, bool fallback) const;
  Result<int64_t> int_or(std::string_view key, int64_t fallback) const;
  Result<int64_t> int_required(std::string_view key) const;
  Result<double> number_or(std::string_view key, double fallback) const;
  // A string that must hold exactly one Unicode character; returns its UTF-8 bytes.
  Result<std::string> single_char(std::string_view key, std::string fallback) const;
  // The field as an object / array (required).
  Result<JsonObj> obj(std::string_view key) const;
  Result<const boost::json::array*> arr(std::string_view key) const;

 private:
  JsonObj(const boost::json::object* o, std::string path) : obj_(o), path_(std::move(path)) {}
  Status wrong_type(std::string_view key, std::string_view want, const boost::json::value& v) const;
  const boost::json::object* obj_;
  std::string path_;
};

}  // namespace kite::tokjson
