// What one benchmark request measured, whichever way it ran (in-process engine or HTTP).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kite::bench {

// Why a request failed. Stable names (failure_kind_name) are the keys of the result JSON's
// failure counts; HTTP status failures are further split by status code there.
enum class FailureKind {
  kNone,
  kHttpStatus,   // the server answered with a non-2xx status
  kConnect,      // resolve/connect failed, or the connection broke before the response
  kTimeout,      // no complete answer within the request timeout
  kStreamError,  // the stream carried an error object, or the engine reported an error
  kProtocol,     // malformed HTTP, SSE or JSON; a stream that ended without [DONE]
  kRejected,     // the in-process engine did not accept the request
};
std::string_view failure_kind_name(FailureKind kind);

// Times are seconds. `start_s` is relative to the benchmark's start; the others are relative
// to the request's own start (the moment it was sent / submitted).
struct RequestSample {
  bool success = false;
  FailureKind failure = FailureKind::kNone;
  int http_status = 0;  // the HTTP status when failure == kHttpStatus
  std::string error;    // human-readable reason when !success

  double start_s = 0.0;
  double ttft_s = 0.0;  // arrival of the first output chunk carrying tokens/text
  double e2e_s = 0.0;   // arrival of the end of the response (last chunk, or [DONE])
  // Gaps between consecutive token-carrying chunks (one fewer than such chunks). A chunk that
  // carries k > 1 tokens is one gap, as the client saw it.
  std::vector<double> itl_s;

  int64_t prompt_tokens = 0;            // as the server/engine counted them (usage.prompt_tokens)
  int64_t output_tokens = 0;            // usage.completion_tokens (or the engine's count)
  bool usage_reported = false;          // the token counts came from the server's usage object
  int64_t expected_prompt_tokens = -1;  // what the benchmark sent (-1: unknown, e.g. text)
  int64_t expected_output_tokens = -1;  // max_tokens when EOS was ignored (-1: not enforced)
  int64_t num_chunks = 0;               // token-carrying chunks received

  // Time per output token after the first: (e2e - ttft) / (output_tokens - 1); 0 when the
  // request produced fewer than 2 tokens (it then has no TPOT and is left out of TPOT stats).
  double tpot_s() const {
    return output_tokens > 1 ? (e2e_s - ttft_s) / static_cast<double>(output_tokens - 1) : 0.0;
  }
  bool has_tpot() const { return success && output_tokens > 1; }
};

}  // namespace kite::bench

namespace kite::bench {

// Builds a RequestSample from arrival times as a client sees them (seconds since the benchmark
// start): the send, each token-carrying chunk, and the end of the response.
class StreamRecorder {
 public:
  explicit StreamRecorder(double start_s) { sample_.start_s = start_s; }

  // A chunk that carries output (text or token ids) arrived at `t_s`.
  void on_token_chunk(double t_s) {
    const double rel = t_s - sample_.start_s;
    if (sample_.num_chunks == 0) {
      sample_.ttft_s = rel;
    } else {
      sample_.itl_s.push_back(rel - last_chunk_s_);
    }
    last_chunk_s_ = rel;
    ++sample_.num_chunks;
  }
  // The server's token counts (the final usage object).
  void on_usage(int64_t prompt_tokens, int64_t completion_tokens) {
    sample_.prompt_tokens = prompt_tokens;
    sample_.output_tokens = completion_tokens;
    sample_.usage_reported = true;
  }
  void set_expected(int64_t prompt_tokens, int64_t output_tokens) {
    sample_.expected_prompt_tokens = prompt_tokens;
    sample_.expected_output_tokens = output_tokens;
  }
  int64_t num_chunks() const { return sample_.num_chunks; }
  // usage.completion_tokens so far (0 before the usage object).
  int64_t reported_output_tokens() const { return sample_.output_tokens; }

  // The response ended completely at `t_s`. Without a usage object, the output token count
  // falls back to the number of token-carrying chunks (usage_reported stays false).
  RequestSample succeed(double t_s) {
    sample_.success = true;
    sample_.e2e_s = t_s - sample_.start_s;
    if (!sample_.usage_reported) sample_.output_tokens = sample_.num_chunks;
    return std::move(sample_);
  }
  RequestSample fail(double t_s, FailureKind kind, std::string error, int http_status = 0) {
    sample_.success = false;
    sample_.failure = kind;
    sample_.error = std::move(error);
    sample_.http_status = http_status;
    sample_.e2e_s = t_s - sample_.start_s;
    return std::move(sample_);
  }

 private:
  RequestSample sample_;
  double last_chunk_s_ = 0.0;
};

}  // namespace kite::bench
