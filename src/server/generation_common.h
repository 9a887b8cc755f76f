// What the completions and chat handlers share (internal to src/server/): per-prompt state
// built from engine outputs, and the RAII pieces that keep every exit path clean.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "kite/request.h"
#include "server/http_session.h"
#include "server/openai_response.h"

namespace kite::server {

// One engine request (one prompt) of an HTTP request, as its outputs arrive.
struct PromptState {
  std::string text;  // the prompt as text (echo)
  std::vector<int32_t> prompt_token_ids;
  std::vector<LogprobEntry> prompt_logprobs;
  bool started = false;                // the first output (which carries the prompt ids) arrived
  std::vector<ChoiceAccum> choices;    // [n]
  std::vector<int64_t> text_offsets;   // [n] completions logprobs: code points so far
  std::vector<bool> first_chunk_sent;  // [n] streaming
  Status error;

  explicit PromptState(int n) : choices(n), text_offsets(n, 0), first_chunk_sent(n, false) {}

  // Folds one output in; returns true when it was the request's first.
  bool apply(const RequestOutput& out);
  int64_t completion_tokens() const;
};

Usage total_usage(const std::vector<PromptState>& prompts);

// Counts a generation request in flight (gauge and the drain check) for its lifetime.
class InFlightGuard {
 public:
  explicit InFlightGuard(ServerState& state);
  ~InFlightGuard();
  InFlightGuard(const InFlightGuard&) = delete;
  InFlightGuard& operator=(const InFlightGuard&) = delete;

 private:
  ServerState& state_;
};

// Ends the exchange's disconnect watch on scope exit (declare it after what the watch touches).
class WatchGuard {
 public:
  explicit WatchGuard(Exchange& ex) : ex_(ex) {}
  ~WatchGuard() { ex_.unwatch(); }
  WatchGuard(const WatchGuard&) = delete;
  WatchGuard& operator=(const WatchGuard&) = delete;

 private:
  Exchange& ex_;
};

// How one endpoint shapes the answer to a single-prompt generation (chat completions, Anthropic
// messages, responses); run_generation drives it. Each method returns (or appends) framed bytes.
class GenerationSink {
 public:
  virtual ~GenerationSink() = default;
  // The whole JSON body once every output arrived (not streaming).
  virtual std::string whole(const PromptState& ps) = 0;
  // Streaming: the events that open the stream, before any output.
  virtual std::string stream_begin(const PromptState& ps) = 0;
  // Streaming: folds `out` into `ps` (PromptState::apply) and appends its events to `buf`, with
  // an error event in the API's style when `out` carries an error.
  virtual void stream_output(PromptState& ps, const RequestOutput& out, std::string& buf) = 0;
  // Streaming: the events that close the stream; `failed`: an output carried an error.
  virtual std::string stream_end(const PromptState& ps, bool failed) = 0;
};

// Submits `request` (one prompt, request.params.n choices) and answers the exchange through
// `sink`, whole or as server-sent events. Errors before the first byte go out through
// Exchange::send_error (`error_param` names the field an add_request failure is attributed
// to); the engine request is aborted on every early exit (client gone, failed write), so its
// KV blocks are freed.
boost::asio::awaitable<void> run_generation(Exchange& ex, Engine& engine, GenerateRequest& request,
                                            bool stream, std::string_view error_param,
                                            GenerationSink& sink);

}  // namespace kite::server
