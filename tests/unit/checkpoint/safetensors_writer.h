// Builds safetensors bytes for tests: well-formed from (name, dtype, shape, data) entries, or
// from a raw header to exercise the parser's checks; and rewrites of a real file's tensors.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "checkpoint/safetensors.h"

namespace kite::testing {

struct StEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

// Header length (u64) + header text (padded with spaces to 8 bytes) + data.
inline std::vector<uint8_t> safetensors_bytes(std::string header,
                                              const std::vector<uint8_t>& data) {
  while (header.size() % 8 != 0) header += ' ';
  std::vector<uint8_t> out(8 + header.size() + data.size());
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
  return out;
}

inline std::vector<uint8_t> safetensors_bytes(const std::vector<StEntry>& entries,
                                              const std::map<std::string, std::string>& metadata) {
  boost::json::object header;
  if (!metadata.empty()) {
    boost::json::object meta;
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::vector<uint8_t> data;
  for (const StEntry& e : entries) {
    boost::json::object t;
    t["dtype"] = e.dtype;
    boost::json::array shape;
    for (int64_t d : e.shape) shape.push_back(d);
    t["shape"] = shape;
    t["data_offsets"] = boost::json::array{data.size(), data.size() + e.data.size()};
    header[e.name] = t;
    data.insert(data.end(), e.data.begin(), e.data.end());
  }
  return safetensors_bytes(boost::json::serialize(header), data);
}

// The entries of a parsed file (data copied), to rewrite it with changes.
inline std::vector<StEntry> entries_of(const SafetensorsFile& f) {
  std::vector<StEntry> out;
  for (const SafetensorsTensor& t : f.tensors()) {
    auto view = f.view(t);
    const auto* p = static_cast<const uint8_t*>(view->data);
    out.push_back({t.name, t.dtype_name, t.shape, std::vector<uint8_t>(p, p + (t.end - t.begin))});
  }
  return out;
}

}  // namespace kite::testing
