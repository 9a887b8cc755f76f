// The reference workloads W1-W6 (docs/benchmarks.md; the team's BENCHMARKS.md) as runs of
// kite bench. Request counts follow the document at --scale 1 and shrink with --scale (or are
// set outright with --num-prompts) so that a time-limited machine can run them; with
// --scale < 1 the sweeps are "time-bound": a W2 point runs at least 4 full batches, a W3 point
// about `point_seconds` (30 s) of arrivals.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kite/status.h"

namespace kite::bench {

struct PresetRun {
  std::string preset;     // "W1"
  std::string name;       // "W1 (128,128)", workload.name in results
  std::string file_stem;  // "W1-128x128"
  int64_t input_len = 0;  // 0 for W4 (chat prompts)
  int64_t output_len = 0;
  int64_t num_prompts = 0;
  bool chat_prompts = false;  // W4's built-in chat prompts
  int max_concurrency = 0;    // W5: 1 (batch 1)
  int64_t max_model_len = 0;  // input + output (W1: "max sequence length = input + output")
  std::string model_hint;     // the shape the document uses ("Llama-3-8B")
};

struct PresetSweep {
  PresetRun run;          // the workload of every point
  std::string parameter;  // "max_num_seqs" | "request_rate"
  std::vector<double> grid;
  std::string objective;   // "output_throughput" | "request_throughput"
  std::string constraint;  // "tpot_mean<20ms" | "ttft_mean<1s"
  int refine = 0;          // bisection steps after the grid
  bool time_bound = false;
  double point_seconds = 30;  // time-bound W3: arrivals per point last about this long
  // Requests at one point (time-bound sweeps scale them with the setting).
  int64_t prompts_at(double value) const;
};

// The fixed-workload presets: W1 (four datasets), W4 (batches 4/8/16/32), W5 (batch 1).
// `scale` multiplies the document's counts (rounded up, at least 1 batch); `num_prompts`
// overrides them. W2/W3/W6 are kInvalidArgument here, naming the command that runs them.
Result<std::vector<PresetRun>> preset_runs(std::string_view workload, double scale,
                                           std::optional<int64_t> num_prompts);

// The sweep presets: W2 (max_num_seqs 1..512, TPOT < 20 ms), W3 (request rate, TTFT < 1 s).
Result<PresetSweep> preset_sweep(std::string_view workload, double scale,
                                 std::optional<int64_t> num_prompts);

}  // namespace kite::bench
