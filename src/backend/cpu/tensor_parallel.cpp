#include "backend/cpu/tensor_parallel.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "checkpoint/dequant.h"

namespace kite::cpu {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

struct RowRange {
  int64_t begin = 0, count = 0;  // rows of the stacked weight
};

// Rows [begin, begin + rows) of a row-major matrix: a view of the same memory.
TensorView row_slice(const TensorView& m, int64_t begin, int64_t rows) {
  TensorView v = m;
  v.data = static_cast<char*>(m.data) + begin * m.row_bytes();
  v.shape[0] = rows;
  return v;
}

// The stacked weight's rows a rank keeps: for each range, the parts it falls in (a range never
// crosses a part: parts are whole q/k/v or gate/up blocks, or one part holding all of them).
Status keep_rows(const std::vector<RowRange>& ranges, CpuWeight* w) {
  CpuWeight out;
  out.present = w->present;
  if (!w->owned.empty()) return unimplemented("tensor parallelism over dequantized FP8 weights");
  for (const RowRange& r : ranges) {
    int64_t part_begin = 0;
    bool found = false;
    for (size_t p = 0; p < w->parts.size(); ++p) {
      const int64_t rows = w->part_rows[p];
      if (r.begin >= part_begin && r.begin + r.count <= part_begin + rows) {
        out.parts.push_back(row_slice(w->parts[p], r.begin - part_begin, r.count));
        out.part_rows.push_back(r.count);
        if (!w->bias.empty()) {
          const auto first = w->bias[p].begin() + (r.begin - part_begin);
          out.bias.emplace_back(first, first + r.count);
        }
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

// Columns [begin, begin + count) of every part, as F32 copies (row by row, so a rank holds only
// its shard even for a quantized matrix).
Status keep_cols(int64_t begin, int64_t count, bool keep_bias, CpuWeight* w) {
  if (!w->owned.empty()) return unimplemented("tensor parallelism over dequantized FP8 weights");
  CpuWeight out;
  out.present = w->present;
  for (const TensorView& part : w->parts) {
    const int64_t rows = part.dim(0), cols = part.dim(1);
    std::vector<float> f(static_cast<size_t>(rows * count));
    for (int64_t r = 0; r < rows; ++r) {
      KITE_ASSIGN_OR_RETURN(std::vector<float> row, dequantize_to_f32(row_slice(part, r, 1)));
      if (static_cast<int64_t>(row.size()) != cols) return internal_error("row width");
      std::memcpy(f.data() + r * count, row.data() + begin,
                  static_cast<size_t>(count) * sizeof(float));
    }
    out.owned.push_back(std::move(f));
    out.part_rows.push_back(rows);
  }
  for (size_t p = 0; p < out.owned.size(); ++p) {
    out.parts.push_back(TensorView(out.owned[p].data(), DType::kF32, {out.part_rows[p], count}));
  }
  if (keep_bias) out.bias = std::move(w->bias);
  *w = std::move(out);
  return ok_status();
}

}  // namespace

Status shard_weights(const ModelGraph& graph, const ModelConfig& c, const TpLayout& t,
                     std::vector<CpuWeight>* weights) {
  const int64_t hd = c.head_dim;
  for (size_t i = 0; i < graph.weights.size(); ++i) {
    const WeightDecl& d = graph.weights[i];
    CpuWeight& w = (*weights)[i];
    if (!w.present || d.shard == ShardDim::kReplicated) continue;
    Status s;
    switch (d.shard) {
      case ShardDim::kReplicated:
        break;
      case ShardDim::kVocab:
        s = keep_rows({{t.vocab_begin, t.vocab_rows}}, &w);
        break;
      case ShardDim::kColumn:
        if (ends_with(d.name, "qkv_proj")) {
          const int64_t q = c.q_size(), kv = c.kv_size();
          s = keep_rows({{t.q_head_begin * hd, t.num_q_heads * hd},
                         {q + t.kv_head_begin * hd, t.num_kv_heads * hd},
                         {q + kv + t.kv_head_begin * hd, t.num_kv_heads * hd}},
                        &w);
        } else if (ends_with(d.name, "gate_up_proj")) {
          s = keep_rows({{t.inter_begin, t.intermediate},
                         {c.intermediate_size + t.inter_begin, t.intermediate}},
                        &w);
        } else {
          s = unimplemented("no tensor-parallel column split for this weight");
        }
        break;
      case ShardDim::kRow:
        if (ends_with(d.name, "o_proj")) {
          s = keep_cols(t.q_head_begin * hd, t.num_q_heads * hd, t.rank == 0, &w);
        } else if (ends_with(d.name, "down_proj")) {
          s = keep_cols(t.inter_begin, t.intermediate, t.rank == 0, &w);
        } else {
          s = unimplemented("no tensor-parallel row split for this weight");
        }
        break;
    }
    if (!s.ok()) return s.with_context(d.name);
  }
  return ok_status();
}

}  // namespace kite::cpu
