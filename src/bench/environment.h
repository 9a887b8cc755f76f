// A description of the machine a benchmark ran on, for the result JSON's "environment".
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace kite::bench {

struct GpuInfo {
  std::string name;
  int64_t memory_bytes = 0;
  std::string driver_version;
};

// GPUs as nvidia-smi lists them (empty when nvidia-smi is absent or fails).
std::vector<GpuInfo> query_gpus();

// {"os", "kernel", "arch", "cpu", "num_cpus", "memory_bytes", "gpus": [...]}.
boost::json::object environment_json();

// Peak resident set size of this process so far (VmHWM), bytes; 0 if unknown.
int64_t peak_rss_bytes();

}  // namespace kite::bench
