#include "frontend/jinja/json_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "frontend/jinja/unicode.h"

namespace kite::jinja {

Value from_json(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null:
      return Value::none();
    case boost::json::kind::bool_:
      return Value(v.get_bool());
    case boost::json::kind::int64:
      return Value(static_cast<int64_t>(v.get_int64()));
    case boost::json::kind::uint64:
      if (v.get_uint64() > static_cast<uint64_t>(INT64_MAX)) {
        fail(ErrorKind::kUnsupported,
             "integer " + std::to_string(v.get_uint64()) + " does not fit in 64 bits");
      }
      return Value(static_cast<int64_t>(v.get_uint64()));
    case boost::json::kind::double_:
      return Value(v.get_double());
    case boost::json::kind::string:
      return Value(std::string(v.get_string()));
    case boost::json::kind::array: {
      std::vector<Value> items;
      items.reserve(v.get_array().size());
      for (const auto& item : v.get_array()) items.push_back(from_json(item));
      return Value::list(std::move(items));
    }
    case boost::json::kind::object: {
      DictData d;
      for (const auto& kv : v.get_object()) {
        d.set(Value(std::string(kv.key())), from_json(kv.value()));
      }
      return Value::dict(std::move(d));
    }
  }
  return Value::none();
}

namespace {

void dump_string(std::string_view s, bool ensure_ascii, std::string* out) {
  out->push_back('"');
  size_t pos = 0;
  char buf[16];
  while (pos < s.size()) {
    const size_t start = pos;
    const char32_t c = unicode::next_code_point(s, &pos);
    switch (c) {
      case '"':
        *out += "\\\"";
        continue;
      case '\\':
        *out += "\\\\";
        continue;
      case '\n':
        *out += "\\n";
        continue;
      case '\r':
        *out += "\\r";
        continue;
      case '\t':
        *out += "\\t";
        continue;
      case '\b':
        *out += "\\b";
        continue;
      case '\f':
        *out += "\\f";
        continue;
      default:
        break;
    }
    if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
      if (c > 0xFFFF) {
        const char32_t v = c - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                      static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      }
      *out += buf;
      continue;
    }
    out->append(s.substr(start, pos - start));
  }
  out->push_back('"');
}

std::string float_json(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return format_float_repr(d);
}

[[noreturn]] void not_serializable(const Value& v) {
  type_error("Object of type " + type_name(v) + " is not JSON serializable");
}

class Dumper {
 public:
  Dumper(const JsonDumpOptions& o, std::string* out) : o_(o), out_(out) {}

  void dump(const Value& v, int level) {
    if (level > static_cast<int>(kMaxNesting)) fail(ErrorKind::kLimit, "value nested too deeply");
    if (out_->size() > kMaxBuiltStringBytes) {
      fail(ErrorKind::kLimit,
           "tojson output exceeds " + std::to_string(kMaxBuiltStringBytes) + " bytes");
    }
    switch (v.kind()) {
      case Value::Kind::kNone:
        *out_ += "null";
        return;
      case Value::Kind::kBool:
        *out_ += v.as_bool() ? "true" : "false";
        return;
      case Value::Kind::kInt:
        *out_ += std::to_string(v.as_int());
        return;
      case Value::Kind::kFloat:
        *out_ += float_json(v.as_float());
        return;
      case Value::Kind::kString:
        dump_string(v.as_string(), o_.ensure_ascii, out_);
        return;
      case Value::Kind::kList: {
        const ListTag tag = v.list_tag();
        if (tag != ListTag::kList && tag != ListTag::kTuple && tag != ListTag::kGroupTuple) {
          not_serializable(v);
        }
        const auto& items = v.as_list().items;
        if (items.empty()) {
          *out_ += "[]";
          return;
        }
        *out_ += "[";
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) *out_ += o_.item_separator;
          newline(level + 1);
          dump(items[i], level + 1);
        }
        newline(level);
        *out_ += "]";
        return;
      }
      case Value::Kind::kDict: {
        const auto& entries = v.as_dict().entries();
        if (entries.empty()) {
          *out_ += "{}";
          return;
        }
        std::vector<size_t> order(entries.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        if (o_.sort_keys) {
          std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            return py_compare(entries[a].first, entries[b].first) == -1;
          });
        }
        *out_ += "{";
        bool first = true;
        for (size_t i : order) {
          if (!first) *out_ += o_.item_separator;
          first = false;
          newline(level + 1);
          dump_key(entries[i].first);
          *out_ += o_.key_separator;
          dump(entries[i].second, level + 1);
        }
        newline(level);
        *out_ += "}";
        return;
      }
      default:
        not_serializable(v);
    }
  }

 private:
  void newline(int level) {
    if (!o_.indent) return;
    out_->push_back('\n');
    for (int i = 0; i < level; ++i) *out_ += *o_.indent;
  }

  void dump_key(const Value& k) {
    switch (k.kind()) {
      case Value::Kind::kString:
        dump_string(k.as_string(), o_.ensure_ascii, out_);
        return;
      case Value::Kind::kNone:
        *out_ += "\"null\"";
        return;
      case Value::Kind::kBool:
        *out_ += k.as_bool() ? "\"true\"" : "\"false\"";
        return;
      case Value::Kind::kInt:
        out_->append("\"").append(std::to_string(k.as_int())).append("\"");
        return;
      case Value::Kind::kFloat:
        out_->append("\"").append(float_json(k.as_float())).append("\"");
        return;
      default:
        type_error("keys must be str, int, float, bool or None, not " + type_name(k));
    }
  }

  const JsonDumpOptions& o_;
  std::string* out_;
};

}  // namespace

std::string to_json(const Value& v, const JsonDumpOptions& options) {
  std::string out;
  Dumper(options, &out).dump(v, 0);
  return out;
}

}  // namespace kite::jinja
