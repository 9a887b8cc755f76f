// Embedding lookup: out[t] = table[token_ids[t]] * scale, rows of `dtype` (bf16, or f32 in the
// float32 compute mode). scale != 1 (Gemma: sqrt(hidden), already rounded to the checkpoint's
// dtype by the model definition): each product rounded once to dtype, as a bf16 PyTorch
// `embeds * normalizer`.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"

namespace kite::cuda {

class DeviceContext;

struct EmbeddingParams {
  // [num_tokens]; ids outside [vocab_begin, vocab_begin + vocab) give zero rows
  const int32_t* token_ids = nullptr;
  const void* table = nullptr;  // [vocab, hidden] of dtype: rows vocab_begin.. of the vocabulary
  void* out = nullptr;          // [num_tokens, hidden] of dtype
  int num_tokens = 0;
  int hidden = 0;
  int vocab = 0;
  DType dtype = DType::kBF16;  // ElementwiseDTypes (kernel_support.h)
  float scale = 1.f;
  int vocab_begin = 0;  // tensor parallelism: the first vocabulary row of this rank's table
};

void embedding(const EmbeddingParams& p, const DeviceContext& dev, cudaStream_t stream);

}  // namespace kite::cuda
