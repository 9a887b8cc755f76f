#include "models/graph_builder.h"

#include <fmt/format.h>

namespace kite {
namespace {

std::string with_suffix(const std::string& module, std::string_view suffix) {
  return module.empty() ? std::string() : module + std::string(suffix);
}

}  // namespace

GraphBuilder::GraphBuilder(const ModelConfig& config, std::string family) : config_(config) {
  graph_.family = std::move(family);
}

WeightId GraphBuilder::add(WeightDecl w) {
  graph_.weights.push_back(std::move(w));
  return static_cast<WeightId>(graph_.weights.size() - 1);
}

Result<WeightId> GraphBuilder::linear(std::string name, const std::vector<Part>& parts,
                                      int64_t cols, ShardDim shard, BiasMode bias,
                                      bool quantizable) {
  WeightDecl w;
  w.name = std::move(name);
  w.kind = WeightKind::kLinear;
  w.cols = cols;
  w.shard = shard;
  w.bias_mode = bias;
  const QuantizationConfig& q = config_.quantization;
  size_t quantized = 0;
  for (const Part& p : parts) {
    w.parts.push_back(TensorDecl{p.module + ".weight",
                                 with_suffix(p.gguf_module, ".weight"),
                                 {p.rows, cols},
                                 p.gguf_permuted_heads,
                                 p.gguf_expert});
    w.rows += p.rows;
    if (bias != BiasMode::kNone) {
      w.bias.push_back(
          TensorDecl{p.module + ".bias", with_suffix(p.gguf_module, ".bias"), {p.rows}, 0});
    }
    if (quantizable && q.quantizes(p.module)) ++quantized;
  }
  if (quantized != 0 && quantized != parts.size()) {
    return invalid_argument(fmt::format(
        "quantization_config quantizes only some of the layers fused into {} ({} of {}); they "
        "must all be quantized or all be ignored",
        w.name, quantized, parts.size()));
  }
  if (quantized > 0) {
    w.quant.scheme = q.scheme;
    w.quant.weight_dtype = DType::kF8E4M3;
    w.quant.block_rows = q.block_rows;
    w.quant.block_cols = q.block_cols;
    for (const Part& p : parts) {
      std::vector<int64_t> shape = {1};
      if (q.scheme == QuantScheme::kFp8PerChannel) shape = {p.rows, 1};
      if (q.scheme == QuantScheme::kFp8Block) {
        shape = {(p.rows + q.block_rows - 1) / q.block_rows,
                 (cols + q.block_cols - 1) / q.block_cols};
      }
      w.quant.weight_scales.push_back(
          TensorDecl{p.module + "." + q.weight_scale_name, "", shape, 0});
      if (q.activations == ActivationQuant::kStaticPerTensor) {
        w.quant.input_scales.push_back(TensorDecl{p.module + ".input_scale", "", {1}, 0});
      }
    }
  }
  return add(std::move(w));
}

WeightId GraphBuilder::embedding(std::string tensor, std::string gguf_tensor, int64_t rows,
                                 int64_t cols) {
  WeightDecl w;
  w.name = tensor.substr(0, tensor.rfind('.'));
  w.kind = WeightKind::kEmbedding;
  w.rows = rows;
  w.cols = cols;
  w.shard = ShardDim::kVocab;
  w.parts.push_back(TensorDecl{std::move(tensor), std::move(gguf_tensor), {rows, cols}, 0});
  return add(std::move(w));
}

Result<WeightId> GraphBuilder::lm_head(std::string tensor, std::string gguf_tensor,
                                       WeightId embedding) {
  const WeightDecl e = graph_.weight(embedding);
  WeightDecl w;
  w.name = tensor.substr(0, tensor.rfind('.'));
  w.kind = WeightKind::kLinear;
  w.rows = e.rows;
  w.cols = e.cols;
  w.shard = ShardDim::kVocab;
  if (config_.tie_word_embeddings) {
    w.tied_to = e.parts[0].name;
    graph_.weights[static_cast<size_t>(embedding)].tied_to = tensor;
  }
  const QuantizationConfig& q = config_.quantization;
  if (q.quantizes(w.name)) {
    return unimplemented(fmt::format(
        "quantization_config quantizes {}; kite keeps the LM head in its checkpoint dtype (list "
        "it in the config's ignore list)",
        w.name));
  }
  w.parts.push_back(TensorDecl{std::move(tensor), std::move(gguf_tensor), {e.rows, e.cols}, 0});
  return add(std::move(w));
}

WeightId GraphBuilder::vector(std::string tensor, std::string gguf_tensor, int64_t n, bool optional,
                              float offset) {
  WeightDecl w;
  w.name = tensor.substr(0, tensor.rfind('.'));
  w.kind = WeightKind::kVector;
  w.rows = n;
  w.cols = 1;
  w.optional = optional;
  w.vector_offset = offset;
  w.parts.push_back(TensorDecl{std::move(tensor), std::move(gguf_tensor), {n}, 0});
  return add(std::move(w));
}

ValueId GraphBuilder::value(std::string name, int64_t width, RowSpace rows, bool f32) {
  graph_.values.push_back(ValueDecl{std::move(name), width, rows, f32});
  return static_cast<ValueId>(graph_.values.size() - 1);
}

int GraphBuilder::rope(RopeDecl r) {
  graph_.ropes.push_back(r);
  return static_cast<int>(graph_.ropes.size() - 1);
}

int GraphBuilder::moe(MoeDecl m) {
  for (size_t e = 0; e < m.gate_up.size(); ++e) {
    graph_.weights[static_cast<size_t>(m.gate_up[e])].expert = static_cast<int32_t>(e);
    graph_.weights[static_cast<size_t>(m.down[e])].expert = static_cast<int32_t>(e);
  }
  graph_.moes.push_back(std::move(m));
  return static_cast<int>(graph_.moes.size() - 1);
}

Op& GraphBuilder::push_op(OpKind kind, ValueId in, ValueId out) {
  Op& op = graph_.ops.emplace_back();
  op.kind = kind;
  op.in = in;
  op.out = out;
  return op;
}

void GraphBuilder::moe_op(ValueId in, int moe_index, ValueId out) {
  push_op(OpKind::kMoe, in, out).moe = moe_index;
}

void GraphBuilder::embed(WeightId table, ValueId out, float scale) {
  Op& op = push_op(OpKind::kEmbedding, kNoValue, out);
  op.scale = scale;
  op.weight = table;
}

void GraphBuilder::rms_norm(ValueId residual, ValueId delta, WeightId weight, ValueId out) {
  Op& op = push_op(OpKind::kRmsNorm, residual, out);
  op.delta = delta;
  op.weight = weight;
  op.eps = static_cast<float>(config_.rms_norm_eps);
}

void GraphBuilder::final_norm(ValueId residual, ValueId delta, WeightId weight,
                              ValueId out_logit_rows) {
  rms_norm(residual, delta, weight, out_logit_rows);
  graph_.ops.back().gather_logits = true;
}

void GraphBuilder::linear_op(ValueId in, WeightId weight, ValueId out) {
  push_op(OpKind::kLinear, in, out).weight = weight;
}

void GraphBuilder::rope_kv_write(ValueId qkv, int layer, WeightId q_norm, WeightId k_norm,
                                 int rope_index) {
  Op& op = push_op(OpKind::kRopeKvWrite, qkv, qkv);
  op.rope = rope_index;
  op.layer = layer;
  op.weight = q_norm;
  op.weight2 = k_norm;
  op.eps = static_cast<float>(config_.rms_norm_eps);
}

void GraphBuilder::attention(ValueId qkv, int layer, ValueId out, float scale, int sliding_window,
                             float logit_softcap) {
  Op& op = push_op(OpKind::kAttention, qkv, out);
  op.softcap = logit_softcap;
  op.layer = layer;
  op.scale = scale;
  op.sliding_window = sliding_window;
}

void GraphBuilder::silu_mul(ValueId gate_up, ValueId out) {
  push_op(OpKind::kSiluMul, gate_up, out);
}

void GraphBuilder::gelu_tanh_mul(ValueId gate_up, ValueId out) {
  push_op(OpKind::kGeluTanhMul, gate_up, out);
}

void GraphBuilder::softcap(ValueId in, ValueId out, float cap) {
  push_op(OpKind::kSoftcap, in, out).softcap = cap;
}

Result<ModelGraph> GraphBuilder::finish() {
  KITE_RETURN_IF_ERROR(check_graph(graph_));
  return std::move(graph_);
}

}  // namespace kite
