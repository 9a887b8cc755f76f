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

// Reads a whole (small) file into a string. kNotFound when absent.
Result<std::string> read_file(const std::string& path);

}  // namespace kite
