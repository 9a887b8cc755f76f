#include "checkpoint/gguf.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace kite {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;
constexpr int kMaxArrayDepth = 8;  // nested arrays deeper than this are rejected
constexpr int kGgmlMaxDims = 4;
// Arrays of strings or arrays become one GgufValue (about 100 bytes) per element at parse time,
// so their element counts are bounded before anything is reserved: per array and for the whole
// file. Real files stay far below (the largest vocabularies have ~262k tokens, ~1M merges).
constexpr uint64_t kMaxArrayItems = uint64_t{1} << 22;     // 4,194,304 elements in one array
constexpr uint64_t kMaxMetadataItems = uint64_t{1} << 23;  // 8,388,608 in all metadata

// ggml's type table (ggml.h): block sizes let us bound-check tensors of every type, including
// those kite cannot compute with.
constexpr std::array<GgmlTypeInfo, 34> kGgmlTypes = {{
    {0, "F32", 1, 4},         {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},
    {3, "Q4_1", 32, 20},      {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},
    {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},      {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66},
    {17, "IQ2_XS", 256, 74},  {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
    {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},  {22, "IQ2_S", 256, 82},
    {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},        {28, "F64", 1, 8},
    {29, "IQ1_M", 256, 56},   {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},    {40, "NVFP4", 64, 36},
    {41, "Q1_0", 128, 18},
}};

// Size in bytes of a numeric metadata element; 0 for strings and arrays; -1 for unknown types.
int scalar_size(uint32_t type) {
  switch (static_cast<GgufType>(type)) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
      return 8;
    case GgufType::kString:
    case GgufType::kArray:
      return 0;
  }
  return -1;
}

template <typename T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // x86-64 and aarch64 are little-endian, as GGUF is
  return v;
}

// Decodes one numeric scalar of `type` at p into a GgufValue.
void decode_scalar(GgufType type, const uint8_t* p, GgufValue* out) {
  out->type = type;
  switch (type) {
    case GgufType::kUint8:
      out->u64 = load_le<uint8_t>(p);
      break;
    case GgufType::kBool:
      out->u64 = load_le<uint8_t>(p) != 0;
      break;
    case GgufType::kUint16:
      out->u64 = load_le<uint16_t>(p);
      break;
    case GgufType::kUint32:
      out->u64 = load_le<uint32_t>(p);
      break;
    case GgufType::kUint64:
      out->u64 = load_le<uint64_t>(p);
      break;
    case GgufType::kInt8:
      out->i64 = load_le<int8_t>(p);
      break;
    case GgufType::kInt16:
      out->i64 = load_le<int16_t>(p);
      break;
    case GgufType::kInt32:
      out->i64 = load_le<int32_t>(p);
      break;
    case GgufType::kInt64:
      out->i64 = load_le<int64_t>(p);
      break;
    case GgufType::kFloat32:
      out->f64 = load_le<float>(p);
      break;
    case GgufType::kFloat64:
      out->f64 = load_le<double>(p);
      break;
    case GgufType::kString:
    case GgufType::kArray:
      break;
  }
}

bool is_unsigned(GgufType t) {
  return t == GgufType::kUint8 || t == GgufType::kUint16 || t == GgufType::kUint32 ||
         t == GgufType::kUint64;
}
bool is_signed(GgufType t) {
  return t == GgufType::kInt8 || t == GgufType::kInt16 || t == GgufType::kInt32 ||
         t == GgufType::kInt64;
}

}  // namespace

// ---- GgufParser: a cursor over the file with checked reads ---------------------------------
class GgufParser {
 public:
  GgufParser(const uint8_t* data, size_t size, GgufFile* out) : p_(data), size_(size), out_(out) {}

