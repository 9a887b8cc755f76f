// W6: startup and footprint of `kite serve` (or any server command): the time from spawning
// the process to /health answering and to the first streamed token of one request, the size
// of the binary, and the peak resident host memory of the server process.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "kite/status.h"

namespace kite::bench {

struct StartupOptions {
  std::string binary;             // the server binary (default: this kite)
  std::vector<std::string> argv;  // full command line; {PORT} is replaced by the port
  std::string health_target = "/health";
  std::string model_name = "kite-bench";  // the "model" field of the one request
  std::vector<int32_t> prompt_token_ids = {1, 2, 3, 4, 5, 6, 7, 8};
  int64_t max_tokens = 8;
  double timeout_s = 600;
  std::string log_path;  // server output ("" = discarded)
};

struct StartupResult {
  double time_to_health_s = 0;
  double time_to_first_token_s = 0;  // spawn to the first token of the first request
  double first_request_ttft_ms = 0;  // that request alone (sent once /health answered)
  int64_t binary_size_bytes = 0;
  int64_t peak_rss_bytes = 0;  // the server's peak resident memory, after serving
  int port = 0;
};

// The default `kite serve` command line for `model` (with {PORT}), plus `extra_args`.
std::vector<std::string> kite_serve_command(const std::string& kite_binary,
                                            const std::string& model,
                                            const std::vector<std::string>& extra_args,
                                            const std::string& served_model_name);

Result<StartupResult> run_startup_benchmark(const StartupOptions& options);

boost::json::object startup_json(const StartupResult& r);

}  // namespace kite::bench
