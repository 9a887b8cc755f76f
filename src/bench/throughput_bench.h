// `kite bench throughput`: offline, in-process, on the public Engine API. Every prompt is
// submitted at t = 0 (or at most `max_concurrency` at a time), each with fixed output length
// when EOS is ignored; every RequestOutput is timestamped when the engine pushes it (the
// stream's notifier), which gives the same TTFT / ITL / TPOT / E2E as the HTTP benchmark
// without the network.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/dataset.h"
#include "bench/request_sample.h"
#include "kite/engine.h"
#include "kite/status.h"

namespace kite::bench {

struct ThroughputOptions {
  bool ignore_eos = true;
  std::optional<double> temperature = 0.0;  // greedy by default
  std::optional<double> top_p;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;
  int max_concurrency = 0;  // 0: submit everything at once
  int num_warmups = 0;      // requests run (and discarded) before the measured run
  bool progress = true;
  std::string progress_label = "throughput";
};

struct ThroughputRun {
  std::vector<RequestSample> samples;  // one per prompt, in prompt order
  double duration_s = 0;               // first submission to the last finished output
  EngineStats stats_before;
  EngineStats stats_after;
};

// The SamplingParams a prompt is run with.
SamplingParams sampling_params_for(const ThroughputOptions& options, const PromptSpec& prompt);

Result<ThroughputRun> run_throughput_benchmark(Engine& engine,
                                               const std::vector<PromptSpec>& prompts,
                                               const ThroughputOptions& options);

}  // namespace kite::bench
