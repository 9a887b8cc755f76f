// MappedFile: a read-only memory map of a whole file (weights are read through it without an
// extra host copy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "kite/status.h"

namespace kite {

class MappedFile {
 public:
  // Errors: kNotFound (no such file), kInvalidArgument (a directory), kDataLoss (cannot map).
  static Result<std::shared_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Whole-file reads are for small files (configs, tokenizers, templates): each caller states
// how large its kind of file may be, and a larger one is refused from its size on disk, before
// anything is allocated (a 1 GB tokenizer.json used to load for minutes at 14 GB).
inline constexpr size_t kMaxConfigFileBytes = size_t{16} << 20;      // config.json & co.
inline constexpr size_t kMaxTokenizerFileBytes = size_t{128} << 20;  // tokenizer.json
inline constexpr size_t kMaxTemplateFileBytes = size_t{4} << 20;     // chat templates
inline constexpr size_t kMaxSmallFileBytes = size_t{64} << 20;       // the default

// Reads a whole file into a string. kNotFound when absent; kOutOfRange when it is larger than
// max_bytes (the message names the file, its size and the limit).
Result<std::string> read_file(const std::string& path, size_t max_bytes = kMaxSmallFileBytes);

}  // namespace kite
