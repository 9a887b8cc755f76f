#include "models/model_graph.h"

#include <fmt/format.h>

namespace kite {

std::string_view shard_dim_name(ShardDim d) {
  switch (d) {
    case ShardDim::kReplicated:
      return "replicated";
    case ShardDim::kColumn:
      return "column";
    case ShardDim::kRow:
      return "row";
    case ShardDim::kVocab:
      return "vocab";
  }
  return "?";
}

std::string_view op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::kEmbedding:
      return "embedding";
    case OpKind::kRmsNorm:
      return "rms_norm";
    case OpKind::kLinear:
      return "linear";
    case OpKind::kRopeKvWrite:
      return "rope_kv_write";
    case OpKind::kAttention:
      return "attention";
    case OpKind::kSiluMul:
      return "silu_mul";
    case OpKind::kGeluTanhMul:
      return "gelu_tanh_mul";
    case OpKind::kSoftcap:
      return "softcap";
    case OpKind::kMoe:
      return "moe";
  }
  return "?";
}

std::vector<const TensorDecl*> ModelGraph::tensors() const {
  std::vector<const TensorDecl*> out;
  for (const WeightDecl& w : weights) {
    for (const TensorDecl& t : w.parts) out.push_back(&t);
    for (const TensorDecl& t : w.bias) out.push_back(&t);
    for (const TensorDecl& t : w.quant.weight_scales) out.push_back(&t);
    for (const TensorDecl& t : w.quant.input_scales) out.push_back(&t);
  }
  return out;
}

namespace {

Status bad(const Op& op, size_t index, std::string_view what) {
  return internal_error(
      fmt::format("model graph: op {} ({}): {}", index, op_kind_name(op.kind), what));
}

}  // namespace

Status check_graph(const ModelGraph& g) {
  const auto nv = static_cast<ValueId>(g.values.size());
  const auto nw = static_cast<WeightId>(g.weights.size());
  auto value_ok = [&](ValueId v) { return v >= 0 && v < nv; };
  auto weight_ok = [&](WeightId w) { return w >= 0 && w < nw; };
  auto width = [&](ValueId v) { return g.value(v).width; };
  for (const WeightDecl& w : g.weights) {
    int64_t rows = 0;
    for (const TensorDecl& t : w.parts) rows += t.shape.empty() ? 0 : t.shape[0];
    if (rows != w.rows || w.parts.empty()) {
      return internal_error(fmt::format("model graph: weight {}: parts have {} rows, declared {}",
                                        w.name, rows, w.rows));
    }
    if (w.bias_mode != BiasMode::kNone && w.bias.size() != w.parts.size()) {
      return internal_error(fmt::format("model graph: weight {}: one bias per part", w.name));
    }
  }
  for (size_t i = 0; i < g.ops.size(); ++i) {
    const Op& op = g.ops[i];
    if (!value_ok(op.out)) return bad(op, i, "no output value");
    const bool fused = op.prologue_norm != kNoWeight || op.epilogue != Epilogue::kNone;
    if (fused && op.kind != OpKind::kLinear) return bad(op, i, "fusion fields on a non-linear");
    switch (op.kind) {
      case OpKind::kEmbedding:
        if (!weight_ok(op.weight) || g.weight(op.weight).kind != WeightKind::kEmbedding ||
            g.weight(op.weight).cols != width(op.out)) {
          return bad(op, i, "needs an embedding table as wide as its output");
        }
        break;
      case OpKind::kRmsNorm:
        if (!value_ok(op.in) || !weight_ok(op.weight) || width(op.in) != width(op.out) ||
            g.weight(op.weight).rows != width(op.in) ||
            (op.delta != kNoValue && (!value_ok(op.delta) || width(op.delta) != width(op.in)))) {
          return bad(op, i, "residual, delta, weight and output widths differ");
        }
        if (op.gather_logits != (g.value(op.out).rows == RowSpace::kLogits)) {
          return bad(op, i, "a gathering norm writes logits rows, any other token rows");
        }
        break;
      case OpKind::kLinear: {
        if (!value_ok(op.in) || !weight_ok(op.weight)) return bad(op, i, "operands");
        const WeightDecl& w = g.weight(op.weight);
        const int64_t out_w = op.epilogue == Epilogue::kSiluMul ? w.rows / 2 : w.rows;
        if (w.cols != width(op.in) || out_w != width(op.out)) {
          return bad(op, i,
                     fmt::format("{} is [{}, {}] between widths {} and {}", w.name, w.rows, w.cols,
                                 width(op.in), width(op.out)));
        }
        if (op.prologue_norm != kNoWeight && !weight_ok(op.prologue_norm)) {
          return bad(op, i, "prologue norm weight");
        }
        break;
      }
      case OpKind::kRopeKvWrite:
      case OpKind::kAttention:
        if (!value_ok(op.in) || op.layer < 0 || op.layer >= g.num_kv_layers) {
          return bad(op, i, "needs an input and a KV-cache layer in range");
        }
        if (op.kind == OpKind::kRopeKvWrite &&
            (op.rope < 0 || op.rope >= static_cast<int>(g.ropes.size()))) {
          return bad(op, i, "rope index out of range");
        }
        if (op.softcap < 0) return bad(op, i, "negative soft-cap");
        break;
      case OpKind::kSiluMul:
      case OpKind::kGeluTanhMul:
        if (!value_ok(op.in) || width(op.in) != 2 * width(op.out)) {
          return bad(op, i, "input must be twice as wide as the output");
        }
        break;
      case OpKind::kSoftcap:
        if (!value_ok(op.in) || width(op.in) != width(op.out) || !(op.softcap > 0) ||
            g.value(op.in).rows != g.value(op.out).rows) {
          return bad(op, i, "needs a positive cap and an output shaped like its input");
        }
        break;
      case OpKind::kMoe: {
        if (!value_ok(op.in) || width(op.in) != width(op.out) || op.moe < 0 ||
            op.moe >= static_cast<int>(g.moes.size())) {
          return bad(op, i, "needs an MoE block in range and an output as wide as its input");
        }
        const MoeDecl& m = g.moes[static_cast<size_t>(op.moe)];
        const int64_t h = width(op.in);
        if (!weight_ok(m.router) || g.weight(m.router).cols != h || m.gate_up.empty() ||
            m.gate_up.size() != m.down.size() ||
            g.weight(m.router).rows != static_cast<int64_t>(m.gate_up.size()) || m.top_k <= 0 ||
            m.top_k > static_cast<int>(m.gate_up.size())) {
          return bad(op, i, "router, expert count and top_k disagree");
        }
        for (size_t e = 0; e < m.gate_up.size(); ++e) {
          if (!weight_ok(m.gate_up[e]) || !weight_ok(m.down[e]) ||
              g.weight(m.gate_up[e]).rows != 2 * m.intermediate ||
              g.weight(m.gate_up[e]).cols != h || g.weight(m.down[e]).rows != h ||
              g.weight(m.down[e]).cols != m.intermediate) {
            return bad(op, i,
                       fmt::format("expert {} weights are not [2 * {}, {}] and [{}, {}]", e,
                                   m.intermediate, h, h, m.intermediate));
          }
        }
        break;
      }
    }
  }
  if (g.ropes.empty()) return internal_error("model graph: no rotary embedding declared");
  for (const RopeDecl& r : g.ropes) {
    if (r.rotary_dim <= 0 || r.rotary_dim % 2 != 0) {
      return internal_error(fmt::format("model graph: rotary dim {}", r.rotary_dim));
    }
  }
  if (!value_ok(g.logits) || !g.value(g.logits).f32) {
    return internal_error("model graph: no F32 logits value");
  }
  return ok_status();
}

