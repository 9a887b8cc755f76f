// ModelWeights: a graph's declared weights bound to checkpoint tensors — typed (dtype, shape,
// stacked parts, bias, quantization scales) instead of bare pointers. Host views into the
// checkpoint's mappings (nothing is copied); each backend turns them into its own form (the CPU
// backend reads them in place, the CUDA backend uploads and stacks the parts).
#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "kite/status.h"
#include "models/model_graph.h"

namespace kite {

struct QuantScales {
  QuantScheme scheme = QuantScheme::kNone;
  std::vector<TensorView> weight_scale;  // one per part (QuantDecl::weight_scales)
  std::vector<TensorView> input_scale;   // one per part, or empty: dynamic activation scales
  int64_t block_rows = 0, block_cols = 0;
};

struct Weight {
  const WeightDecl* decl = nullptr;
  DType dtype = DType::kF32;      // of every part
  std::vector<TensorView> parts;  // parts[i] is [decl->parts[i] rows, cols] (vectors: [n]);
                                  // empty = an optional weight the checkpoint lacks
  std::vector<TensorView> bias;   // empty, or one [part rows] vector per part
  QuantScales scales;

  bool present() const { return !parts.empty(); }
  int64_t rows() const { return decl->rows; }
  int64_t cols() const { return decl->cols; }
  bool quantized() const { return scales.scheme != QuantScheme::kNone; }
};

struct ModelWeights {
  std::vector<Weight> weights;  // parallel to ModelGraph::weights
  const Weight& operator[](WeightId id) const { return weights[static_cast<size_t>(id)]; }
};

// A checkpoint tensor by its (Hugging Face) name; nullptr when absent.
using TensorLookup = std::function<const TensorView*(std::string_view name)>;

// Binds every declared weight, checking presence (tied embeddings: either tensor serves both),
// shapes (the declaration's), dtypes (matrices: F32/F16/BF16 or a GGUF quantization, FP8 E4M3
// where quantization_config declares it; vectors and biases: F32/F16/BF16; scales F32/BF16) and
// contiguity. Errors name the tensor: kNotFound (missing), kInvalidArgument (shape, dtype,
// a bias on only some parts of a fused layer).
Result<ModelWeights> bind_weights(const ModelGraph& graph, const TensorLookup& lookup);

}  // namespace kite
