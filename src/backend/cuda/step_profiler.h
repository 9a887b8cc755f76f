// Per-step phase timing of the CUDA runner (opt-in; CudaModelRunner::set_step_profiling): CUDA
// events at op boundaries of an eager forward() and around sample(), summed per phase.
//
// A profiled step starts with a delay kernel that holds the stream for `lead_us` microseconds
// while the host enqueues the step, so the GPU then runs the step's launches back to back and
// the time between two events is the device time of the launches between them, not launch gaps.
// (The delay ends on its own: the host never waits on it, so a full launch queue cannot
// deadlock.) The host's share is measured apart: forward()'s wall time on the host (plan,
// input upload, launches).
//
// Off (no profiler attached) the runner records nothing and syncs nothing: each op boundary
// costs one null-pointer test.
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kite/status.h"

namespace kite::cuda {

enum class StepPhase : uint8_t {
  kGemm,        // linear layers: GEMV (with its fused norm / residual / RoPE / SiLU parts) and
                // cuBLASLt, FP8 activation quantization, MoE blocks
  kAttention,   // decode (split-KV) and prefill attention, ours and FlashInfer's
  kNorm,        // RMSNorm (with its residual add)
  kRopeKv,      // RoPE + KV-cache write (q/k norms included)
  kActivation,  // SiLU·mul / GeLU-tanh·mul as their own kernels
  kEmbedding,   // token embedding gather
  kSampling,    // the GPU sampler (upload of its rows, kernels, download of the tokens)
  kOther,       // step input upload, soft-capping, pooling copies
};
inline constexpr int kNumStepPhases = 8;
const char* step_phase_name(StepPhase p);

// One profiled step (or the per-entry medians of several: median_profile).
struct StepProfile {
  std::array<double, kNumStepPhases> phase_ms{};  // device ms per StepPhase
  // Device ms per label within a phase: "gemm/qkv_proj", "gemm/lm_head", "attention/decode",
  // "attention/prefill", "attention/flashinfer", ...
  std::map<std::string, double> detail_ms;
  double device_ms = 0;        // sum of phase_ms (the device busy time of the step)
  double host_forward_ms = 0;  // forward()'s wall time on the host
  double host_sample_ms = 0;   // sample()'s wall time on the host (it waits for the step)
  int num_intervals = 0;       // events recorded - 1
};

// Per-entry medians (each phase, each detail label, each time separately).
StepProfile median_profile(const std::vector<StepProfile>& steps);

class StepProfiler {
 public:
  ~StepProfiler();
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;

  // `max_events`: events pre-created (a step needs about one per op plus a few); a step with
  // more stops recording at the limit and its profile says so (kResourceExhausted from end()).
  static Result<std::unique_ptr<StepProfiler>> create(int lead_us = 20000, int max_events = 8192);

  bool in_step() const { return in_step_; }
  // Starts a step on `stream`: the delay kernel, then the first event (phase kOther "inputs").
  Status begin(cudaStream_t stream);
  // Closes the interval open since the last mark and opens one of `phase` / `label` (label: a
  // short name, e.g. the linear's "qkv_proj"; empty: an idle interval, not counted, e.g. after
  // a host sync). No-op outside a step.
  void mark(cudaStream_t stream, StepPhase phase, std::string_view label);
  void add_host_forward_ms(double ms) { cur_.host_forward_ms += ms; }
  void add_host_sample_ms(double ms) { cur_.host_sample_ms += ms; }
  // Closes the step: the last event, one sync on it, the intervals summed.
  Result<StepProfile> end(cudaStream_t stream);

 private:
  StepProfiler() = default;
  struct Mark {
    StepPhase phase;
    std::string label;
  };
  int lead_us_ = 0;
  std::vector<cudaEvent_t> events_;
  std::vector<Mark> marks_;  // marks_[i] labels the interval [events_[i], events_[i + 1])
  bool in_step_ = false;
  bool overflow_ = false;
  StepProfile cur_;
};

// The short label of a linear weight's logical name: "model.layers.3.mlp.down_proj" ->
// "down_proj", "lm_head" -> "lm_head".
std::string_view linear_label(std::string_view weight_name);

}  // namespace kite::cuda