  Status parse() {
    uint32_t magic = 0;
    if (size_ < 4 || (magic = load_le<uint32_t>(p_)) != kGgufMagic) {
      return invalid_argument("not a GGUF file (no 'GGUF' magic at offset 0)");
    }
    pos_ = 4;
    uint32_t version = 0;
    KITE_RETURN_IF_ERROR(read(&version, "version"));
    if (version == 1) return unimplemented("GGUF v1 is not supported (v2 and v3 are)");
    if (version != 2 && version != 3) {
      if ((version & 0xffff) == 0 && (version >> 24) <= 3) {
        return unimplemented("big-endian GGUF files are not supported");
      }
      return unimplemented(
          fmt::format("unknown GGUF version {} (v2 and v3 are supported)", version));
    }
    out_->version_ = version;
    uint64_t n_tensors = 0;
    uint64_t n_kv = 0;
    KITE_RETURN_IF_ERROR(read(&n_tensors, "tensor count"));
    KITE_RETURN_IF_ERROR(read(&n_kv, "metadata count"));
    // Each key-value needs at least 12 bytes (key length + type); each tensor info at least 24.
    if (n_kv > remaining() / 12) {
      return data_loss(fmt::format("metadata count {} does not fit in the file", n_kv));
    }
    if (n_tensors > remaining() / 24) {
      return data_loss(fmt::format("tensor count {} does not fit in the file", n_tensors));
    }

    out_->kv_.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
      std::string_view key;
      KITE_RETURN_IF_ERROR(read_string(&key, "metadata key"));
      uint32_t type = 0;
      KITE_RETURN_IF_ERROR(read(&type, "metadata value type"));
      GgufValue value;
      KITE_RETURN_IF_ERROR(read_value(type, 0, &value).with_context(fmt::format("key '{}'", key)));
      if (!out_->kv_index_.emplace(key, out_->kv_.size()).second) {
        return data_loss(fmt::format("duplicate metadata key '{}'", key));
      }
      out_->kv_.emplace_back(key, std::move(value));
    }

    if (const GgufValue* a = out_->find("general.alignment")) {
      if (a->type != GgufType::kUint32) {
        return data_loss(
            fmt::format("general.alignment must be UINT32, got {}", gguf_type_name(a->type)));
      }
      if (a->u64 == 0 || (a->u64 & (a->u64 - 1)) != 0) {
        return data_loss(fmt::format("general.alignment {} is not a power of two", a->u64));
      }
      out_->alignment_ = a->u64;
    } else {
      out_->alignment_ = kDefaultAlignment;
    }

