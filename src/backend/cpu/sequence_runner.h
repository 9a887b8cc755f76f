// SequenceRunner: feeds one sequence through a ModelRunner — prefill (whole or in chunks), then
// one token per decode step — building each ForwardBatch itself. It owns no engine state; it
// is the loop of `kite generate` and of the model conformance tests (the engine's scheduler
// builds the same batches for many sequences at once).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/model_runner.h"

namespace kite {

class SequenceRunner {
 public:
  // Uses KV blocks 1 .. num_blocks-1 of `runner`'s (already allocated) cache, in order; the
  // sequence may grow to (num_blocks - 1) * block_size tokens.
  SequenceRunner(ModelRunner* runner, int block_size, int64_t num_blocks);

  // Appends `tokens` to the sequence in one forward step and returns the logits of the last
  // token ([vocab]) or, with all_logits, of every fed token ([tokens.size(), vocab]).
  // kOutOfRange when the cache cannot hold the longer sequence.
  Result<std::vector<float>> feed(std::span<const int32_t> tokens, bool all_logits = false);

  int64_t length() const { return length_; }
  int64_t capacity() const { return (num_blocks_ - 1) * block_size_; }

 private:
  ModelRunner* runner_;
  int block_size_;
  int64_t num_blocks_;
  int64_t length_ = 0;
};

}  // namespace kite
