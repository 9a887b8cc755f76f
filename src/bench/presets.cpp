#include "bench/presets.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace kite::bench {

namespace {

int64_t scaled(int64_t n, double scale) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(static_cast<double>(n) * scale)));
}

PresetRun dataset(std::string preset, int64_t in, int64_t out, int64_t n) {
  PresetRun r;
  r.preset = preset;
  r.name = fmt::format("{} ({},{})", preset, in, out);
  r.file_stem = fmt::format("{}-{}x{}", preset, in, out);
  r.input_len = in;
  r.output_len = out;
  r.num_prompts = n;
  r.max_model_len = in + out;
  r.model_hint = "Llama-3-8B";
  return r;
}

Status check_scale(double scale) {
  if (!(scale > 0) || std::isinf(scale)) {
    return invalid_argument(fmt::format("--scale must be > 0, got {}", scale));
  }
  return ok_status();
}

}  // namespace

int64_t PresetSweep::prompts_at(double value) const {
  if (!time_bound) return run.num_prompts;
  if (parameter == "max_num_seqs") {
    // At least four full batches, so TPOT is measured at the batch size being swept.
    return std::min(run.num_prompts, std::max<int64_t>(16, 4 * static_cast<int64_t>(value)));
  }
  // About point_seconds of arrivals at this rate (at least 32 requests).
  return std::min(run.num_prompts,
                  std::max<int64_t>(32, static_cast<int64_t>(std::ceil(value * point_seconds))));
}

Result<std::vector<PresetRun>> preset_runs(std::string_view w, double scale,
                                           std::optional<int64_t> num_prompts) {
  KITE_RETURN_IF_ERROR(check_scale(scale));
  if (num_prompts && *num_prompts <= 0) {
    return invalid_argument(fmt::format("--num-prompts must be > 0, got {}", *num_prompts));
  }
  std::vector<PresetRun> runs;
  if (w == "W1") {
    for (auto [in, out] :
         {std::pair<int64_t, int64_t>{128, 128}, {2048, 128}, {128, 2048}, {2048, 2048}}) {
      runs.push_back(dataset("W1", in, out, num_prompts ? *num_prompts : scaled(4096, scale)));
    }
  } else if (w == "W4") {
    for (int64_t b : {4, 8, 16, 32}) {
      PresetRun r;
      r.preset = "W4";
      r.name = fmt::format("W4 batch {}", b);
      r.file_stem = fmt::format("W4-batch{}", b);
      r.output_len = 128;
      r.num_prompts = b;  // the batch is the workload: not scaled
      r.chat_prompts = true;
      r.max_model_len = 2048;  // as in the study's LLM(max_model_len=2048)
      r.model_hint = "Llama-3.2-3B";
      runs.push_back(r);
    }
  } else if (w == "W5") {
    PresetRun r = dataset("W5", 128, 256, num_prompts ? *num_prompts : scaled(16, scale));
    r.name = "W5 batch 1 (128,256)";
    r.file_stem = "W5-batch1";
    r.max_concurrency = 1;
    runs.push_back(r);
  } else if (w == "W2" || w == "W3") {
    return invalid_argument(
        fmt::format("{} is a sweep: run it with `kite bench sweep {} ... --workload {}`", w,
                    w == "W2" ? "throughput MODEL" : "serve", w));
  } else if (w == "W6") {
    return invalid_argument("W6 measures startup: run it with `kite bench startup MODEL`");
  } else {
    return invalid_argument(fmt::format("unknown workload '{}' (W1, W2, W3, W4, W5 or W6)", w));
  }
  return runs;
}

Result<PresetSweep> preset_sweep(std::string_view w, double scale,
                                 std::optional<int64_t> num_prompts) {
  KITE_RETURN_IF_ERROR(check_scale(scale));
  PresetSweep s;
  s.time_bound = scale < 1.0 && !num_prompts;
  if (w == "W2") {
    s.run = dataset("W2", 2048, 128, num_prompts ? *num_prompts : scaled(4096, scale));
    s.run.name = "W2 TPOT-bound (2048,128)";
    s.run.file_stem = "W2-sweep";
    s.parameter = "max_num_seqs";
    s.grid = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
    s.objective = "output_throughput";
    s.constraint = "tpot_mean<20ms";
  } else if (w == "W3") {
    s.run = dataset("W3", 2048, 128, num_prompts ? *num_prompts : scaled(512, scale));
    s.run.name = "W3 TTFT-bound (2048,128)";
    s.run.file_stem = "W3-sweep";
    s.parameter = "request_rate";
    s.grid = {1, 2, 4, 8, 16, 32};
    s.objective = "request_throughput";
    s.constraint = "ttft_mean<1s";
    s.refine = 3;
  } else {
    return invalid_argument(
        fmt::format("--workload {} is not a sweep (the sweeps are W2 and W3)", w));
  }
  return s;
}

}  // namespace kite::bench
