#include "models/tensor_parallel.h"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "checkpoint/dequant.h"

namespace kite {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Rows [begin, begin + rows) of a row-major matrix (or elements of a vector): a view of the same
// memory.
TensorView row_slice(const TensorView& m, int64_t begin, int64_t rows) {
  TensorView v = m;
  v.data = static_cast<char*>(m.data) +
           (m.ndim == 1 ? dtype_bytes(m.dtype, begin) : begin * m.row_bytes());
  v.shape[0] = rows;
  return v;
}

// The stacked weight's rows a rank keeps: for each range, the part it falls in (a range never
// crosses a part: parts are whole q/k/v or gate/up blocks, or one part holding all of them).
Status keep_rows(const std::vector<RowRange>& ranges, Weight* w) {
  Weight out;
  out.decl = w->decl;
  out.dtype = w->dtype;
  for (const RowRange& r : ranges) {
    int64_t part_begin = 0;
    bool found = false;
    for (size_t p = 0; p < w->parts.size(); ++p) {
      const int64_t rows = w->parts[p].dim(0);
      if (r.begin >= part_begin && r.begin + r.count <= part_begin + rows) {
        out.parts.push_back(row_slice(w->parts[p], r.begin - part_begin, r.count));
        if (!w->bias.empty())
          out.bias.push_back(row_slice(w->bias[p], r.begin - part_begin, r.count));
        found = true;
        break;
      }
      part_begin += rows;
    }
    if (!found) return internal_error("tensor-parallel row range crosses a weight's parts");
  }
  *w = std::move(out);
  return ok_status();
}

// Columns [begin, begin + count) of every part as F32 copies (row by row, so a rank reads only
// its shard's pages twice at most, whatever the dtype).
Status keep_cols(int64_t begin, int64_t count, bool keep_bias, Weight* w,
                 std::deque<std::vector<float>>* owned) {
  Weight out;
  out.decl = w->decl;
  out.dtype = DType::kF32;
  for (const TensorView& part : w->parts) {
    const int64_t rows = part.dim(0), cols = part.dim(1);
    std::vector<float>& f = owned->emplace_back(static_cast<size_t>(rows * count));
    for (int64_t r = 0; r < rows; ++r) {
      KITE_ASSIGN_OR_RETURN(std::vector<float> row, dequantize_to_f32(row_slice(part, r, 1)));
      if (static_cast<int64_t>(row.size()) != cols) return internal_error("row width");
      std::copy(row.begin() + begin, row.begin() + begin + count, f.begin() + r * count);
    }
    out.parts.push_back(TensorView(f.data(), DType::kF32, {rows, count}));
  }
  if (keep_bias) out.bias = std::move(w->bias);
  *w = std::move(out);
  return ok_status();
}

}  // namespace

Result<TpLayout> make_tp_layout(const ModelConfig& c, int rank, int size) {
  TpLayout t;
  t.rank = rank;
  t.size = size;
  if (c.is_moe()) {
    return unimplemented("tensor parallelism of mixture-of-experts models is not implemented yet");
  }
  const int64_t hq = c.num_attention_heads, hkv = c.num_key_value_heads;
  if (hq % size != 0) {
    return invalid_argument(fmt::format(
        "tensor_parallel_size {} does not divide the model's {} attention heads", size, hq));
  }
  if (hkv % size != 0 && size % hkv != 0) {
    return invalid_argument(fmt::format(
        "tensor_parallel_size {} neither divides the model's {} KV heads nor is a multiple of "
        "them (KV heads are split, or replicated when there are fewer than ranks)",
        size, hkv));
  }
  if (c.intermediate_size % size != 0) {
    return invalid_argument(
        fmt::format("tensor_parallel_size {} does not divide the model's intermediate_size {}",
                    size, c.intermediate_size));
  }
  if (c.vocab_size < size) {
    return invalid_argument(
        fmt::format("tensor_parallel_size {} exceeds the vocabulary ({})", size, c.vocab_size));
  }
  t.num_q_heads = hq / size;
  t.q_head_begin = rank * t.num_q_heads;
  if (hkv % size == 0) {
    t.num_kv_heads = hkv / size;
    t.kv_head_begin = rank * t.num_kv_heads;
  } else {
    t.num_kv_heads = 1;  // the KV head of this rank's query heads (all in one GQA group)
    t.kv_head_begin = t.q_head_begin / (hq / hkv);
  }
  t.intermediate = c.intermediate_size / size;
  t.inter_begin = rank * t.intermediate;
  t.vocab_stride = (c.vocab_size + size - 1) / size;
  t.vocab_begin = std::min<int64_t>(rank * t.vocab_stride, c.vocab_size);
  t.vocab_rows = std::min<int64_t>(t.vocab_stride, c.vocab_size - t.vocab_begin);
  if (t.vocab_rows <= 0) {
    return invalid_argument(fmt::format(
        "tensor_parallel_size {} leaves rank {} no vocabulary rows (vocab {}, {} per rank)", size,
        rank, c.vocab_size, t.vocab_stride));
  }
  return t;
}

