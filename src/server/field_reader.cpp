#include "server/field_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/json_util.h"

namespace kite::server {

namespace bj = boost::json;

std::optional<int64_t> as_integer(const bj::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {
    if (v.get_uint64() > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(v.get_uint64());
  }
  if (v.is_double()) {
    double d = v.get_double();
    // 2^63 is exactly representable; anything at or past it does not fit.
    if (!std::isfinite(d) || d != std::trunc(d) || d >= 9223372036854775808.0 ||
        d < -9223372036854775808.0) {
      return std::nullopt;
    }
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

std::string_view json_kind_name(const bj::value& v) { return json::kind_name(v, "boolean"); }

void FieldReader::fail(ApiError e) {
  if (!error_) error_ = std::move(e);
}

std::string FieldReader::path(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return fmt::format("{}.{}", path_, key);
}

const bj::value* FieldReader::find(std::string_view key) const {
  auto it = obj_.find(key);
  if (it == obj_.end() || it->value().is_null()) return nullptr;
  return &it->value();
}

std::string format_number(double x) {
  if (x == std::trunc(x) && std::fabs(x) < 1e15) return std::to_string(static_cast<int64_t>(x));
  return fmt::format("{}", x);  // shortest round trip: "1.5", "1e-07" (not Boost.JSON's "1.5E0")
}

namespace {

ApiError wrong_type(const std::string& field, std::string_view want, const bj::value& v) {
  return invalid_type(field,
                      fmt::format("'{}' must be {}, got {}", field, want, json_kind_name(v)));
}

}  // namespace

std::optional<int64_t> FieldReader::integer(std::string_view key, int64_t lo, int64_t hi) {
  const bj::value* v = find(key);
  if (!v) return std::nullopt;
  std::optional<int64_t> x = as_integer(*v);
  if (!x) {
    fail(wrong_type(path(key), "an integer", *v));
    return std::nullopt;
  }
  if (*x < lo || *x > hi) {
    std::string range;
    if (lo != INT64_MIN && hi != INT64_MAX) {
      range = fmt::format("between {} and {}", lo, hi);
    } else if (lo != INT64_MIN) {
      range = fmt::format(">= {}", lo);
    } else {
      range = fmt::format("<= {}", hi);
    }
    fail(invalid_value(path(key), fmt::format("'{}' must be {}, got {}", path(key), range, *x)));
    return std::nullopt;
  }
  return x;
}

std::optional<double> FieldReader::number(std::string_view key, double lo, double hi) {
  const bj::value* v = find(key);
  if (!v) return std::nullopt;
  double x = 0;
  if (v->is_double()) {
    x = v->get_double();
  } else if (v->is_int64()) {
    x = static_cast<double>(v->get_int64());
  } else if (v->is_uint64()) {
    x = static_cast<double>(v->get_uint64());
  } else {
    fail(wrong_type(path(key), "a number", *v));
    return std::nullopt;
  }
  if (!std::isfinite(x) || x < lo || x > hi) {
    std::string range;
    if (std::isfinite(lo) && std::isfinite(hi)) {
      range = fmt::format("between {} and {}", format_number(lo), format_number(hi));
    } else if (std::isfinite(lo)) {
      range = fmt::format(">= {}", format_number(lo));
    } else if (std::isfinite(hi)) {
      range = fmt::format("<= {}", format_number(hi));
    } else {
      range = "finite";
    }
    fail(invalid_value(path(key),
                       fmt::format("'{}' must be {}, got {}", path(key), range, format_number(x))));
    return std::nullopt;
  }
  return x;
}

std::optional<bool> FieldReader::boolean(std::string_view key) {
  const bj::value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_bool()) {
    fail(wrong_type(path(key), "a boolean", *v));
    return std::nullopt;
  }
  return v->get_bool();
}

std::optional<std::string> FieldReader::string(std::string_view key) {
  const bj::value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    fail(wrong_type(path(key), "a string", *v));
    return std::nullopt;
  }
  return std::string(v->get_string());
}

const bj::object* FieldReader::object(std::string_view key) {
  const bj::value* v = find(key);
  if (!v) return nullptr;
  if (!v->is_object()) {
    fail(wrong_type(path(key), "an object", *v));
    return nullptr;
  }
  return &v->get_object();
}

const bj::array* FieldReader::array(std::string_view key) {
  const bj::value* v = find(key);
  if (!v) return nullptr;
  if (!v->is_array()) {
    fail(wrong_type(path(key), "an array", *v));
    return nullptr;
  }
  return &v->get_array();
}

std::optional<uint64_t> FieldReader::seed(std::string_view key) {
  const bj::value* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_uint64()) return v->get_uint64();
  std::optional<int64_t> x = as_integer(*v);
  if (!x) {
    fail(wrong_type(path(key), "an integer", *v));
    return std::nullopt;
  }
  return static_cast<uint64_t>(*x);
}

void FieldReader::reject_unknown(std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : obj_) {
    std::string_view key = kv.key();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      fail(unknown_field(path(key)));
      return;
    }
  }
}

}  // namespace kite::server
