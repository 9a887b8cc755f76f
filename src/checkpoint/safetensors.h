// SafetensorsFile: a bounds-checked reader of the safetensors format over a memory map.
//
// Layout: u64 little-endian header length N, then N bytes of JSON
//   {"name": {"dtype": "BF16", "shape": [4096, 4096], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}
// then the data section; offsets are relative to its start (byte 8 + N).
//
// Every header field is checked before use: a bad file is a Status (kDataLoss for lengths or
// offsets that run past the end, overlap or disagree with the shape; kInvalidArgument for a
// malformed header) and never a crash. Element types the format defines but kite cannot compute
// with (F64, BOOL, ...) parse, so files that carry a few of them still load.
// Tensor data stays in the mapping (no host copy).
#pragma once

#include <cstdint>
#include <map>
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

struct SafetensorsTensor {
  std::string name;
  std::string dtype_name;      // as written: "F32", "BF16", "F64", ...
  std::optional<DType> dtype;  // nullopt for element types kite has no DType for (F64, BOOL, ...)
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // bytes from the start of the data section
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Maps and parses `path`.
  static Result<SafetensorsFile> open(const std::string& path);
  // Parses bytes the caller keeps alive for the SafetensorsFile's lifetime (tests, fuzzing).
  static Result<SafetensorsFile> parse_bytes(const uint8_t* data, size_t size, std::string name);

  const std::string& name() const { return name_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;
  // "__metadata__" (string to string).
  const std::map<std::string, std::string, std::less<>>& metadata() const { return metadata_; }
  // A CPU view of the tensor's bytes in the mapping. kUnimplemented for dtypes without a
  // DType, kUnimplemented for more than 4 dimensions.
  Result<TensorView> view(const SafetensorsTensor& t) const;
  const std::shared_ptr<MappedFile>& file() const { return file_; }

 private:
  SafetensorsFile() = default;
  Status parse_header(const uint8_t* data, size_t size);

  std::shared_ptr<MappedFile> file_;
  std::string name_;
  const uint8_t* data_section_ = nullptr;
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string, std::less<>> metadata_;
};

// Element size in bytes of a safetensors dtype name, 0 for names the format does not define.
int safetensors_dtype_size(std::string_view name);

}  // namespace kite
