// Embedding lookup: out[t] = table[token_ids[t]] (BF16 rows, or F32 rows with `f32`).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace kite::cuda {

struct EmbeddingParams {
  const int32_t* token_ids = nullptr;  // [num_tokens]; ids outside [0, vocab) give zero rows
  const void* table = nullptr;         // [vocab, hidden] bf16 (f32 when `f32`)
  void* out = nullptr;                 // [num_tokens, hidden], the table's type
  int num_tokens = 0;
  int hidden = 0;
  int vocab = 0;
  bool f32 = false;
};

void embedding(const EmbeddingParams& p, cudaStream_t stream);

}  // namespace kite::cuda
