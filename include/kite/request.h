// Requests into the engine and what comes back out.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "kite/sampling_params.h"
#include "kite/status.h"

namespace kite {

using Clock = std::chrono::steady_clock;

// An embedding request (vLLM's PoolingParams): the prompt is prefilled without generating,
// its final-norm hidden states are pooled as the model's pooling config says (last token, mean
// or first token) and the result is L2-normalised.
struct PoolingParams {
  // 0: the model's full embedding; else the first `dimensions` values, normalised again
  // (Matryoshka). Only for models whose config allows it (ModelInfo::pooling).
  int64_t dimensions = 0;
};

struct GenerateRequest {
  std::string request_id;  // unique among live requests; empty: the engine assigns one
  // Text (tokenized with the model's tokenizer) or token ids.
  std::variant<std::string, std::vector<int32_t>> prompt;
  bool add_special_tokens = true;  // text prompts: BOS etc. as tokenizer_config.json says
  SamplingParams params;
  int priority = 0;  // lower runs first when the engine uses priority scheduling
  // Prefix-cache isolation (vLLM's cache_salt): requests share cached KV blocks only with
  // requests of the same salt; empty = the shared cache. A tenant that keeps its salt secret
  // can neither reuse nor detect (by timing or the hit counters) another tenant's prefixes.
  std::string cache_salt;
  // Optional: installed as the stream's notifier (RequestStream::set_notifier) before the
  // request is queued, so no output can be pushed before it is in place. Same contract as
  // set_notifier: cheap, non-blocking, called from the engine thread.
  std::function<void()> notifier;
  // Set: an embedding request (needs EngineConfig::runner "pooling"); `params` are ignored.
  std::optional<PoolingParams> pooling;
};

enum class FinishReason { kNone, kStop, kLength, kAbort, kError };
// "stop", "length", "abort", "error", or "" for kNone.
const char* finish_reason_name(FinishReason r);

struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0.0f;
};

struct LogprobEntry {
  int32_t token_id = 0;  // the chosen (or prompt) token
  float logprob = 0.0f;
  int32_t rank = 0;  // 1 = most likely
  std::vector<TokenLogprob> top;  // most likely first
};

// New output of one choice since the previous RequestOutput.
struct ChoiceDelta {
  int index = 0;                    // choice index, 0..n-1
  std::vector<int32_t> token_ids;   // new tokens
  std::string text;                 // new text (final: never retracted)
  std::vector<LogprobEntry> logprobs;  // one per new token when logprobs were asked for
  FinishReason finish_reason = FinishReason::kNone;
  // The stop string or stop token id that ended the choice (empty otherwise).
  std::variant<std::monostate, std::string, int32_t> stop_reason;
};

struct RequestMetrics {
  Clock::time_point arrival_time{};
  Clock::time_point first_scheduled_time{};
  Clock::time_point first_token_time{};
  Clock::time_point last_token_time{};
  Clock::time_point finished_time{};
  int64_t num_prompt_tokens = 0;
  int64_t num_generation_tokens = 0;  // summed over choices
  int64_t num_cached_tokens = 0;      // prompt tokens served from the prefix cache
  int64_t num_preemptions = 0;
};

struct RequestOutput {
  std::string request_id;
  std::vector<ChoiceDelta> choices;  // choices with news in this update
  // Set in the first output of a request.
  std::vector<int32_t> prompt_token_ids;
  std::vector<LogprobEntry> prompt_logprobs;  // when asked for; entry 0 has no logprob
  bool finished = false;  // every choice has finished; the last output of the request
  Status error;           // non-OK when the request ended in an error
  RequestMetrics metrics;  // filled when finished
  // Pooling requests: the embedding, in the finished output (empty otherwise).
  std::vector<float> embedding;
};

// The consumer side of one request's outputs. The engine thread pushes; any one other thread
// pops. Exactly one output has finished == true, and it is the last.
class RequestStream {
 public:
  explicit RequestStream(std::string request_id) : request_id_(std::move(request_id)) {}

  const std::string& request_id() const { return request_id_; }

  // Blocks until an output is available; nullopt after the finished one was taken.
  std::optional<RequestOutput> next();
  // Non-blocking: an output if one is queued.
  std::optional<RequestOutput> try_next();
  // Waits at most `timeout`; nullopt on timeout or after the end.
  std::optional<RequestOutput> next_for(std::chrono::milliseconds timeout);

  // Called (from the engine thread, without the stream's lock held) after each push. Set it
  // before the request is submitted. It must be cheap and must not block: e.g. post to an
  // executor. Used by the HTTP server to wake its coroutine.
  void set_notifier(std::function<void()> notifier) { notifier_ = std::move(notifier); }

  // Engine side.
  void push(RequestOutput out);

 private:
  std::string request_id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RequestOutput> queue_;
  bool ended_ = false;  // the finished output was pushed
  bool taken_end_ = false;
  std::function<void()> notifier_;
};

}  // namespace kite
