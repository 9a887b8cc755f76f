#include "models/model_weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "checkpoint/dequant.h"

namespace kite {
namespace {

std::string shape_str(const TensorView& t) {
  std::vector<int64_t> s(t.shape.begin(), t.shape.begin() + t.ndim);
  return fmt::format("[{}]", fmt::join(s, ", "));
}

bool plain_float(DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }

// A declared shape of {1} is a scalar: [1] or a 0-d tensor.
bool shape_matches(const TensorView& t, const std::vector<int64_t>& shape) {
  if (shape == std::vector<int64_t>{1} && t.numel() == 1 && t.ndim <= 1) return true;
  return t.ndim == static_cast<int>(shape.size()) &&
         std::equal(shape.begin(), shape.end(), t.shape.begin());
}

Result<TensorView> fetch(const TensorLookup& lookup, const TensorDecl& d) {
  const TensorView* t = lookup(d.name);
  if (t == nullptr) return not_found(fmt::format("model has no tensor '{}'", d.name));
  if (!shape_matches(*t, d.shape)) {
    return invalid_argument(fmt::format("tensor '{}' has shape {}, expected [{}] from the config",
                                        d.name, shape_str(*t), fmt::join(d.shape, ", ")));
  }
  if (!t->is_contiguous())
    return invalid_argument(fmt::format("tensor '{}' is not contiguous", d.name));
  return *t;
}

Status check_matrix_dtype(const TensorDecl& d, const TensorView& t, const WeightDecl& w) {
  if (w.quant.scheme != QuantScheme::kNone) {
    if (t.dtype != w.quant.weight_dtype) {
      return invalid_argument(
          fmt::format("tensor '{}' has dtype {}; quantization_config declares {} weights", d.name,
                      dtype_name(t.dtype), dtype_name(w.quant.weight_dtype)));
    }
    return ok_status();
  }
  if (!can_dequantize(t.dtype)) {
    return invalid_argument(
        fmt::format("tensor '{}' has dtype {}; weight matrices must be F32, F16 or BF16 or a GGUF "
                    "quantization (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)",
                    d.name, dtype_name(t.dtype)));
  }
  return ok_status();
}

Status check_vector_dtype(const TensorDecl& d, const TensorView& t) {
  if (!plain_float(t.dtype)) {
    return invalid_argument(
        fmt::format("tensor '{}' has dtype {}; norm weights and biases must be F32, F16 or BF16",
                    d.name, dtype_name(t.dtype)));
  }
  return ok_status();
}

Result<Weight> bind_one(const WeightDecl& w, const TensorLookup& lookup) {
  Weight b;
  b.decl = &w;
  // Tied embeddings: a checkpoint stores the shared matrix under either name.
  auto lookup_part = [&](const TensorDecl& d) -> Result<TensorView> {
    if (!w.tied_to.empty() && lookup(d.name) == nullptr && lookup(w.tied_to) != nullptr) {
      TensorDecl tied = d;
      tied.name = w.tied_to;
      return fetch(lookup, tied);
    }
    if (w.kind == WeightKind::kLinear && w.tied_to.empty() && d.name == "lm_head.weight" &&
        lookup(d.name) == nullptr) {
      return not_found("model has no tensor 'lm_head.weight' (and tie_word_embeddings is false)");
    }
    return fetch(lookup, d);
  };
  if (w.optional && lookup(w.parts[0].name) == nullptr) return b;
  for (const TensorDecl& d : w.parts) {
    KITE_ASSIGN_OR_RETURN(TensorView t, lookup_part(d));
    if (w.kind == WeightKind::kVector) {
      KITE_RETURN_IF_ERROR(check_vector_dtype(d, t));
    } else {
      KITE_RETURN_IF_ERROR(check_matrix_dtype(d, t, w));
    }
    if (!b.parts.empty() && t.dtype != b.dtype) {
      return invalid_argument(
          fmt::format("tensor '{}' is {} but '{}' is {}; the layers fused into "
                      "{} must share one dtype",
                      d.name, dtype_name(t.dtype), w.parts[0].name, dtype_name(b.dtype), w.name));
    }
    b.dtype = t.dtype;
    b.parts.push_back(t);
  }
  if (w.bias_mode != BiasMode::kNone) {
    size_t present = 0;
    for (const TensorDecl& d : w.bias) present += lookup(d.name) != nullptr ? 1 : 0;
    if (w.bias_mode == BiasMode::kRequired || present > 0) {
      if (present != w.bias.size() && w.bias_mode == BiasMode::kIfPresent) {
        return invalid_argument(
            fmt::format("{} of the {} layers fused into {} have a bias; all or none must", present,
                        w.bias.size(), w.name));
      }
      for (const TensorDecl& d : w.bias) {
        KITE_ASSIGN_OR_RETURN(TensorView t, fetch(lookup, d));
        KITE_RETURN_IF_ERROR(check_vector_dtype(d, t));
        b.bias.push_back(t);
      }
    }
  }
  if (w.quant.scheme != QuantScheme::kNone) {
    b.scales.scheme = w.quant.scheme;
    b.scales.block_rows = w.quant.block_rows;
    b.scales.block_cols = w.quant.block_cols;
    auto scale = [&](const TensorDecl& d) -> Result<TensorView> {
      KITE_ASSIGN_OR_RETURN(TensorView t, fetch(lookup, d));
      if (t.dtype != DType::kF32 && t.dtype != DType::kBF16) {
        return invalid_argument(fmt::format("scale tensor '{}' has dtype {}; expected F32 or BF16",
                                            d.name, dtype_name(t.dtype)));
      }
      return t;
    };
    for (const TensorDecl& d : w.quant.weight_scales) {
      KITE_ASSIGN_OR_RETURN(TensorView t, scale(d));
      b.scales.weight_scale.push_back(t);
    }
    for (const TensorDecl& d : w.quant.input_scales) {
      KITE_ASSIGN_OR_RETURN(TensorView t, scale(d));
      b.scales.input_scale.push_back(t);
    }
  }
  return b;
}

}  // namespace

Result<ModelWeights> bind_weights(const ModelGraph& graph, const TensorLookup& lookup) {
  ModelWeights out;
  out.weights.reserve(graph.weights.size());
  for (const WeightDecl& w : graph.weights) {
    KITE_ASSIGN_OR_RETURN(Weight b, bind_one(w, lookup));
    out.weights.push_back(std::move(b));
  }
  if (graph.rope_freqs != kNoWeight) {
    const Weight& f = out[graph.rope_freqs];
    if (f.present() && f.dtype != DType::kF32) {
      return invalid_argument(fmt::format("tensor '{}' is {}, expected F32[{}]",
                                          f.decl->parts[0].name, f.parts[0].to_string(),
                                          f.decl->rows));
    }
  }
  return out;
}

}  // namespace kite