std::string format_ops(const ModelGraph& g, const std::vector<Op>& ops) {
  std::string s;
  auto v = [&](ValueId id) { return id == kNoValue ? std::string("-") : g.value(id).name; };
  auto w = [&](WeightId id) { return id == kNoWeight ? std::string("-") : g.weight(id).name; };
  for (const Op& op : ops) {
    s += fmt::format("{} {} <- {}", op_kind_name(op.kind), v(op.out), v(op.in));
    if (op.delta != kNoValue) s += " + " + v(op.delta);
    if (op.weight != kNoWeight) s += " [" + w(op.weight) + "]";
    if (op.layer >= 0) s += fmt::format(" layer {}", op.layer);
    if (op.kind == OpKind::kRopeKvWrite && op.rope != 0) s += fmt::format(" rope {}", op.rope);
    if (op.kind == OpKind::kAttention && op.sliding_window > 0) {
      s += fmt::format(" window {}", op.sliding_window);
    }
    if (op.softcap > 0) s += fmt::format(" softcap {}", op.softcap);
    if (op.kind == OpKind::kMoe) {
      const MoeDecl& m = g.moes[static_cast<size_t>(op.moe)];
      s += fmt::format(" [{}] {} experts top {}{}", w(m.router), m.gate_up.size(), m.top_k,
                       m.renormalize ? " renormalized" : "");
    }
    if (op.gather_logits) s += " gather";
    if (op.prologue_norm != kNoWeight) s += " prologue(" + w(op.prologue_norm) + ")";
    switch (op.epilogue) {
      case Epilogue::kNone:
        break;
      case Epilogue::kResidualAdd:
        s += " epilogue(residual)";
        break;
      case Epilogue::kRopeKv:
        s += fmt::format(" epilogue(rope_kv layer {})", op.layer);
        break;
      case Epilogue::kSiluMul:
        s += " epilogue(silu_mul)";
        break;
    }
    s += '\n';
  }
  return s;
}

}  // namespace kite
