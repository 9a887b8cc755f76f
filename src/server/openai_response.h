// Building blocks of OpenAI-compatible responses: per-choice accumulation of engine deltas,
// finish/stop reasons, usage, and the two logprobs formats (legacy completions, chat).
// Pure: token strings come from a caller-supplied function (Engine::detokenize of one token).
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "kite/request.h"

namespace kite::server {

// The text a logprobs entry shows for a token id.
using TokenText = std::function<std::string(int32_t)>;

// Everything one choice produced so far.
struct ChoiceAccum {
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<LogprobEntry> logprobs;
  FinishReason finish_reason = FinishReason::kNone;
  std::variant<std::monostate, std::string, int32_t> stop_reason;

  void add(const ChoiceDelta& delta);
  bool finished() const { return finish_reason != FinishReason::kNone; }
};

// "stop" | "length" | "abort" | "error"; null while unfinished.
boost::json::value finish_reason_json(FinishReason r);
// The stop string, the stop token id, or null (vLLM's `stop_reason`).
boost::json::value stop_reason_json(const std::variant<std::monostate, std::string, int32_t>& r);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};
// {"prompt_tokens", "completion_tokens", "total_tokens"}
boost::json::object usage_json(const Usage& u);

// Logprobs are floats that may be -inf; JSON has no infinities, so they are clamped (as vLLM).
double json_logprob(float lp);

// Legacy completions logprobs, appended to `out` (an object with the four arrays, created on
// first use): tokens, token_logprobs, top_logprobs ({token: logprob}), text_offset.
// `text_offset` counts Unicode code points from the start of the choice's text and advances.
// The first `num_without_logprob` entries (the prompt's first token, or a prompt whose logprobs
// are unknown) get null logprob and top.
void append_completion_logprobs(boost::json::object& out, std::span<const LogprobEntry> entries,
                                const TokenText& token_text, int64_t& text_offset,
                                size_t num_without_logprob = 0);
// An empty legacy logprobs object (the four arrays, empty).
boost::json::object empty_completion_logprobs();

// Chat logprobs content entries ({"token", "logprob", "bytes", "top_logprobs"}), appended to
// `content`.
void append_chat_logprobs(boost::json::array& content, std::span<const LogprobEntry> entries,
                          const TokenText& token_text);

// Number of Unicode code points in UTF-8 text (invalid bytes count one each).
int64_t utf8_length(std::string_view s);
// `s` with every invalid UTF-8 sequence replaced by U+FFFD (as Python's errors="replace"), so
// JSON bodies stay valid UTF-8 whatever bytes a token decodes to.
std::string sanitize_utf8(std::string s);

// "cmpl-" / "chatcmpl-" + 32 random hex digits.
std::string random_id(std::string_view prefix);
// Seconds since the Unix epoch.
int64_t unix_time_now();

}  // namespace kite::server