ModelConfig local_config(const ModelConfig& c, const TpLayout& t) {
  ModelConfig l = c;
  l.num_attention_heads = t.num_q_heads;
  l.num_key_value_heads = t.num_kv_heads;
  l.intermediate_size = t.intermediate;
  l.vocab_size = t.vocab_stride;
  return l;
}

Result<ShardCut> shard_cut(const WeightDecl& d, const ModelConfig& c, const TpLayout& t) {
  const int64_t hd = c.head_dim;
  ShardCut cut;
  switch (d.shard) {
    case ShardDim::kReplicated:
      return internal_error(d.name + ": a replicated weight has no tensor-parallel cut");
    case ShardDim::kVocab:
      cut.rows = {{t.vocab_begin, t.vocab_rows}};
      return cut;
    case ShardDim::kColumn:
      if (ends_with(d.name, "qkv_proj")) {
        const int64_t q = c.q_size(), kv = c.kv_size();
        cut.rows = {{t.q_head_begin * hd, t.num_q_heads * hd},
                    {q + t.kv_head_begin * hd, t.num_kv_heads * hd},
                    {q + kv + t.kv_head_begin * hd, t.num_kv_heads * hd}};
        return cut;
      }
      if (ends_with(d.name, "gate_up_proj")) {
        cut.rows = {{t.inter_begin, t.intermediate},
                    {c.intermediate_size + t.inter_begin, t.intermediate}};
        return cut;
      }
      return unimplemented(d.name + ": no tensor-parallel column split for this weight");
    case ShardDim::kRow:
      cut.keep_bias = t.rank == 0;
      if (ends_with(d.name, "o_proj")) {
        cut.col_begin = t.q_head_begin * hd;
        cut.cols = t.num_q_heads * hd;
        return cut;
      }
      if (ends_with(d.name, "down_proj")) {
        cut.col_begin = t.inter_begin;
        cut.cols = t.intermediate;
        return cut;
      }
      return unimplemented(d.name + ": no tensor-parallel row split for this weight");
  }
  return internal_error(d.name + ": unknown shard dimension");
}

Status shard_model_weights(const ModelGraph& graph, const ModelConfig& c, const TpLayout& t,
                           ModelWeights* weights, std::deque<std::vector<float>>* owned) {
  for (size_t i = 0; i < graph.weights.size(); ++i) {
    const WeightDecl& d = graph.weights[i];
    Weight& w = weights->weights[i];
    if (!w.present() || d.shard == ShardDim::kReplicated || t.size == 1) continue;
    if (w.quantized()) {
      return unimplemented(d.name + ": tensor parallelism over FP8 checkpoint weights");
    }
    KITE_ASSIGN_OR_RETURN(ShardCut cut, shard_cut(d, c, t));
    const Status s = cut.rows.empty() ? keep_cols(cut.col_begin, cut.cols, cut.keep_bias, &w, owned)
                                      : keep_rows(cut.rows, &w);
    if (!s.ok()) return s.with_context(d.name);
  }
  return ok_status();
}

}  // namespace kite
