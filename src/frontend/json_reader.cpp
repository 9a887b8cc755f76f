#include "frontend/json_reader.h"

#include "core/json_util.h"
#include "frontend/utf8.h"

namespace kite::tokjson {

namespace bj = boost::json;

std::string_view kind_name(const bj::value& v) { return json::kind_name(v); }

Result<JsonObj> JsonObj::of(const bj::value& v, std::string path) {
  if (!v.is_object()) {
    return invalid_argument(path + " must be an object, got " + std::string(kind_name(v)));
  }
  return JsonObj(&v.get_object(), std::move(path));
}

std::string JsonObj::child_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

Status JsonObj::error(std::string_view what) const {
  return invalid_argument((path_.empty() ? std::string("tokenizer") : path_) + ": " +
                          std::string(what));
}

Status JsonObj::wrong_type(std::string_view key, std::string_view want, const bj::value& v) const {
  return invalid_argument(child_path(key) + " must be " + std::string(want) + ", got " +
                          std::string(kind_name(v)));
}

const bj::value* JsonObj::get(std::string_view key) const {
  auto it = obj_->find(key);
  if (it == obj_->end() || it->value().is_null()) return nullptr;
  return &it->value();
}

Result<std::string> JsonObj::str(std::string_view key) const {
  const bj::value* v = get(key);
  if (v == nullptr) return invalid_argument(child_path(key) + " is missing");
  if (!v->is_string()) return wrong_type(key, "a string", *v);
  return std::string(v->get_string());
}

Result<std::string> JsonObj::str_or(std::string_view key, std::string fallback) const {
  const bj::value* v = get(key);
  if (v == nullptr) return fallback;
  if (!v->is_string()) return wrong_type(key, "a string", *v);
  return std::string(v->get_string());
}

Result<bool> JsonObj::bool_or(std::string_view key, bool fallback) const {
  const bj::value* v = get(key);
  if (v == nullptr) return fallback;
  if (!v->is_bool()) return wrong_type(key, "a bool", *v);
  return v->get_bool();
}

Result<int64_t> JsonObj::int_or(std::string_view key, int64_t fallback) const {
  const bj::value* v = get(key);
  if (v == nullptr) return fallback;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v->get_uint64());
  }
  return wrong_type(key, "an integer", *v);
}

Result<int64_t> JsonObj::int_required(std::string_view key) const {
  if (get(key) == nullptr) return invalid_argument(child_path(key) + " is missing");
  return int_or(key, 0);
}

Result<double> JsonObj::number_or(std::string_view key, double fallback) const {
  const bj::value* v = get(key);
  if (v == nullptr) return fallback;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return wrong_type(key, "a number", *v);
}

Result<std::string> JsonObj::single_char(std::string_view key, std::string fallback) const {
  KITE_ASSIGN_OR_RETURN(std::string s, str_or(key, std::move(fallback)));
  if (s.empty() || !utf8::is_valid(s) || utf8::count_chars(s) != 1) {
    return invalid_argument(child_path(key) + " must be a single character, got '" +
                            utf8::lossy(s) + "'");
  }
  return s;
}

Result<JsonObj> JsonObj::obj(std::string_view key) const {
  const bj::value* v = get(key);
  if (v == nullptr) return invalid_argument(child_path(key) + " is missing");
  return of(*v, child_path(key));
}

Result<const bj::array*> JsonObj::arr(std::string_view key) const {
  const bj::value* v = get(key);
  if (v == nullptr) return invalid_argument(child_path(key) + " is missing");
  if (!v->is_array()) return wrong_type(key, "an array", *v);
  return &v->get_array();
}

}  // namespace kite::tokjson
