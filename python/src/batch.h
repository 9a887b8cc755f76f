// Batch: the requests of one LLM.generate call, collected as they run.
//
// The engine pushes each request's outputs into its RequestStream from the engine thread; the
// stream's notifier queues the request's index on the batch's ReadySignal. Batch::wait (called
// with the GIL released) sleeps on that signal and folds the deltas into one RequestResult per
// request, so Python sees only finished requests and never a per-token object.
//
// Thread contract: one Python thread uses a Batch at a time (LLM.generate owns it); the engine
// thread touches only the shared ReadySignal.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "kite/engine.h"
#include "kite/request.h"

namespace kite::python {

struct ReadySignal {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> ready;  // indices of requests with queued outputs (repeats allowed)

  void notify(int index);
};

// One choice of a request, accumulated over its deltas.
struct ChoiceResult {
  int index = 0;
  std::vector<int32_t> token_ids;
  std::string text;
  std::vector<LogprobEntry> logprobs;  // one per token when logprobs were asked for
  FinishReason finish_reason = FinishReason::kNone;
  std::variant<std::monostate, std::string, int32_t> stop_reason;
};

struct RequestResult {
  std::string request_id;
  std::vector<int32_t> prompt_token_ids;
  std::vector<LogprobEntry> prompt_logprobs;  // entry 0 has no logprob
  std::vector<ChoiceResult> choices;          // by index, 0..n-1
  bool finished = false;
  Status error;
  RequestMetrics metrics;
  std::vector<float> embedding;  // embedding requests (GenerateRequest::pooling)
};

class Batch {
 public:
  explicit Batch(std::shared_ptr<Engine> engine);
  // Aborts what has not finished (an interrupted generate leaves nothing running).
  ~Batch();
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // Submits one request; returns its index or the engine's rejection (nothing was queued).
  Result<int> add(GenerateRequest request);
  // Waits up to timeout_ms for at least one more request to finish, folding in every output
  // that arrives meanwhile. Returns how many requests finished during the call. Call it
  // without the GIL.
  int wait(int64_t timeout_ms);
  // Asks the engine to abort every unfinished request (each still ends with a final output).
  void abort_unfinished();

  int size() const { return static_cast<int>(results_.size()); }
  int num_finished() const { return num_finished_; }
  int64_t num_prompt_tokens() const { return num_prompt_tokens_; }  // of requests started
  int64_t num_output_tokens() const { return num_output_tokens_; }
  const RequestResult& result(int index) const { return results_[static_cast<size_t>(index)]; }
  // The first request (by index) that ended in an error, if any.
  const RequestResult* first_error() const;

 private:
  // Folds one output of request `index` into its result. Returns true if it finished it.
  bool apply(int index, RequestOutput out);

  std::shared_ptr<Engine> engine_;
  std::shared_ptr<ReadySignal> signal_;
  std::vector<std::shared_ptr<RequestStream>> streams_;
  std::vector<RequestResult> results_;
  int num_finished_ = 0;
  int64_t num_prompt_tokens_ = 0;
  int64_t num_output_tokens_ = 0;
};

}  // namespace kite::python