    out_->tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
      GgufTensorInfo info;
      KITE_RETURN_IF_ERROR(read_tensor_info(&info).with_context(fmt::format("tensor #{}", i)));
      if (!out_->tensor_index_.emplace(info.name, out_->tensors_.size()).second) {
        return data_loss(fmt::format("duplicate tensor name '{}'", info.name));
      }
      out_->tensors_.push_back(info);
    }

    // The data section starts at the next multiple of the alignment.
    const uint64_t align = out_->alignment_;
    const uint64_t data_offset = (pos_ + align - 1) / align * align;
    if (!out_->tensors_.empty() && data_offset > size_) {
      return data_loss(fmt::format("truncated: tensor data section starts at {}, file has {} bytes",
                                   data_offset, size_));
    }
    out_->data_offset_ = data_offset;
    const uint64_t data_size = data_offset <= size_ ? size_ - data_offset : 0;
    return check_tensor_ranges(data_size);
  }

 private:
  uint64_t remaining() const { return size_ - pos_; }

  Status truncated(uint64_t need, std::string_view what) const {
    return data_loss(fmt::format("truncated: {} needs {} bytes at offset {}, file has {} bytes",
                                 what, need, pos_, size_));
  }

  template <typename T>
  Status read(T* v, std::string_view what) {
    if (remaining() < sizeof(T)) return truncated(sizeof(T), what);
    *v = load_le<T>(p_ + pos_);
    pos_ += sizeof(T);
    return ok_status();
  }

  Status read_string(std::string_view* s, std::string_view what) {
    uint64_t len = 0;
    KITE_RETURN_IF_ERROR(read(&len, what));
    if (len > remaining()) {
      return data_loss(
          fmt::format("{} length {} at offset {} runs past the end of the file ({} "
                      "bytes)",
                      what, len, pos_ - 8, size_));
    }
    *s = std::string_view(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return ok_status();
  }

  Status read_value(uint32_t type, int depth, GgufValue* v) {
    const int size = scalar_size(type);
    if (size < 0) return data_loss(fmt::format("unknown metadata value type {}", type));
    v->type = static_cast<GgufType>(type);
    if (size > 0) {
      if (remaining() < static_cast<uint64_t>(size)) return truncated(size, "metadata value");
      decode_scalar(v->type, p_ + pos_, v);
      pos_ += size;
      return ok_status();
    }
    if (v->type == GgufType::kString) return read_string(&v->str, "string value");

    // Array.
    if (depth >= kMaxArrayDepth) {
      return data_loss(fmt::format("arrays nested deeper than {}", kMaxArrayDepth));
    }
    uint32_t elem_type = 0;
    KITE_RETURN_IF_ERROR(read(&elem_type, "array element type"));
    uint64_t count = 0;
    KITE_RETURN_IF_ERROR(read(&count, "array count"));
    const int elem_size = scalar_size(elem_type);
    if (elem_size < 0) return data_loss(fmt::format("unknown array element type {}", elem_type));
    v->elem_type = static_cast<GgufType>(elem_type);
    v->count = count;
    if (elem_size > 0) {
      if (count > remaining() / static_cast<uint64_t>(elem_size)) {
        return data_loss(fmt::format("array of {} {} at offset {} runs past the end of the file",
                                     count, gguf_type_name(v->elem_type), pos_));
      }
      v->raw = p_ + pos_;
      pos_ += count * static_cast<uint64_t>(elem_size);
      return ok_status();
    }
    // Strings need at least 8 bytes each, arrays 12: bound the count before reserving.
    const uint64_t min_elem = v->elem_type == GgufType::kString ? 8 : 12;
    if (count > remaining() / min_elem) {
      return data_loss(fmt::format("array of {} {} at offset {} runs past the end of the file",
                                   count, gguf_type_name(v->elem_type), pos_));
    }
    if (count > kMaxArrayItems) {
      return data_loss(fmt::format("array of {} {} at offset {} is over the limit of {} elements",
                                   count, gguf_type_name(v->elem_type), pos_, kMaxArrayItems));
    }
    if (count > kMaxMetadataItems - items_) {
      return data_loss(fmt::format(
          "array of {} {} at offset {} takes the metadata over the limit of {} array elements",
          count, gguf_type_name(v->elem_type), pos_, kMaxMetadataItems));
    }
    items_ += count;
    v->items.resize(count);
    for (uint64_t i = 0; i < count; ++i) {
      KITE_RETURN_IF_ERROR(read_value(elem_type, depth + 1, &v->items[i])
                               .with_context(fmt::format("element {}", i)));
    }
    return ok_status();
  }

  Status read_tensor_info(GgufTensorInfo* info) {
    KITE_RETURN_IF_ERROR(read_string(&info->name, "tensor name"));
    uint32_t n_dims = 0;
    KITE_RETURN_IF_ERROR(read(&n_dims, "tensor n_dims"));
    if (n_dims == 0 || n_dims > kGgmlMaxDims) {
      return data_loss(fmt::format("tensor '{}' has {} dimensions (1 to {} allowed)", info->name,
                                   n_dims, kGgmlMaxDims));
    }
    info->n_dims = static_cast<int>(n_dims);
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = 0;
      KITE_RETURN_IF_ERROR(read(&ne, "tensor dimension"));
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          static_cast<int64_t>(ne) > std::numeric_limits<int64_t>::max() / numel) {
        return data_loss(
            fmt::format("tensor '{}' has an invalid dimension {} (ne[{}])", info->name, ne, d));
      }
      info->ne[d] = static_cast<int64_t>(ne);
      numel *= static_cast<int64_t>(ne);
    }
    info->numel = numel;
    KITE_RETURN_IF_ERROR(read(&info->ggml_type, "tensor type"));
    const GgmlTypeInfo* t = ggml_type_info(info->ggml_type);
    if (t == nullptr) {
      return data_loss(
          fmt::format("tensor '{}' has unknown ggml type {}", info->name, info->ggml_type));
    }
    if (info->ne[0] % t->block_elems != 0) {
      return data_loss(
          fmt::format("tensor '{}': row of {} values is not a whole number of {} "
                      "blocks ({} values)",
                      info->name, info->ne[0], t->name, t->block_elems));
    }
    // numel <= 2^63 and block_bytes <= 292 with block_elems >= 1: check the product.
    const uint64_t blocks = static_cast<uint64_t>(numel / t->block_elems);
    if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(t->block_bytes)) {
      return data_loss(fmt::format("tensor '{}' is too large", info->name));
    }
    info->nbytes = blocks * static_cast<uint64_t>(t->block_bytes);
    KITE_RETURN_IF_ERROR(read(&info->offset, "tensor offset"));
    return ok_status();
  }

  Status check_tensor_ranges(uint64_t data_size) {
    const uint64_t align = out_->alignment_;
    std::vector<const GgufTensorInfo*> order;
    order.reserve(out_->tensors_.size());
    for (const GgufTensorInfo& t : out_->tensors_) {
      if (t.offset % align != 0) {
        return data_loss(fmt::format("tensor '{}' offset {} is not a multiple of the alignment {}",
                                     t.name, t.offset, align));
      }
      if (t.offset > data_size || t.nbytes > data_size - t.offset) {
        return data_loss(
            fmt::format("tensor '{}' (bytes [{}, {}) of the data section) runs past "
                        "the end of the file (data section has {} bytes)",
                        t.name, t.offset, t.offset + t.nbytes, data_size));
      }
      order.push_back(&t);
    }
    std::sort(order.begin(), order.end(), [](const GgufTensorInfo* a, const GgufTensorInfo* b) {
      return a->offset < b->offset;
    });
    for (size_t i = 1; i < order.size(); ++i) {
      const GgufTensorInfo* a = order[i - 1];
      const GgufTensorInfo* b = order[i];
      if (a->offset + a->nbytes > b->offset) {
        return data_loss(
            fmt::format("tensors '{}' and '{}' overlap in the data section", a->name, b->name));
      }
    }
    return ok_status();
  }

  const uint8_t* p_;
  size_t size_;
  uint64_t pos_ = 0;
  uint64_t items_ = 0;  // string and array elements read so far (kMaxMetadataItems)
  GgufFile* out_;
};

