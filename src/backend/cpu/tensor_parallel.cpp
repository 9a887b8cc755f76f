#include "backend/cpu/tensor_parallel.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "checkpoint/dequant.h"

namespace kite::cpu {
namespace {

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
  for (size_t i = 0; i < graph.weights.size(); ++i) {
    const WeightDecl& d = graph.weights[i];
    CpuWeight& w = (*weights)[i];
    if (!w.present || d.shard == ShardDim::kReplicated) continue;
    KITE_ASSIGN_OR_RETURN(ShardCut cut, shard_cut(d, c, t));
    const Status s = cut.rows.empty() ? keep_cols(cut.col_begin, cut.cols, cut.keep_bias, &w)
                                      : keep_rows(cut.rows, &w);
    if (!s.ok()) return s.with_context(d.name);
  }
  return ok_status();
}

}  // namespace kite::cpu
