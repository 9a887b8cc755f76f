// GgufFile: a bounds-checked parser of GGUF v2/v3 files (llama.cpp's model format) over a
// read-only memory map.
//
// Layout (all little-endian):
//   "GGUF" u32 version u64 tensor_count u64 metadata_kv_count
//   metadata_kv_count x { string key, u32 value_type, value }
//   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
//   padding to `general.alignment` (default 32), then the tensor data section.
// A string is u64 length + bytes (no terminator); an array is u32 element type + u64 count +
// elements (arrays may nest). Tensor offsets are relative to the data section.
//
// Every length, count and offset read from the file is checked before use: a truncated or
// corrupt file is a Status (kDataLoss for structure that runs past the end or overlaps, kInvalid
// Argument for a file that is not GGUF at all, kUnimplemented for versions we do not read) and
// never a crash or an allocation the file cannot back.
//
// Metadata strings and tensor data point into the mapping; they live as long as the GgufFile.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "core/tensor.h"
#include "kite/status.h"

namespace kite {

// Metadata value types, numbered as in the file.
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
// "UINT32", "STRING", "ARRAY", ... ("?" for numbers outside the enum).
std::string_view gguf_type_name(GgufType type);

// One metadata value. Scalars hold their value in the field their type names; strings point
// into the mapping; numeric arrays keep the raw little-endian elements (decoded on access);
// arrays of strings or arrays hold their elements in `items`.
struct GgufValue {
  GgufType type = GgufType::kUint8;
  uint64_t u64 = 0;      // kUint8/16/32/64, kBool (0/1)
  int64_t i64 = 0;       // kInt8/16/32/64
  double f64 = 0;        // kFloat32/64
  std::string_view str;  // kString

  // kArray only.
  GgufType elem_type = GgufType::kUint8;
  uint64_t count = 0;
  const uint8_t* raw = nullptr;  // numeric elements, count * element size bytes (unaligned)
  std::vector<GgufValue> items;  // string or array elements, [count]

  bool is_integer() const;
  bool is_float() const { return type == GgufType::kFloat32 || type == GgufType::kFloat64; }
  bool is_numeric_array() const;
};

// ggml tensor types that GGUF files use, numbered as in ggml.h.
struct GgmlTypeInfo {
  uint32_t id;
  std::string_view name;  // "F32", "Q4_K", ...
  int block_elems;        // values per block
  int block_bytes;        // bytes per block
};
// nullptr for a number ggml does not define.
const GgmlTypeInfo* ggml_type_info(uint32_t ggml_type);
// The kite dtype of a ggml type, nullopt for those kite does not support (Q5_0, IQ*, ...).
std::optional<DType> ggml_type_to_dtype(uint32_t ggml_type);

struct GgufTensorInfo {
  std::string_view name;  // points into the file
  int n_dims = 0;
  std::array<int64_t, kMaxTensorDims> ne{};  // ggml order: ne[0] is the fastest-moving dimension
  uint32_t ggml_type = 0;
  uint64_t offset = 0;  // bytes from the start of the data section
  uint64_t nbytes = 0;
  int64_t numel = 0;

  // "[ne[n-1], ..., ne[0]]": row-major shape as kite and PyTorch write it.
  std::vector<int64_t> shape() const;
};

class GgufFile {
 public:
  // Maps and parses `path`. Errors: those of MappedFile::open, plus the parse errors below.
  static Result<GgufFile> open(const std::string& path);
  // Parses a mapped file (kept alive by the GgufFile).
  static Result<GgufFile> parse(std::shared_ptr<MappedFile> file);
  // Parses bytes the caller keeps alive for the GgufFile's lifetime (tests, fuzzing).
  static Result<GgufFile> parse_bytes(const uint8_t* data, size_t size, std::string name);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // bytes from the start of the file
  const std::string& name() const { return name_; }      // the path, for messages

  // ---- metadata ----------------------------------------------------------------------------
  // In file order.
  const std::vector<std::pair<std::string_view, GgufValue>>& metadata() const { return kv_; }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const GgufValue* find(std::string_view key) const;

  // Typed accessors: kNotFound when the key is absent, kInvalidArgument naming the key when its
  // type does not fit (integers of any width are accepted when the value fits the result).
  Result<std::string_view> get_string(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key) const;
  Result<uint32_t> get_u32(std::string_view key) const;
  Result<uint64_t> get_u64(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;  // FLOAT32 or FLOAT64
  Result<float> get_f32(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::vector<std::string_view>> get_array_strings(std::string_view key) const;
  Result<std::vector<float>> get_array_f32(std::string_view key) const;    // float arrays
  Result<std::vector<int32_t>> get_array_i32(std::string_view key) const;  // integer arrays
  Result<std::vector<int64_t>> get_array_i64(std::string_view key) const;  // integer arrays
  // The element count of an array (kInvalidArgument if not an array).
  Result<uint64_t> get_array_size(std::string_view key) const;

  // ---- tensors -----------------------------------------------------------------------------
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // The tensor's bytes in the mapping (bounds were checked at parse time).
  const uint8_t* tensor_data(const GgufTensorInfo& info) const;
  // A CPU view with the row-major shape. kUnimplemented for ggml types kite has no DType for.
  Result<TensorView> tensor_view(const GgufTensorInfo& info) const;

 private:
  GgufFile() = default;

  std::shared_ptr<MappedFile> file_;  // null when parsed from caller-owned bytes
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string_view, GgufValue>> kv_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;

  friend class GgufParser;
};

}  // namespace kite
