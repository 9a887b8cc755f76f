// GrammarMatcher: the state of one choice inside its grammar (an xgrammar matcher), the bitmask
// of the tokens it allows next, and an optional reasoning gate: with a reasoning parser the
// constraint applies to the answer only, so tokens are not checked (and no mask is made) until
// the end-of-thinking token has been generated.
//
// Not thread-safe: one choice owns it; fill_bitmask of different matchers may run on different
// threads at once (they share only the immutable CompiledGrammar).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "structured/grammar_compiler.h"

namespace kite::structured {

class GrammarMatcher {
 public:
  // stop_token_ids: the tokens that end a complete output (the request's EOS ids).
  // reasoning_end_token: when set, the grammar starts after this token is accepted.
  GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar,
                 const std::vector<int32_t>& stop_token_ids,
                 std::optional<int32_t> reasoning_end_token = std::nullopt);
  ~GrammarMatcher();
  GrammarMatcher(const GrammarMatcher&) = delete;
  GrammarMatcher& operator=(const GrammarMatcher&) = delete;

  // Advances past a generated token. False when the grammar does not allow it (the state is
  // unchanged) or the matcher has already ended (a stop token was accepted).
  bool accept(int32_t token);
  // Writes the allowed-token bitmask (bitmask_words(vocab_size()) words) of the next token.
  // Returns false, writing nothing, when the output is not constrained yet (reasoning gate).
  // After the grammar has ended, only the stop tokens are allowed.
  bool fill_bitmask(int32_t* mask);
  // Undoes the last `num_tokens` accepted tokens (at most the number accepted since the gate
  // opened; tokens before it are only counted).
  void rollback(int num_tokens);
  // A copy in the same state (n > 1 choices that share a prefix).
  std::unique_ptr<GrammarMatcher> fork() const;

  bool constrained() const { return gate_open_; }
  bool terminated() const;                                // a stop token was accepted
  int64_t num_accepted() const { return num_accepted_; }  // tokens since the gate opened
  int64_t vocab_size() const;

 private:
  struct Impl;
  explicit GrammarMatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  bool gate_open_ = true;
  std::optional<int32_t> reasoning_end_;
  int64_t num_accepted_ = 0;
  int64_t num_gated_ = 0;  // tokens seen before the gate opened
};

}  // namespace kite::structured
