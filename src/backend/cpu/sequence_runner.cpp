#include "backend/cpu/sequence_runner.h"

#include <fmt/format.h>

namespace kite {

SequenceRunner::SequenceRunner(ModelRunner* runner, int block_size, int64_t num_blocks)
    : runner_(runner), block_size_(block_size), num_blocks_(num_blocks) {}

Result<std::vector<float>> SequenceRunner::feed(std::span<const int32_t> tokens, bool all_logits) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return invalid_argument("feed: no tokens");
  if (length_ + n > capacity()) {
    return out_of_range(fmt::format("sequence of {} tokens does not fit the KV cache ({} tokens)",
                                    length_ + n, capacity()));
  }
  ForwardBatch b;
  b.token_ids.assign(tokens.begin(), tokens.end());
  const int64_t new_len = length_ + n;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t pos = length_ + i;
    b.positions.push_back(static_cast<int32_t>(pos));
    b.slot_mapping.push_back(
        static_cast<int32_t>((1 + pos / block_size_) * block_size_ + pos % block_size_));
  }
  b.query_start_loc = {0, static_cast<int32_t>(n)};
  b.seq_lens = {static_cast<int32_t>(new_len)};
  const int64_t blocks = (new_len + block_size_ - 1) / block_size_;
  b.block_table_indptr = {0, static_cast<int32_t>(blocks)};
  for (int64_t i = 0; i < blocks; ++i) b.block_table.push_back(static_cast<int32_t>(1 + i));
  if (all_logits) {
    for (int64_t i = 0; i < n; ++i) b.logits_indices.push_back(static_cast<int32_t>(i));
  } else {
    b.logits_indices = {static_cast<int32_t>(n - 1)};
  }
  b.max_query_len = static_cast<int32_t>(n);
  b.max_seq_len = static_cast<int32_t>(new_len);

  TensorView logits;
  KITE_RETURN_IF_ERROR(runner_->forward(b, &logits));
  std::vector<float> out(static_cast<size_t>(logits.numel()));
  KITE_RETURN_IF_ERROR(runner_->logits_to_host(logits, out.data()));
  length_ = new_len;
  return out;
}

}  // namespace kite
