// SamplingParams::validate (include/kite/sampling_params.h): one place that rejects every bad
// sampling value with a message naming the field.
#include "kite/sampling_params.h"

#include <cmath>
#include <set>
#include <sstream>
#include <string>

namespace kite {
namespace {

// Shortest round-trip text of a double ("-1", "0.5", "nan").
std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

Status bad(const std::string& message) { return invalid_argument(message); }

Status check_range(const char* field, double v, double lo, double hi) {
  if (!(v >= lo && v <= hi)) {
    return bad(std::string(field) + " must be in [" + num(lo) + ", " + num(hi) + "], got " +
               num(v));
  }
  return ok_status();
}

Status check_token(const std::string& field, int64_t id, int64_t vocab_size) {
  if (id < 0 || (vocab_size > 0 && id >= vocab_size)) {
    return bad(field + " has token id " + std::to_string(id) + " outside the vocabulary [0, " +
               (vocab_size > 0 ? std::to_string(vocab_size) : std::string("inf")) + ")");
  }
  return ok_status();
}

// The samplers compute in float: a value valid as a double can round to inf or 0 there, so
// each real field is checked again as the float it becomes.
Status check_as_float(const char* field, double v, bool positive) {
  const float f = static_cast<float>(v);
  if (!std::isfinite(f) || (positive && !(f > 0.0f))) {
    return bad(std::string(field) + " " + num(v) + " is out of range as a 32-bit float (" +
               (positive ? "it must stay finite and > 0" : "it must stay finite") + ")");
  }
  return ok_status();
}

constexpr int kMaxN = 1024;
constexpr int kMaxLogprobs = 20;

}  // namespace

Status SamplingParams::validate(int64_t vocab_size) const {
  if (n < 1 || n > kMaxN) {
    return bad("n must be in [1, " + std::to_string(kMaxN) + "], got " + std::to_string(n));
  }
  if (!(temperature >= 0.0) || !std::isfinite(temperature)) {
    return bad("temperature must be >= 0, got " + num(temperature));
  }
  if (!(top_p > 0.0 && top_p <= 1.0)) return bad("top_p must be in (0, 1], got " + num(top_p));
  if (top_k < -1) {
    return bad("top_k must be -1 or 0 (disabled) or at least 1, got " + std::to_string(top_k));
  }
  KITE_RETURN_IF_ERROR(check_range("min_p", min_p, 0.0, 1.0));
  if (!(repetition_penalty > 0.0) || !std::isfinite(repetition_penalty)) {
    return bad("repetition_penalty must be > 0, got " + num(repetition_penalty));
  }
  KITE_RETURN_IF_ERROR(check_range("presence_penalty", presence_penalty, -2.0, 2.0));
  KITE_RETURN_IF_ERROR(check_range("frequency_penalty", frequency_penalty, -2.0, 2.0));
  if (!greedy()) KITE_RETURN_IF_ERROR(check_as_float("temperature", temperature, false));
  KITE_RETURN_IF_ERROR(check_as_float("top_p", top_p, true));
  KITE_RETURN_IF_ERROR(check_as_float("repetition_penalty", repetition_penalty, true));
  std::set<int32_t> bias_tokens;
  for (const auto& [token, bias] : logit_bias) {
    KITE_RETURN_IF_ERROR(check_token("logit_bias", token, vocab_size));
    if (!(bias >= -100.0f && bias <= 100.0f)) {
      return bad("logit_bias for token " + std::to_string(token) + " must be in [-100, 100], got " +
                 num(bias));
    }
    if (!bias_tokens.insert(token).second) {
      return bad("logit_bias lists token " + std::to_string(token) + " more than once");
    }
  }
  if (max_tokens < 1)
    return bad("max_tokens must be at least 1, got " + std::to_string(max_tokens));
  if (min_tokens < 0) return bad("min_tokens must be >= 0, got " + std::to_string(min_tokens));
  if (min_tokens > max_tokens) {
    return bad("min_tokens (" + std::to_string(min_tokens) + ") must be <= max_tokens (" +
               std::to_string(max_tokens) + ")");
  }
  for (size_t i = 0; i < stop.size(); ++i) {
    if (stop[i].empty()) return bad("stop[" + std::to_string(i) + "] must not be empty");
  }
  for (int32_t id : stop_token_ids) {
    KITE_RETURN_IF_ERROR(check_token("stop_token_ids", id, vocab_size));
  }
  if (logprobs && (*logprobs < 0 || *logprobs > kMaxLogprobs)) {
    return bad("logprobs must be in [0, " + std::to_string(kMaxLogprobs) + "], got " +
               std::to_string(*logprobs));
  }
  if (prompt_logprobs && (*prompt_logprobs < 0 || *prompt_logprobs > kMaxLogprobs)) {
    return bad("prompt_logprobs must be in [0, " + std::to_string(kMaxLogprobs) + "], got " +
               std::to_string(*prompt_logprobs));
  }
  if (structured_outputs) {
    const StructuredOutputs& so = *structured_outputs;
    const int k = so.num_constraints();
    if (k == 0) {
      return bad("structured_outputs must set one of json, regex, choice, grammar or json_object");
    }
    if (k > 1) {
      return bad("structured_outputs sets " + std::to_string(k) +
                 " constraints (json, regex, choice, grammar, json_object or tools); give one");
    }
    if (so.choice && so.choice->empty()) return bad("structured_outputs.choice must not be empty");
    // min_tokens bans EOS, which can be the only token a finished grammar allows.
    if (min_tokens > 0) return bad("min_tokens cannot be combined with structured outputs");
  }
  return ok_status();
}

}  // namespace kite