// ---- GgufValue / type tables ----------------------------------------------------------------
std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
      return "UINT8";
    case GgufType::kInt8:
      return "INT8";
    case GgufType::kUint16:
      return "UINT16";
    case GgufType::kInt16:
      return "INT16";
    case GgufType::kUint32:
      return "UINT32";
    case GgufType::kInt32:
      return "INT32";
    case GgufType::kFloat32:
      return "FLOAT32";
    case GgufType::kBool:
      return "BOOL";
    case GgufType::kString:
      return "STRING";
    case GgufType::kArray:
      return "ARRAY";
    case GgufType::kUint64:
      return "UINT64";
    case GgufType::kInt64:
      return "INT64";
    case GgufType::kFloat64:
      return "FLOAT64";
  }
  return "?";
}

bool GgufValue::is_integer() const { return is_unsigned(type) || is_signed(type); }

bool GgufValue::is_numeric_array() const {
  return type == GgufType::kArray && scalar_size(static_cast<uint32_t>(elem_type)) > 0;
}

const GgmlTypeInfo* ggml_type_info(uint32_t ggml_type) {
  for (const GgmlTypeInfo& t : kGgmlTypes) {
    if (t.id == ggml_type) return &t;
  }
  return nullptr;
}

std::optional<DType> ggml_type_to_dtype(uint32_t ggml_type) {
  switch (ggml_type) {
    case 0:
      return DType::kF32;
    case 1:
      return DType::kF16;
    case 2:
      return DType::kQ4_0;
    case 3:
      return DType::kQ4_1;
    case 8:
      return DType::kQ8_0;
    case 12:
      return DType::kQ4_K;
    case 13:
      return DType::kQ5_K;
    case 14:
      return DType::kQ6_K;
    case 24:
      return DType::kI8;
    case 26:
      return DType::kI32;
    case 27:
      return DType::kI64;
    case 30:
      return DType::kBF16;
    default:
      return std::nullopt;
  }
}

