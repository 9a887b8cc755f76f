#include "checkpoint/safetensors.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cstring>
#include <limits>

#include "core/json_util.h"

namespace kite {
namespace {

namespace bj = boost::json;

// The safetensors reference implementation refuses headers above 100 MB.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeEntry {
  std::string_view name;
  int size;
  std::optional<DType> dtype;
};

const std::array<DtypeEntry, 17> kDtypes = {{
    {"F32", 4, DType::kF32},
    {"F16", 2, DType::kF16},
    {"BF16", 2, DType::kBF16},
    {"F8_E4M3", 1, DType::kF8E4M3},
    {"I8", 1, DType::kI8},
    {"U8", 1, DType::kU8},
    {"I32", 4, DType::kI32},
    {"I64", 8, DType::kI64},
    {"F64", 8, std::nullopt},
    {"BOOL", 1, std::nullopt},
    {"I16", 2, std::nullopt},
    {"U16", 2, std::nullopt},
    {"U32", 4, std::nullopt},
    {"U64", 8, std::nullopt},
    {"F8_E5M2", 1, std::nullopt},
    {"F8_E8M0", 1, std::nullopt},
    {"C64", 8, std::nullopt},
}};

const DtypeEntry* find_dtype(std::string_view name) {
  for (const DtypeEntry& e : kDtypes) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

Result<uint64_t> to_u64(const bj::value& v, std::string_view what) {
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64() && v.get_int64() >= 0) return static_cast<uint64_t>(v.get_int64());
  return invalid_argument(
      fmt::format("{} must be a non-negative integer, got {}", what, json::kind_name(v)));
}

Result<SafetensorsTensor> parse_entry(std::string_view name, const bj::value& v) {
  if (!v.is_object()) {
    return invalid_argument(fmt::format("entry must be an object, got {}", json::kind_name(v)));
  }
  const bj::object& o = v.get_object();
  SafetensorsTensor t;
  t.name = std::string(name);
  KITE_ASSIGN_OR_RETURN(std::optional<std::string> dtype, json::get_string(o, "dtype"));
  if (!dtype) return invalid_argument("missing field 'dtype'");
  const DtypeEntry* entry = find_dtype(*dtype);
  if (entry == nullptr) return invalid_argument(fmt::format("unknown dtype '{}'", *dtype));
  t.dtype_name = *dtype;
  t.dtype = entry->dtype;

  auto shape_it = o.find("shape");
  if (shape_it == o.end() || !shape_it->value().is_array()) {
    return invalid_argument("field 'shape' must be a list of integers");
  }
  // numel * element size must fit in 64 bits; each dimension fits in int64.
  uint64_t numel = 1;
  for (const bj::value& d : shape_it->value().get_array()) {
    KITE_ASSIGN_OR_RETURN(uint64_t dim, to_u64(d, "a dimension"));
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / 8 / dim)) {
      return data_loss("shape is too large");
    }
    numel *= dim;
    t.shape.push_back(static_cast<int64_t>(dim));
  }

  auto off_it = o.find("data_offsets");
  if (off_it == o.end() || !off_it->value().is_array() || off_it->value().get_array().size() != 2) {
    return invalid_argument("field 'data_offsets' must be a list [begin, end]");
  }
  KITE_ASSIGN_OR_RETURN(t.begin, to_u64(off_it->value().get_array()[0], "data_offsets[0]"));
  KITE_ASSIGN_OR_RETURN(t.end, to_u64(off_it->value().get_array()[1], "data_offsets[1]"));
  if (t.end < t.begin) {
    return data_loss(fmt::format("data_offsets [{}, {}] end before they begin", t.begin, t.end));
  }
  const uint64_t want = numel * static_cast<uint64_t>(entry->size);
  if (t.end - t.begin != want) {
    return data_loss(
        fmt::format("data_offsets [{}, {}] hold {} bytes but {} of shape [{}] needs {}", t.begin,
                    t.end, t.end - t.begin, *dtype, fmt::join(t.shape, ", "), want));
  }
  return t;
}

}  // namespace

