// GgufBuilder: writes GGUF bytes for tests (well-formed by default; each field can be made
// wrong on purpose to exercise the parser's checks).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace kite::testing {

class GgufBuilder {
 public:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;  // ggml order
    uint32_t ggml_type = 0;
    uint64_t offset = 0;
    std::vector<uint8_t> data;  // bytes written at `offset` of the data section
  };

  uint32_t version = 3;
  uint64_t alignment = 32;
  // Overrides of the counts the header claims (for corrupt-file tests); -1 = the true count.
  int64_t claimed_tensor_count = -1;
  int64_t claimed_kv_count = -1;

  // Raw key-value records (key + type + value bytes), appended in order.
  void add_u32(std::string_view key, uint32_t v) { kv(key, 4, pod(v)); }
  void add_i32(std::string_view key, int32_t v) { kv(key, 5, pod(v)); }
  void add_f32(std::string_view key, float v) { kv(key, 6, pod(v)); }
  void add_bool(std::string_view key, bool v) { kv(key, 7, {static_cast<uint8_t>(v)}); }
  void add_u64(std::string_view key, uint64_t v) { kv(key, 10, pod(v)); }
  void add_string(std::string_view key, std::string_view v) { kv(key, 8, str(v)); }
  void add_raw(std::string_view key, uint32_t type, std::vector<uint8_t> value) {
    kv(key, type, std::move(value));
  }
  void add_array_strings(std::string_view key, const std::vector<std::string>& v) {
    std::vector<uint8_t> b = pod(uint32_t{8});
    append(&b, pod(static_cast<uint64_t>(v.size())));
    for (const auto& s : v) append(&b, str(s));
    kv(key, 9, std::move(b));
  }
  void add_array_f32(std::string_view key, const std::vector<float>& v) {
    std::vector<uint8_t> b = pod(uint32_t{6});
    append(&b, pod(static_cast<uint64_t>(v.size())));
    for (float f : v) append(&b, pod(f));
    kv(key, 9, std::move(b));
  }
  void add_array_i32(std::string_view key, const std::vector<int32_t>& v) {
    std::vector<uint8_t> b = pod(uint32_t{5});
    append(&b, pod(static_cast<uint64_t>(v.size())));
    for (int32_t i : v) append(&b, pod(i));
    kv(key, 9, std::move(b));
  }

  // Adds a tensor at the next aligned offset after the previous one.
  void add_tensor(std::string name, std::vector<uint64_t> ne, uint32_t ggml_type,
                  std::vector<uint8_t> data) {
    uint64_t offset = 0;
    if (!tensors.empty()) {
      const Tensor& last = tensors.back();
      offset = (last.offset + last.data.size() + alignment - 1) / alignment * alignment;
    }
    tensors.push_back({std::move(name), std::move(ne), ggml_type, offset, std::move(data)});
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> b;
    append(&b, {'G', 'G', 'U', 'F'});
    append(&b, pod(version));
    append(&b, pod(static_cast<uint64_t>(claimed_tensor_count >= 0 ? claimed_tensor_count
                                                                   : tensors.size())));
    append(&b, pod(static_cast<uint64_t>(claimed_kv_count >= 0 ? claimed_kv_count : num_kv_)));
    append(&b, kv_bytes_);
    for (const Tensor& t : tensors) {
      append(&b, str(t.name));
      append(&b, pod(static_cast<uint32_t>(t.ne.size())));
      for (uint64_t n : t.ne) append(&b, pod(n));
      append(&b, pod(t.ggml_type));
      append(&b, pod(t.offset));
    }
    const size_t data_start = (b.size() + alignment - 1) / alignment * alignment;
    b.resize(data_start, 0);
    for (const Tensor& t : tensors) {
      if (b.size() < data_start + t.offset + t.data.size()) {
        b.resize(data_start + t.offset + t.data.size(), 0);
      }
      std::memcpy(b.data() + data_start + t.offset, t.data.data(), t.data.size());
    }
    return b;
  }

  std::vector<Tensor> tensors;

  template <typename T>
  static std::vector<uint8_t> pod(T v) {
    std::vector<uint8_t> b(sizeof(T));
    std::memcpy(b.data(), &v, sizeof(T));
    return b;
  }
  static std::vector<uint8_t> str(std::string_view s) {
    // resize + memcpy rather than insert(): GCC 12 warns falsely (-Warray-bounds) on the latter.
    std::vector<uint8_t> b(8 + s.size());
    const uint64_t n = s.size();
    std::memcpy(b.data(), &n, 8);
    if (n > 0) std::memcpy(b.data() + 8, s.data(), n);
    return b;
  }
  static void append(std::vector<uint8_t>* b, const std::vector<uint8_t>& more) {
    b->insert(b->end(), more.begin(), more.end());
  }

 private:
  void kv(std::string_view key, uint32_t type, std::vector<uint8_t> value) {
    append(&kv_bytes_, str(key));
    append(&kv_bytes_, pod(type));
    append(&kv_bytes_, value);
    ++num_kv_;
  }

  std::vector<uint8_t> kv_bytes_;
  uint64_t num_kv_ = 0;
};

}  // namespace kite::testing