std::vector<int64_t> GgufTensorInfo::shape() const {
  std::vector<int64_t> s(static_cast<size_t>(n_dims));
  for (int d = 0; d < n_dims; ++d) s[static_cast<size_t>(n_dims - 1 - d)] = ne[d];
  return s;
}

// ---- GgufFile ---------------------------------------------------------------------------------
Result<GgufFile> GgufFile::open(const std::string& path) {
  KITE_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  return parse(std::move(file));
}

Result<GgufFile> GgufFile::parse(std::shared_ptr<MappedFile> file) {
  const uint8_t* data = file->data();
  const size_t size = file->size();
  std::string name = file->path();
  KITE_ASSIGN_OR_RETURN(GgufFile f, parse_bytes(data, size, std::move(name)));
  f.file_ = std::move(file);
  return f;
}

Result<GgufFile> GgufFile::parse_bytes(const uint8_t* data, size_t size, std::string name) {
  GgufFile f;
  f.base_ = data;
  f.size_ = size;
  f.name_ = std::move(name);
  GgufParser parser(data, size, &f);
  Status s = parser.parse();
  if (!s.ok()) return s.with_context(f.name_);
  return f;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {

Result<const GgufValue*> lookup(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return not_found(fmt::format("GGUF metadata key '{}' is missing", key));
  return v;
}

Status wrong_type(std::string_view key, std::string_view want, const GgufValue& v) {
  std::string got(gguf_type_name(v.type));
  if (v.type == GgufType::kArray) got += fmt::format(" of {}", gguf_type_name(v.elem_type));
  return invalid_argument(fmt::format("GGUF metadata key '{}' must be {}, got {}", key, want, got));
}

// The integer value of an integer scalar as int64 (nullopt for a u64 above INT64_MAX).
std::optional<int64_t> integer_value(const GgufValue& v) {
  if (is_signed(v.type)) return v.i64;
  if (v.u64 > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return static_cast<int64_t>(v.u64);
}

// Decodes element i of a numeric array as int64 (integers) or double (floats).
int64_t array_int(const GgufValue& a, uint64_t i) {
  GgufValue e;
  const int size = scalar_size(static_cast<uint32_t>(a.elem_type));
  decode_scalar(a.elem_type, a.raw + i * static_cast<uint64_t>(size), &e);
  if (is_signed(e.type)) return e.i64;
  return static_cast<int64_t>(e.u64);  // callers check u64 ranges
}

}  // namespace

Result<std::string_view> GgufFile::get_string(std::string_view key) const {
  KITE_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (v->type != GgufType::kString) return wrong_type(key, "a STRING", *v);
  return v->str;
}

Result<int64_t> GgufFile::get_int(std::string_view key) const {
  KITE_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (!v->is_integer()) return wrong_type(key, "an integer", *v);
  std::optional<int64_t> i = integer_value(*v);
  if (!i) return invalid_argument(fmt::format("GGUF metadata key '{}' is out of range", key));
  return *i;
}

Result<uint32_t> GgufFile::get_u32(std::string_view key) const {
  KITE_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (!v->is_integer()) return wrong_type(key, "an integer", *v);
  std::optional<int64_t> i = integer_value(*v);
  if (!i || *i < 0 || *i > std::numeric_limits<uint32_t>::max()) {
    return invalid_argument(fmt::format(
        "GGUF metadata key '{}' is out of the range of a 32-bit unsigned integer", key));
  }
  return static_cast<uint32_t>(*i);
}

Result<uint64_t> GgufFile::get_u64(std::string_view key) const {
  KITE_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (!v->is_integer()) return wrong_type(key, "an integer", *v);
  if (is_signed(v->type)) {
    if (v->i64 < 0) return invalid_argument(fmt::format("GGUF metadata key '{}' is negative", key));
    return static_cast<uint64_t>(v->i64);
  }
  return v->u64;
}

Result<double> GgufFile::get_float(std::string_view key) const {
  KITE_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (!v->is_float()) return wrong_type(key, "a FLOAT32 or FLOAT64", *v);
  return v->f64;
}

Result<float> GgufFile::get_f32(std::string_view key) const {
  KITE_ASSIGN_OR_RETURN(double d, get_float(key));
  return static_cast<float>(d);
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  KITE_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (v->type != GgufType::kBool) return wrong_type(key, "a BOOL", *v);
  return v->u64 != 0;
}

Result<uint64_t> GgufFile::get_array_size(std::string_view key) const {
  KITE_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (v->type != GgufType::kArray) return wrong_type(key, "an ARRAY", *v);
  return v->count;
}

Result<std::vector<std::string_view>> GgufFile::get_array_strings(std::string_view key) const {
  KITE_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (v->type != GgufType::kArray || v->elem_type != GgufType::kString) {
    return wrong_type(key, "an ARRAY of STRING", *v);
  }
  std::vector<std::string_view> out;
  out.reserve(v->items.size());
  for (const GgufValue& e : v->items) out.push_back(e.str);
  return out;
}

Result<std::vector<float>> GgufFile::get_array_f32(std::string_view key) const {
  KITE_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (v->type != GgufType::kArray ||
      (v->elem_type != GgufType::kFloat32 && v->elem_type != GgufType::kFloat64)) {
    return wrong_type(key, "an ARRAY of FLOAT32", *v);
  }
  std::vector<float> out(v->count);
  const int size = scalar_size(static_cast<uint32_t>(v->elem_type));
  for (uint64_t i = 0; i < v->count; ++i) {
    GgufValue e;
    decode_scalar(v->elem_type, v->raw + i * static_cast<uint64_t>(size), &e);
    out[i] = static_cast<float>(e.f64);
  }
  return out;
}

Result<std::vector<int64_t>> GgufFile::get_array_i64(std::string_view key) const {
  KITE_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (v->type != GgufType::kArray || !(is_signed(v->elem_type) || is_unsigned(v->elem_type))) {
    return wrong_type(key, "an ARRAY of integers", *v);
  }
  std::vector<int64_t> out(v->count);
  for (uint64_t i = 0; i < v->count; ++i) {
    if (v->elem_type == GgufType::kUint64) {
      const uint64_t u = load_le<uint64_t>(v->raw + i * 8);
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return invalid_argument(
            fmt::format("GGUF metadata key '{}': element {} is out of range", key, i));
      }
    }
    out[i] = array_int(*v, i);
  }
  return out;
}

Result<std::vector<int32_t>> GgufFile::get_array_i32(std::string_view key) const {
  KITE_ASSIGN_OR_RETURN(std::vector<int64_t> wide, get_array_i64(key));
  std::vector<int32_t> out(wide.size());
  for (size_t i = 0; i < wide.size(); ++i) {
    if (wide[i] < std::numeric_limits<int32_t>::min() ||
        wide[i] > std::numeric_limits<int32_t>::max()) {
      return invalid_argument(fmt::format(
          "GGUF metadata key '{}': element {} ({}) does not fit in 32 bits", key, i, wide[i]));
    }
    out[i] = static_cast<int32_t>(wide[i]);
  }
  return out;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& info) const {
  return base_ + data_offset_ + info.offset;
}

Result<TensorView> GgufFile::tensor_view(const GgufTensorInfo& info) const {
  std::optional<DType> dtype = ggml_type_to_dtype(info.ggml_type);
  if (!dtype) {
    const GgmlTypeInfo* t = ggml_type_info(info.ggml_type);
    return unimplemented(fmt::format(
        "tensor '{}' has ggml type {}, which kite does not support (supported: F32, F16, BF16, "
        "Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)",
        info.name, t ? t->name : std::string_view("?")));
  }
  const std::vector<int64_t> shape = info.shape();
  return TensorView::contiguous(const_cast<uint8_t*>(tensor_data(info)), *dtype, shape.data(),
                                info.n_dims);
}

}  // namespace kite
