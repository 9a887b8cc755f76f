// StepProfiler (step_profiler.h): the delay kernel, event bookkeeping and the per-phase sums.
#include <algorithm>
#include <utility>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/step_profiler.h"

namespace kite::cuda {

namespace {

// Holds the stream for `ns` nanoseconds of the GPU's global timer (one thread).
__global__ void delay_kernel(uint64_t ns) {
  uint64_t t0 = 0, t = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (t - t0 < ns);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

const char* step_phase_name(StepPhase p) {
  switch (p) {
    case StepPhase::kGemm:
      return "gemm";
    case StepPhase::kAttention:
      return "attention";
    case StepPhase::kNorm:
      return "norm";
    case StepPhase::kRopeKv:
      return "rope_kv";
    case StepPhase::kActivation:
      return "activation";
    case StepPhase::kEmbedding:
      return "embedding";
    case StepPhase::kSampling:
      return "sampling";
    case StepPhase::kOther:
      return "other";
  }
  return "?";
}

std::string_view linear_label(std::string_view name) {
  const size_t dot = name.rfind('.');
  return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

StepProfile median_profile(const std::vector<StepProfile>& steps) {
  StepProfile m;
  if (steps.empty()) return m;
  std::vector<double> v;
  auto med = [&](auto get) {
    v.clear();
    for (const StepProfile& s : steps) v.push_back(get(s));
    return median(v);
  };
  for (int p = 0; p < kNumStepPhases; ++p) {
    m.phase_ms[static_cast<size_t>(p)] =
        med([&](const StepProfile& s) { return s.phase_ms[static_cast<size_t>(p)]; });
  }
  for (const auto& [label, ms] : steps.front().detail_ms) {
    m.detail_ms[label] = med([&](const StepProfile& s) {
      auto it = s.detail_ms.find(label);
      return it == s.detail_ms.end() ? 0.0 : it->second;
    });
  }
  m.device_ms = med([](const StepProfile& s) { return s.device_ms; });
  m.host_forward_ms = med([](const StepProfile& s) { return s.host_forward_ms; });
  m.host_sample_ms = med([](const StepProfile& s) { return s.host_sample_ms; });
  m.num_intervals = steps.front().num_intervals;
  return m;
}

StepProfiler::~StepProfiler() {
  for (cudaEvent_t e : events_) KITE_CUDA_WARN(cudaEventDestroy(e));
}

Result<std::unique_ptr<StepProfiler>> StepProfiler::create(int lead_us, int max_events) {
  if (lead_us < 0 || max_events < 2) {
    return invalid_argument("step profiler: lead_us >= 0 and max_events >= 2");
  }
  std::unique_ptr<StepProfiler> p(new StepProfiler());
  p->lead_us_ = lead_us;
  p->events_.resize(static_cast<size_t>(max_events), nullptr);
  for (cudaEvent_t& e : p->events_) KITE_CUDA_RETURN_IF_ERROR(cudaEventCreate(&e));
  p->marks_.reserve(static_cast<size_t>(max_events));
  return Result<std::unique_ptr<StepProfiler>>(std::move(p));
}

Status StepProfiler::begin(cudaStream_t stream) {
  if (in_step_) return failed_precondition("step profiler: begin() inside a step");
  cur_ = StepProfile{};
  marks_.clear();
  overflow_ = false;
  in_step_ = true;
  if (lead_us_ > 0) {
    delay_kernel<<<1, 1, 0, stream>>>(static_cast<uint64_t>(lead_us_) * 1000);
    KITE_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  }
  mark(stream, StepPhase::kOther, "inputs");
  return ok_status();
}

void StepProfiler::mark(cudaStream_t stream, StepPhase phase, std::string_view label) {
  if (!in_step_) return;
  // Keep the last event for end().
  if (marks_.size() + 1 >= events_.size()) {
    overflow_ = true;
    return;
  }
  KITE_CUDA_WARN(cudaEventRecord(events_[marks_.size()], stream));
  marks_.push_back(Mark{phase, std::string(label)});
}

Result<StepProfile> StepProfiler::end(cudaStream_t stream) {
  if (!in_step_) return failed_precondition("step profiler: end() outside a step");
  in_step_ = false;
  const size_t n = marks_.size();
  if (n == 0) return internal_error("step profiler: a step without marks");
  KITE_CUDA_RETURN_IF_ERROR(cudaEventRecord(events_[n], stream));
  KITE_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(events_[n]));
  if (overflow_) {
    return resource_exhausted("step profiler: more than " + std::to_string(events_.size()) +
                              " events in one step");
  }
  StepProfile p = cur_;
  for (size_t i = 0; i < n; ++i) {
    float ms = 0;
    KITE_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]));
    const Mark& mk = marks_[i];
    if (mk.label.empty()) continue;  // an idle interval (after a host sync)
    p.phase_ms[static_cast<size_t>(mk.phase)] += ms;
    p.detail_ms[std::string(step_phase_name(mk.phase)) + "/" + mk.label] += ms;
    p.device_ms += ms;
  }
  p.num_intervals = static_cast<int>(n);
  return p;
}

}  // namespace kite::cuda
