// Batch (batch.h) and its binding: kite._core.Batch, RequestResult, ChoiceResult, LogprobEntry,
// TokenLogprob, RequestMetrics.
#include "batch.h"

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/variant.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "binding.h"
#include "engine_handle.h"

namespace kite::python {

// ---- Batch --------------------------------------------------------------------------------------

void ReadySignal::notify(int index) {
  {
    std::lock_guard<std::mutex> lock(mu);
    ready.push_back(index);
  }
  cv.notify_one();
}

Batch::Batch(std::shared_ptr<Engine> engine)
    : engine_(std::move(engine)), signal_(std::make_shared<ReadySignal>()) {}

Batch::~Batch() { abort_unfinished(); }

Result<int> Batch::add(GenerateRequest request) {
  const int index = size();
  // The signal outlives the batch if the engine pushes late (the notifier holds it).
  request.notifier = [signal = signal_, index] { signal->notify(index); };
  const int n = request.params.n;
  KITE_ASSIGN_OR_RETURN(std::shared_ptr<RequestStream> stream,
                        engine_->add_request(std::move(request)));
  RequestResult result;
  result.request_id = stream->request_id();
  result.choices.resize(static_cast<size_t>(n));
  for (int c = 0; c < n; ++c) result.choices[static_cast<size_t>(c)].index = c;
  streams_.push_back(std::move(stream));
  results_.push_back(std::move(result));
  return index;
}

bool Batch::apply(int index, RequestOutput out) {
  RequestResult& r = results_[static_cast<size_t>(index)];
  if (r.finished) return false;
  if (!out.prompt_token_ids.empty()) {
    num_prompt_tokens_ += static_cast<int64_t>(out.prompt_token_ids.size());
    r.prompt_token_ids = std::move(out.prompt_token_ids);
  }
  if (!out.prompt_logprobs.empty()) r.prompt_logprobs = std::move(out.prompt_logprobs);
  for (ChoiceDelta& d : out.choices) {
    if (d.index < 0 || d.index >= static_cast<int>(r.choices.size())) continue;
    ChoiceResult& c = r.choices[static_cast<size_t>(d.index)];
    num_output_tokens_ += static_cast<int64_t>(d.token_ids.size());
    c.token_ids.insert(c.token_ids.end(), d.token_ids.begin(), d.token_ids.end());
    c.text += d.text;
    for (LogprobEntry& e : d.logprobs) c.logprobs.push_back(std::move(e));
    if (d.finish_reason != FinishReason::kNone) {
      c.finish_reason = d.finish_reason;
      c.stop_reason = std::move(d.stop_reason);
    }
  }
  if (!out.finished) return false;
  r.finished = true;
  r.embedding = std::move(out.embedding);
  r.error = std::move(out.error);
  r.metrics = out.metrics;
  ++num_finished_;
  return true;
}

int Batch::wait(int64_t timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(std::max<int64_t>(0, timeout_ms));
  int finished = 0;
  std::vector<int> ready;
  while (num_finished_ < size()) {
    {
      std::unique_lock<std::mutex> lock(signal_->mu);
      if (signal_->ready.empty() && finished == 0) {
        signal_->cv.wait_until(lock, deadline, [&] { return !signal_->ready.empty(); });
      }
      ready.swap(signal_->ready);
    }
    if (ready.empty()) break;  // timed out, or nothing more after a finish
    for (int index : ready) {
      while (std::optional<RequestOutput> out = streams_[static_cast<size_t>(index)]->try_next()) {
        if (apply(index, std::move(*out))) ++finished;
      }
    }
    ready.clear();
    if (Clock::now() >= deadline) break;
  }
  return finished;
}

void Batch::abort_unfinished() {
  for (const RequestResult& r : results_) {
    if (!r.finished) engine_->abort(r.request_id);
  }
}

const RequestResult* Batch::first_error() const {
  for (const RequestResult& r : results_) {
    if (!r.error.ok()) return &r;
  }
  return nullptr;
}

// ---- binding ------------------------------------------------------------------------------------

namespace {

// steady_clock seconds (the clock of time.monotonic() on Linux); None for an unset time.
std::optional<double> seconds(Clock::time_point t) {
  if (t == Clock::time_point{}) return std::nullopt;
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::optional<std::string> finish_reason_or_none(FinishReason r) {
  if (r == FinishReason::kNone) return std::nullopt;
  return std::string(finish_reason_name(r));
}

}  // namespace

void bind_batch(nb::module_& m) {
  nb::class_<TokenLogprob>(m, "TokenLogprob")
      .def_ro("token_id", &TokenLogprob::token_id)
      .def_ro("logprob", &TokenLogprob::logprob);
  nb::class_<LogprobEntry>(m, "LogprobEntry")
      .def_ro("token_id", &LogprobEntry::token_id)
      .def_ro("logprob", &LogprobEntry::logprob)
      .def_ro("rank", &LogprobEntry::rank)
      .def_ro("top", &LogprobEntry::top);
  nb::class_<RequestMetrics>(m, "RequestMetrics")
      .def_prop_ro("arrival_time", [](const RequestMetrics& x) { return seconds(x.arrival_time); })
      .def_prop_ro("first_scheduled_time",
                   [](const RequestMetrics& x) { return seconds(x.first_scheduled_time); })
      .def_prop_ro("first_token_time",
                   [](const RequestMetrics& x) { return seconds(x.first_token_time); })
      .def_prop_ro("last_token_time",
                   [](const RequestMetrics& x) { return seconds(x.last_token_time); })
      .def_prop_ro("finished_time",
                   [](const RequestMetrics& x) { return seconds(x.finished_time); })
      .def_ro("num_prompt_tokens", &RequestMetrics::num_prompt_tokens)
      .def_ro("num_generation_tokens", &RequestMetrics::num_generation_tokens)
      .def_ro("num_cached_tokens", &RequestMetrics::num_cached_tokens)
      .def_ro("num_preemptions", &RequestMetrics::num_preemptions);
  nb::class_<ChoiceResult>(m, "ChoiceResult")
      .def_ro("index", &ChoiceResult::index)
      .def_ro("token_ids", &ChoiceResult::token_ids)
      .def_ro("text", &ChoiceResult::text)
      .def_ro("logprobs", &ChoiceResult::logprobs)
      .def_prop_ro("finish_reason",
                   [](const ChoiceResult& c) { return finish_reason_or_none(c.finish_reason); })
      .def_ro("stop_reason", &ChoiceResult::stop_reason);
  nb::class_<RequestResult>(m, "RequestResult")
      .def_ro("request_id", &RequestResult::request_id)
      .def_ro("prompt_token_ids", &RequestResult::prompt_token_ids)
      .def_ro("prompt_logprobs", &RequestResult::prompt_logprobs)
      .def_ro("choices", &RequestResult::choices)
      .def_ro("finished", &RequestResult::finished)
      .def_ro("metrics", &RequestResult::metrics)
      .def_ro("embedding", &RequestResult::embedding);

  nb::class_<Batch>(m, "Batch")
      .def(
          "__init__",
          [](Batch* self, const EngineHandle& engine) { new (self) Batch(engine.get()); },
          nb::arg("engine"))
      .def(
          "add",
          [](Batch& b, std::variant<std::string, std::vector<int32_t>> prompt,
             const SamplingParams& params, bool add_special_tokens, std::string request_id,
             int priority) {
            GenerateRequest request;
            request.request_id = std::move(request_id);
            request.prompt = std::move(prompt);
            request.params = params;
            request.add_special_tokens = add_special_tokens;
            request.priority = priority;
            Result<int> index = Status();
            {
              nb::gil_scoped_release release;  // text prompts are tokenized here
              index = b.add(std::move(request));
            }
            return value_or_raise(std::move(index));
          },
          nb::arg("prompt"), nb::arg("params"), nb::arg("add_special_tokens") = true,
          nb::arg("request_id") = "", nb::arg("priority") = 0,
          "Submits one request (text or token ids); raises the engine's rejection.")
      .def(
          "add_embedding",
          [](Batch& b, std::variant<std::string, std::vector<int32_t>> prompt, int64_t dimensions,
             bool add_special_tokens, std::string request_id, int priority) {
            GenerateRequest request;
            request.request_id = std::move(request_id);
            request.prompt = std::move(prompt);
            request.pooling = PoolingParams{dimensions};
            request.add_special_tokens = add_special_tokens;
            request.priority = priority;
            Result<int> index = Status();
            {
              nb::gil_scoped_release release;
              index = b.add(std::move(request));
            }
            return value_or_raise(std::move(index));
          },
          nb::arg("prompt"), nb::arg("dimensions") = 0, nb::arg("add_special_tokens") = true,
          nb::arg("request_id") = "", nb::arg("priority") = 0,
          "Submits one embedding request (a pooling engine); raises the engine's rejection.")
      .def("wait", &Batch::wait, nb::arg("timeout_ms"), nb::call_guard<nb::gil_scoped_release>(),
           "Waits (without the GIL) up to timeout_ms for requests to finish; returns how many "
           "did.")
      .def("abort_unfinished", &Batch::abort_unfinished)
      .def("__len__", &Batch::size)
      .def_prop_ro("num_finished", &Batch::num_finished)
      .def_prop_ro("num_prompt_tokens", &Batch::num_prompt_tokens)
      .def_prop_ro("num_output_tokens", &Batch::num_output_tokens)
      .def(
          "result",
          [](const Batch& b, int index) {
            if (index < 0 || index >= b.size()) throw nb::index_error("request index out of range");
            return b.result(index);
          },
          nb::arg("index"), nb::rv_policy::copy)
      .def(
          "raise_first_error",
          [](const Batch& b) {
            if (const RequestResult* r = b.first_error()) raise_status(r->error);
          },
          "Raises the error of the first request that failed, if one did.");
}

}  // namespace kite::python