int safetensors_dtype_size(std::string_view name) {
  const DtypeEntry* e = find_dtype(name);
  return e ? e->size : 0;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  KITE_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  SafetensorsFile f;
  f.name_ = path;
  Status s = f.parse_header(file->data(), file->size());
  if (!s.ok()) return s.with_context(path);
  f.file_ = std::move(file);
  return f;
}

Result<SafetensorsFile> SafetensorsFile::parse_bytes(const uint8_t* data, size_t size,
                                                     std::string name) {
  SafetensorsFile f;
  f.name_ = std::move(name);
  Status s = f.parse_header(data, size);
  if (!s.ok()) return s.with_context(f.name_);
  return f;
}

Status SafetensorsFile::parse_header(const uint8_t* data, size_t size) {
  if (size < 8) {
    return data_loss(
        fmt::format("truncated: {} bytes, a safetensors file starts with an 8-byte "
                    "header length",
                    size));
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, data, 8);
  if (header_len > size - 8) {
    return data_loss(
        fmt::format("header length {} runs past the end of the file ({} bytes)", header_len, size));
  }
  if (header_len > kMaxHeaderBytes) {
    return data_loss(
        fmt::format("header length {} exceeds the {} byte limit", header_len, kMaxHeaderBytes));
  }
  const std::string_view header(reinterpret_cast<const char*>(data + 8), header_len);
  auto parsed = json::parse(header, "safetensors header");
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_object()) {
    return invalid_argument(
        fmt::format("safetensors header must be a JSON object, got {}", json::kind_name(*parsed)));
  }
  data_section_ = data + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  for (const auto& kv : parsed->get_object()) {
    const std::string_view key = kv.key();
    if (key == "__metadata__") {
      if (!kv.value().is_object()) {
        return invalid_argument("__metadata__ must be an object of strings");
      }
      for (const auto& m : kv.value().get_object()) {
        if (!m.value().is_string()) {
          return invalid_argument(fmt::format("__metadata__ value of '{}' must be a string, got {}",
                                              std::string_view(m.key()),
                                              json::kind_name(m.value())));
        }
        metadata_.emplace(std::string(m.key()), std::string(m.value().get_string()));
      }
      continue;
    }
    auto t = parse_entry(key, kv.value());
    if (!t.ok()) return t.status().with_context(fmt::format("tensor '{}'", key));
    if (t->end > data_size) {
      return data_loss(
          fmt::format("tensor '{}' (bytes [{}, {}) of the data section) runs past the "
                      "end of the file (data section has {} bytes)",
                      key, t->begin, t->end, data_size));
    }
    if (!index_.emplace(t->name, tensors_.size()).second) {
      return data_loss(fmt::format("duplicate tensor name '{}'", key));
    }
    tensors_.push_back(std::move(*t));
  }

  std::vector<const SafetensorsTensor*> order;
  order.reserve(tensors_.size());
  for (const SafetensorsTensor& t : tensors_) {
    if (t.end > t.begin) order.push_back(&t);  // empty tensors overlap nothing
  }
  std::sort(order.begin(), order.end(),
            [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < order.size(); ++i) {
    if (order[i - 1]->end > order[i]->begin) {
      return data_loss(fmt::format("tensors '{}' and '{}' overlap in the data section",
                                   order[i - 1]->name, order[i]->name));
    }
  }
  return ok_status();
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Result<TensorView> SafetensorsFile::view(const SafetensorsTensor& t) const {
  if (!t.dtype) {
    return unimplemented(
        fmt::format("tensor '{}' has dtype {}, which kite does not support", t.name, t.dtype_name));
  }
  if (t.shape.size() > static_cast<size_t>(kMaxTensorDims)) {
    return unimplemented(fmt::format("tensor '{}' has {} dimensions (at most {} supported)", t.name,
                                     t.shape.size(), kMaxTensorDims));
  }
  return TensorView::contiguous(const_cast<uint8_t*>(data_section_ + t.begin), *t.dtype,
                                t.shape.data(), static_cast<int>(t.shape.size()));
}

}  // namespace kite
