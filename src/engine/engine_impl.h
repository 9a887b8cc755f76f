// Engine::Impl: the engine thread, its inbox, the per-request output state, and the parts
// Engine::create assembles. Internal: tests use create_engine_from_parts with a runner of
// their own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/engine_core.h"
#include "engine/text_io.h"
#include "kite/engine.h"
#include "runtime/model_runner.h"
#include "structured/grammar_compiler.h"

namespace kite {

// Everything an engine is made of, before its thread starts.
struct EngineParts {
  EngineConfig config;
  std::unique_ptr<ModelRunner> runner;
  ModelInfo info;  // served_model_name, architecture, eos/bos ids, default sampling
  std::shared_ptr<const TextIo> text;  // tokenizer side; nullptr: token ids only
  // Run the model on a device thread so output processing overlaps it (default: CUDA only).
  std::optional<bool> async_execution;
  // Builds the grammar compiler on the first structured-output request (nullptr function: the
  // engine refuses structured outputs, e.g. without a tokenizer).
  std::function<Result<std::unique_ptr<structured::GrammarCompiler>>()> make_grammar_compiler;
  // The reasoning model's thinking delimiters (for EngineConfig::reasoning_parser).
  std::optional<int32_t> think_start_token;
  std::optional<int32_t> think_end_token;
};

class EngineFactory {
 public:
  // Sizes the KV cache, builds the EngineCore and starts the engine thread. Errors:
  // kInvalidArgument for inconsistent limits (naming the setting), kResourceExhausted when the
  // KV cache cannot hold one max_model_len sequence, and the runner's allocation errors.
  static Result<std::unique_ptr<Engine>> create(EngineParts parts);
};

struct Engine::Impl {
  ~Impl();
  Status init(EngineParts parts);
  Result<std::shared_ptr<RequestStream>> add_request(GenerateRequest request);
  void abort(const std::string& request_id);
  void shutdown(int64_t timeout_ms);
  EngineStats stats() const;

  // ---- engine thread ----
  struct ChoiceState {
    std::unique_ptr<TextIo::ChoiceDecoder> decoder;  // nullptr without a tokenizer
    bool finished = false;
    std::optional<std::string> stop_string;  // the stop string that ended the text
  };
  struct LiveRequest {
    std::shared_ptr<const RequestInfo> info;
    std::shared_ptr<RequestStream> stream;
    RequestMetrics metrics;
    bool sent_first = false;
    std::vector<LogprobEntry> prompt_logprobs;
    std::vector<ChoiceState> choices;
    bool aborted = false;
    Status error;
  };
  struct InboxItem {
    enum class Kind { kAdd, kAbort } kind = Kind::kAdd;
    std::shared_ptr<const RequestInfo> info;
    std::shared_ptr<RequestStream> stream;
    Clock::time_point arrival;
    std::string request_id;  // kAbort
  };
  void run();
  // Turns events into RequestOutputs (text, stop strings, metrics) and pushes them.
  void process(SchedulerEvents* events, std::vector<std::pair<std::string, Status>>* errors);
  // Publishes stats (before outputs are pushed, so a client that got its final output sees
  // counters that include it).
  void publish_stats();
  void publish_waiting();  // the max_waiting_requests count
  void end_live_id(const std::string& id);
  // Compiles the request's structured-output constraint into info->grammar (caller's thread).
  Status prepare_grammar(const SamplingParams& params, RequestInfo* info);
  // `dimensions` against the model's Matryoshka support (kInvalidArgument).
  Status check_pooling_params(const PoolingParams& p) const;

  EngineConfig config_;
  ModelInfo info_;
  std::unique_ptr<ModelRunner> runner_;
  std::shared_ptr<const TextIo> text_;
  std::unique_ptr<EngineCore> core_;
  std::function<Result<std::unique_ptr<structured::GrammarCompiler>>()> make_grammar_compiler_;
  std::once_flag grammar_once_;
  std::unique_ptr<structured::GrammarCompiler> grammar_compiler_;  // after grammar_once_
  Status grammar_compiler_status_;
  std::atomic<bool> grammar_compiler_ready_{false};  // grammar_compiler_ may be read
  std::optional<int32_t> think_start_token_, think_end_token_;
  bool async_ = false;
  std::unordered_map<std::string, LiveRequest> live_;  // engine thread only

  // ---- shared with callers (mu_) ----
  mutable std::mutex mu_;
  std::condition_variable cv_;       // engine thread waits for work
  std::condition_variable idle_cv_;  // shutdown waits for live requests to end
  std::deque<InboxItem> inbox_;
  std::unordered_set<std::string> live_ids_;
  // Admission by tokens (max_queued_tokens): prompt tokens × n of each live request, and their
  // sum.
  std::unordered_map<std::string, int64_t> live_tokens_by_id_;
  int64_t live_tokens_ = 0;
  int64_t max_queued_tokens_ = 0;  // resolved from config_.max_queued_tokens (0: unbounded)
  bool accepting_ = true;
  bool abort_all_ = false;
  bool stop_ = false;
  bool joined_ = false;
  std::mt19937_64 seed_rng_;
  uint64_t next_request_number_ = 0;
  std::thread thread_;

  // Requests counted against max_waiting_requests: adds still in the inbox plus the
  // scheduler's waiting requests as of the last published step (mu_).
  int64_t inbox_adds_ = 0;
  int64_t num_waiting_ = 0;

  mutable std::mutex stats_mu_;
  EngineStats stats_;
  // Engine-thread counters.
  int64_t prompt_tokens_total_ = 0;
  int64_t generation_tokens_total_ = 0;
  int64_t requests_finished_total_ = 0;
  int64_t requests_aborted_total_ = 0;
};

}  // namespace kite
