#include "models/fusion.h"

#include <optional>

namespace kite {
namespace {

bool reads(const Op& op, ValueId v) {
  if (v == kNoValue) return false;
  if (op.in == v || op.delta == v) return true;
  // A residual epilogue accumulates into its output; a RoPE epilogue/op rewrites its own rows.
  return op.out == v && (op.epilogue == Epilogue::kResidualAdd || op.kind == OpKind::kRopeKvWrite);
}

bool writes(const Op& op, ValueId v) {
  if (v == kNoValue) return false;
  if (op.out == v) return true;
  // A norm that adds a delta writes the sum back into its residual (unless it gathers rows).
  return op.kind == OpKind::kRmsNorm && op.in == v && op.delta != kNoValue && !op.gather_logits;
}

bool touches(const Op& op, ValueId v) { return reads(op, v) || writes(op, v); }

// Index of the next op after `i` that touches `v`, if any.
std::optional<size_t> next_access(const std::vector<Op>& ops, size_t i, ValueId v) {
  for (size_t j = i + 1; j < ops.size(); ++j) {
    if (touches(ops[j], v)) return j;
  }
  return std::nullopt;
}

// Whether op j is the only reader of the value op i defined: j reads it, and after j the value
// is redefined before anyone else reads it (or never read again).
bool sole_reader(const std::vector<Op>& ops, size_t i, size_t j, ValueId v) {
  std::optional<size_t> first = next_access(ops, i, v);
  if (first != j || !reads(ops[j], v)) return false;
  if (writes(ops[j], v)) return true;
  std::optional<size_t> after = next_access(ops, j, v);
  return !after || (!reads(ops[*after], v) && writes(ops[*after], v));
}

bool untouched_between(const std::vector<Op>& ops, size_t i, size_t j, ValueId v) {
  for (size_t k = i + 1; k < j; ++k) {
    if (touches(ops[k], v)) return false;
  }
  return true;
}

bool plain_linear(const Op& op) {
  return op.kind == OpKind::kLinear && op.epilogue == Epilogue::kNone &&
         op.prologue_norm == kNoWeight;
}

void residual_epilogues(std::vector<Op>& ops) {
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!plain_linear(ops[i])) continue;
    const ValueId d = ops[i].out;
    std::optional<size_t> j = next_access(ops, i, d);
    if (!j) continue;
    Op& norm = ops[*j];
    if (norm.kind != OpKind::kRmsNorm || norm.delta != d || norm.in == d) continue;
    if (!sole_reader(ops, i, *j, d) || !untouched_between(ops, i, *j, norm.in)) continue;
    ops[i].out = norm.in;
    ops[i].epilogue = Epilogue::kResidualAdd;
    norm.delta = kNoValue;
  }
}

void norm_prologues(std::vector<Op>& ops) {
  std::vector<Op> out;
  out.reserve(ops.size());
  for (size_t j = 0; j < ops.size(); ++j) {
    const Op& norm = ops[j];
    if (norm.kind == OpKind::kRmsNorm && norm.delta == kNoValue && !norm.gather_logits) {
      std::optional<size_t> k = next_access(ops, j, norm.out);
      if (k && ops[*k].kind == OpKind::kLinear && ops[*k].prologue_norm == kNoWeight &&
          ops[*k].in == norm.out && sole_reader(ops, j, *k, norm.out) &&
          untouched_between(ops, j, *k, norm.in)) {
        ops[*k].in = norm.in;
        ops[*k].prologue_norm = norm.weight;
        ops[*k].eps = norm.eps;
        continue;  // the norm disappears into the linear
      }
    }
    out.push_back(norm);
  }
  ops = std::move(out);
}

void rope_epilogues(std::vector<Op>& ops) {
  std::vector<Op> out;
  out.reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& rope = ops[i];
    if (rope.kind == OpKind::kRopeKvWrite && rope.weight == kNoWeight &&
        rope.weight2 == kNoWeight && !out.empty()) {
      Op& lin = out.back();
      if (lin.kind == OpKind::kLinear && lin.epilogue == Epilogue::kNone && lin.out == rope.in) {
        lin.epilogue = Epilogue::kRopeKv;
        lin.layer = rope.layer;
        lin.rope = rope.rope;
        continue;
      }
    }
    out.push_back(rope);
  }
  ops = std::move(out);
}

void silu_epilogues(std::vector<Op>& ops) {
  std::vector<Op> out;
  out.reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& silu = ops[i];
    if (silu.kind == OpKind::kSiluMul && !out.empty()) {
      Op& lin = out.back();
      // The linear is the op right before; its product must have no reader but the SiLU.
      if (lin.kind == OpKind::kLinear && lin.epilogue == Epilogue::kNone && lin.out == silu.in &&
          sole_reader(ops, i - 1, i, silu.in)) {
        lin.scratch = lin.out;
        lin.out = silu.out;
        lin.epilogue = Epilogue::kSiluMul;
        continue;
      }
    }
    out.push_back(silu);
  }
  ops = std::move(out);
}

}  // namespace

std::vector<Op> fuse_ops(const ModelGraph& g, const FusionOptions& options) {
  std::vector<Op> ops = g.ops;
  if (options.residual_epilogue) residual_epilogues(ops);
  if (options.rope_epilogue) rope_epilogues(ops);
  if (options.silu_epilogue) silu_epilogues(ops);
  if (options.norm_prologue) norm_prologues(ops);
  return ops;
}

ValueId lm_head_input(const ModelGraph& g, const std::vector<Op>& ops) {
  ValueId in = kNoValue;
  for (const Op& op : ops) {
    if (op.kind == OpKind::kLinear && op.out == g.logits && op.prologue_norm == kNoWeight) {
      in = op.in;
    }
  }
  return in;
}

}  // namespace kite
