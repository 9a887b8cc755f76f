// RequestInfo: what the engine knows about an accepted request that never changes. Shared
// (read-only) by the scheduler, the executor and the engine's output side.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kite/sampling_params.h"

namespace kite {

namespace structured {
class CompiledGrammar;  // src/structured (only the executor looks inside)
}  // namespace structured

// How an embedding request pools its prompt's final-norm hidden states.
enum class PoolingType : uint8_t { kNone, kLast, kMean, kCls };  // kNone: a generate request

struct RequestInfo {
  std::string request_id;
  SamplingParams params;
  uint64_t seed = 0;  // the request's seed; choice i samples with choice_seed(seed, i)
  std::vector<int32_t> prompt_token_ids;
  std::vector<int32_t> eos_token_ids;  // the model's EOS ids (stop unless params.ignore_eos)
  int64_t max_tokens = 0;   // effective: min(params.max_tokens, max_model_len - prompt length)
  int priority = 0;         // lower runs first under the priority policy
  uint64_t cache_salt = 0;  // keys the first prefix-cache block (0: shared cache)
  // Structured outputs: the compiled grammar every choice's tokens must follow (nullptr: none).
  std::shared_ptr<const structured::CompiledGrammar> grammar;
  // With a reasoning parser: the grammar starts after this token (end of thinking) is generated;
  // nullopt when it applies from the first output token.
  std::optional<int32_t> grammar_after_token;
  // Embedding requests: prefill only (n = 1, no samples, max_tokens 0, no prefix-cache reuse),
  // then one pooled vector; the request finishes with kStop when its prompt is computed.
  PoolingType pooling = PoolingType::kNone;
  int64_t pooling_dimensions = 0;  // 0: all; else truncated (Matryoshka) before normalising
  bool pooling_normalize = true;

  bool is_pooling() const { return pooling != PoolingType::kNone; }

  int64_t num_prompt_tokens() const { return static_cast<int64_t>(prompt_token_ids.size()); }
  int n() const { return params.n; }
};

}  // namespace kite
