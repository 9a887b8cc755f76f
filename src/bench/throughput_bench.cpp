#include "bench/throughput_bench.h"

#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

#include "bench/progress.h"

namespace kite::bench {

using Clock = std::chrono::steady_clock;

SamplingParams sampling_params_for(const ThroughputOptions& o, const PromptSpec& p) {
  SamplingParams sp;
  sp.max_tokens = p.output_len;
  sp.ignore_eos = o.ignore_eos;
  if (o.ignore_eos) sp.min_tokens = 0;
  if (o.temperature) sp.temperature = *o.temperature;
  if (o.top_p) sp.top_p = *o.top_p;
  if (o.top_k) sp.top_k = *o.top_k;
  sp.seed = o.seed;
  sp.skip_special_tokens = true;
  return sp;
}

namespace {

// Notifications from the engine thread: which request pushed an output, and when.
class OutputQueue {
 public:
  void push(size_t index) {
    const auto now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.emplace_back(index, now);
    }
    cv_.notify_one();
  }
  // Waits for and takes every pending notification.
  std::deque<std::pair<size_t, Clock::time_point>> take() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !events_.empty(); });
    std::deque<std::pair<size_t, Clock::time_point>> out;
    out.swap(events_);
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<size_t, Clock::time_point>> events_;
};

struct InFlight {
  std::shared_ptr<RequestStream> stream;
  std::optional<StreamRecorder> recorder;
  bool done = true;
};

// Runs `prompts` and fills `samples` (same order). Every request is submitted when a slot is
// free (`max_concurrency`, 0 = all at once).
Status run_batch(Engine& engine, const std::vector<PromptSpec>& prompts,
                 const ThroughputOptions& opt, const std::string& id_prefix, ProgressBar* bar,
                 std::vector<RequestSample>& samples, double& duration_s) {
  const size_t n = prompts.size();
  samples.assign(n, RequestSample{});
  std::vector<InFlight> flight(n);
  auto queue = std::make_shared<OutputQueue>();
  const Clock::time_point t0 = Clock::now();
  auto secs = [&](Clock::time_point t) { return std::chrono::duration<double>(t - t0).count(); };
  size_t next = 0;
  size_t live = 0;
  size_t finished = 0;
  int64_t failed = 0;
  auto finish = [&](size_t i, RequestSample s) {
    samples[i] = std::move(s);
    flight[i].done = true;
    flight[i].stream.reset();
    --live;
    ++finished;
    if (!samples[i].success) ++failed;
    if (bar != nullptr) {
      if (failed) bar->set_status(fmt::format("{} failed", failed));
      bar->advance();
    }
  };
  auto submit_more = [&]() {
    const size_t cap = opt.max_concurrency > 0 ? static_cast<size_t>(opt.max_concurrency) : n;
    while (next < n && live < cap) {
      const size_t i = next++;
      const PromptSpec& p = prompts[i];
      GenerateRequest req;
      req.request_id = fmt::format("{}{}", id_prefix, i);
      req.prompt = p.prompt;
      req.add_special_tokens = true;
      req.params = sampling_params_for(opt, p);
      const Clock::time_point start = Clock::now();
      flight[i].recorder.emplace(secs(start));
      flight[i].recorder->set_expected(p.prompt_len, opt.ignore_eos ? p.output_len : -1);
      flight[i].done = false;
      ++live;
      // One notification per pushed output, installed before the request is queued.
      std::weak_ptr<OutputQueue> weak = queue;
      req.notifier = [weak, i] {
        if (auto q = weak.lock()) q->push(i);
      };
      Result<std::shared_ptr<RequestStream>> stream = engine.add_request(std::move(req));
      if (!stream.ok()) {
        finish(i, flight[i].recorder->fail(secs(Clock::now()), FailureKind::kRejected,
                                           stream.status().to_string()));
        continue;
      }
      flight[i].stream = *stream;
    }
  };
  auto handle = [&](size_t i, Clock::time_point when) {
    InFlight& f = flight[i];
    if (f.done || !f.stream) return;
    std::optional<RequestOutput> out = f.stream->try_next();
    if (!out) return;
    bool has_tokens = false;
    for (const ChoiceDelta& d : out->choices) has_tokens |= !d.token_ids.empty();
    if (has_tokens) f.recorder->on_token_chunk(secs(when));
    if (!out->finished) return;
    if (!out->error.ok()) {
      finish(i, f.recorder->fail(secs(when), FailureKind::kStreamError, out->error.to_string()));
      return;
    }
    const int64_t prompt_tokens = out->metrics.num_prompt_tokens > 0
                                      ? out->metrics.num_prompt_tokens
                                      : static_cast<int64_t>(out->prompt_token_ids.size());
    f.recorder->on_usage(prompt_tokens, out->metrics.num_generation_tokens);
    bool aborted = false;
    for (const ChoiceDelta& d : out->choices) aborted |= d.finish_reason == FinishReason::kAbort;
    if (aborted) {
      finish(i, f.recorder->fail(secs(when), FailureKind::kStreamError, "request aborted"));
      return;
    }
    finish(i, f.recorder->succeed(secs(when)));
  };
  submit_more();
  while (finished < n) {
    // Each notification stands for one pushed output: take exactly one, stamped with the
    // time of its push. Submission happens on this thread, so every stream is known here.
    for (const auto& [i, when] : queue->take()) handle(i, when);
    submit_more();
  }
  double end = 0;
  for (const RequestSample& s : samples) end = std::max(end, s.start_s + s.e2e_s);
  duration_s = end;
  return ok_status();
}

}  // namespace

Result<ThroughputRun> run_throughput_benchmark(Engine& engine,
                                               const std::vector<PromptSpec>& prompts,
                                               const ThroughputOptions& opt) {
  if (prompts.empty()) return invalid_argument("no prompts to run");
  if (opt.max_concurrency < 0) {
    return invalid_argument(
        fmt::format("--max-concurrency must be >= 0, got {}", opt.max_concurrency));
  }
  for (const PromptSpec& p : prompts) {
    KITE_RETURN_IF_ERROR(sampling_params_for(opt, p).validate(engine.model_info().vocab_size));
  }
  // Request ids unique per call: an engine shared by several runs (W4, W5, and W1 over several
  // ranks) may still hold the previous run's ids for a moment after their last output.
  static std::atomic<int> calls{0};
  const int call = calls.fetch_add(1);
  ThroughputRun run;
  if (opt.num_warmups > 0) {
    std::vector<PromptSpec> warm;
    for (int i = 0; i < opt.num_warmups; ++i) {
      warm.push_back(prompts[static_cast<size_t>(i) % prompts.size()]);
    }
    std::vector<RequestSample> ignored;
    double d = 0;
    KITE_RETURN_IF_ERROR(
        run_batch(engine, warm, opt, fmt::format("warmup{}-", call), nullptr, ignored, d));
  }
  run.stats_before = engine.stats();
  ProgressBar bar(opt.progress_label, static_cast<int64_t>(prompts.size()), opt.progress);
  KITE_RETURN_IF_ERROR(
      run_batch(engine, prompts, opt, fmt::format("bench{}-", call), &bar, run.samples,
                run.duration_s));
  bar.finish();
  run.stats_after = engine.stats();
  return run;
}

}  // namespace kite::bench
