// Host half of the attention: path choice, work lists and split-KV sizing.
#include <algorithm>
#include <numeric>
#include <string>

#include "backend/cuda/attention.h"
#include "backend/cuda/kernel_support.h"
#include "core/check.h"

namespace kite::cuda {

Result<AttentionPath> attention_path(int head_dim, int num_q_heads, int num_kv_heads) {
  if (num_kv_heads <= 0 || num_q_heads % num_kv_heads != 0) {
    return invalid_argument("attention: num_q_heads " + std::to_string(num_q_heads) +
                            " is not a multiple of num_kv_heads " + std::to_string(num_kv_heads));
  }
  const int group = num_q_heads / num_kv_heads;
  if (TensorCoreHeadDims::contains(head_dim)) {
    if (!tensor_core_attention_supports(head_dim, group)) {
      return unimplemented("attention: GQA group " + std::to_string(group) +
                           " is not supported (1 to " + std::to_string(kPrefillMaxGroup) + ")");
    }
    return AttentionPath::kTensorCore;
  }
  if (generic_attention_supports(head_dim)) return AttentionPath::kGeneric;
  return unimplemented("attention: head_dim " + std::to_string(head_dim) + " is not supported (" +
                       TensorCoreHeadDims::to_string() + ", or even values up to " +
                       std::to_string(kGenericMaxHeadDim) + ")");
}

bool attention_path_supports(AttentionPath path, DType dtype) {
  return path == AttentionPath::kGeneric ? GenericDTypes::contains(dtype)
                                         : TensorCoreDTypes::contains(dtype);
}

int prefill_tokens_per_tile(int num_q_heads, int num_kv_heads) {
  return 64 / (num_q_heads / num_kv_heads);
}

int decode_num_splits(int num_decode, int num_kv_heads, int max_seq_len, int num_sms) {
  if (num_decode <= 0) return 1;
  const int ctas = num_decode * num_kv_heads;
  int splits = (2 * num_sms + ctas - 1) / ctas;
  if (max_seq_len > 0) splits = std::min(splits, (max_seq_len + 63) / 64);
  splits = std::min(splits, kMaxDecodeSplits);
  splits = std::min(splits, kMaxSplitRows / num_decode);
  return std::max(splits, 1);
}

AttentionPlan plan_attention(const int32_t* query_start_loc, const int32_t* seq_lens, int num_seqs,
                             int max_seq_len, int num_q_heads, int num_kv_heads, int num_sms) {
  AttentionPlan plan;
  const int group = num_q_heads / num_kv_heads;
  const bool decode_kernel_ok = decode_kernel_supports_group(group);
  const int tpt = prefill_tokens_per_tile(num_q_heads, num_kv_heads);
  struct Tile {
    int32_t seq, q_start, kv_end;
  };
  std::vector<Tile> tiles;
  for (int s = 0; s < num_seqs; ++s) {
    const int qlen = query_start_loc[s + 1] - query_start_loc[s];
    if (qlen == 0) continue;
    if (qlen == 1 && decode_kernel_ok) {
      plan.decode_seqs.push_back(s);
      continue;
    }
    const int prefix = seq_lens[s] - qlen;
    for (int q0 = 0; q0 < qlen; q0 += tpt) {
      tiles.push_back({s, q0, prefix + std::min(qlen, q0 + tpt)});
    }
  }
  // Longest KV range first: the big tiles start early and the short ones fill the tail.
  std::stable_sort(tiles.begin(), tiles.end(),
                   [](const Tile& a, const Tile& b) { return a.kv_end > b.kv_end; });
  for (const Tile& t : tiles) {
    plan.prefill_tile_seq.push_back(t.seq);
    plan.prefill_tile_q_start.push_back(t.q_start);
  }
  plan.num_decode = static_cast<int>(plan.decode_seqs.size());
  plan.all_decode = plan.num_decode == num_seqs;
  if (plan.all_decode) plan.decode_seqs.clear();
  plan.num_splits = decode_num_splits(plan.num_decode, num_kv_heads, max_seq_len, num_sms);
  return plan;
}

size_t decode_workspace_bytes(int max_rows, int num_q_heads, int head_dim) {
  return static_cast<size_t>(max_rows) * num_q_heads * (head_dim + 2) * sizeof(float);
}

size_t decode_counter_bytes(int max_decode, int num_kv_heads) {
  return static_cast<size_t>(max_decode) * num_kv_heads * sizeof(int32_t);
}

void attention(const AttentionParams& p, AttentionPath path, const DeviceContext& dev,
               cudaStream_t stream) {
  if (path == AttentionPath::kGeneric) {
    attention_generic(p, dev, stream);
    return;
  }
  if (p.num_prefill_tiles > 0) attention_prefill(p, dev, stream);
  if (p.num_decode > 0) attention_decode(p, dev, stream);
}

}  // namespace kite::cuda
