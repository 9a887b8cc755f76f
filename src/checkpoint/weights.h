// WeightStore: a loaded checkpoint — its ModelConfig, generation defaults and tensors by name —
// and the format readers that fill one. models/load.h's load_model() puts them together with
// the model definition (which names and shapes the family needs).
//
// Formats (LoadOptions::load_format):
//   "auto"         a directory with config.json (+ model.safetensors, or sharded
//                  model-0000X-of-0000N.safetensors + model.safetensors.index.json), or a .gguf
//   "safetensors"  the directory form only
//   "gguf"         a .gguf file only
//   "dummy"        random weights of the shape config.json describes (a directory or the
//                  config.json path), in the checkpoint's dtype; for benchmarks
//
// After load_model, tensor names are Hugging Face's (model.layers.N.self_attn.q_proj.weight,
// ...), whatever the format: the model definition maps GGUF names and un-permutes llama-arch
// Q/K rows back to the rotate-half layout, so every backend applies one RoPE (neox).
//
// Weights are views into the memory-mapped files where possible (no host copy); tensors that
// must be rewritten (un-permuted Q/K, dummy weights) are owned by the store. Quantized GGUF
// weights stay quantized (DType kQ8_0, kQ4_K, ...); backends dequantize them (model/dequant.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/config.h"
#include "checkpoint/generation_config.h"
#include "checkpoint/gguf.h"
#include "core/mapped_file.h"
#include "core/tensor.h"
#include "kite/status.h"

namespace kite {

enum class ModelFormat { kSafetensors, kGguf, kDummy };
std::string_view model_format_name(ModelFormat f);

struct LoadOptions {
  std::string load_format = "auto";  // "auto" | "safetensors" | "gguf" | "dummy"
  uint64_t seed = 0;                 // dummy weights
  int num_threads = 0;               // dummy weight generation; 0 = hardware concurrency
};

class WeightStore {
 public:
  WeightStore() = default;
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  const ModelConfig& config() const { return config_; }
  const GenerationConfig& generation_config() const { return generation_config_; }
  ModelFormat format() const { return format_; }
  // The directory or file the model came from.
  const std::string& path() const { return path_; }
  // The parsed GGUF file (tokenizer metadata lives there), nullptr for other formats.
  const GgufFile* gguf() const { return gguf_.get(); }
  std::shared_ptr<const GgufFile> gguf_shared() const { return gguf_; }

  // nullptr when absent.
  const TensorView* find(std::string_view name) const;
  // kNotFound naming the tensor when absent.
  Result<TensorView> get(std::string_view name) const;
  std::vector<std::string> names() const;
  size_t size() const { return tensors_.size(); }
  // Bytes of all distinct weights (aliases counted once).
  int64_t weight_bytes() const;

  // ---- building (used by the loaders) -------------------------------------------------------
  void set_config(ModelConfig c) { config_ = std::move(c); }
  void set_generation_config(GenerationConfig g) { generation_config_ = std::move(g); }
  void set_format(ModelFormat f) { format_ = f; }
  void set_path(std::string p) { path_ = std::move(p); }
  void set_gguf(std::shared_ptr<GgufFile> g) { gguf_ = std::move(g); }
  void keep_file(std::shared_ptr<MappedFile> f) { files_.push_back(std::move(f)); }
  // Takes ownership of a buffer and returns its data pointer.
  void* own(HostBuffer buf);
  // Adds or replaces a tensor.
  void put(std::string name, const TensorView& view) { tensors_[std::move(name)] = view; }
  void erase(std::string_view name);
  // A stored tensor kite cannot view (e.g. an unsupported dtype): reported only if needed.
  void set_unusable(std::string name, Status why) { unusable_[std::move(name)] = std::move(why); }
  const Status* unusable(std::string_view name) const {
    auto it = unusable_.find(name);
    return it == unusable_.end() ? nullptr : &it->second;
  }

 private:
  ModelConfig config_;
  GenerationConfig generation_config_;
  ModelFormat format_ = ModelFormat::kSafetensors;
  std::string path_;
  std::shared_ptr<GgufFile> gguf_;
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::vector<HostBuffer> owned_;
  std::map<std::string, TensorView, std::less<>> tensors_;
  std::map<std::string, Status, std::less<>> unusable_;
};

// A tensor to create (dummy weights): name, row-major shape and how to initialise it.
struct TensorSpec {
  enum class Init : uint8_t {
    kEmbedding,  // uniform(-1, 1)
    kMatrix,     // uniform with variance 1 / in_features (shape[1])
    kNorm,       // 1 +- 0.1
    kBias,       // +- 0.1
  };
  std::string name;
  std::vector<int64_t> shape;
  Init init = Init::kMatrix;
};

// ---- the format readers behind load_model (models/load.h) ------------------------------------

// Resolves `path` and LoadOptions::load_format to a format and reads it into `store`: a Hugging
// Face directory (config.json, generation_config.json, safetensors: tensors by their stored
// names), a .gguf file (config from its metadata, tensors by their GGUF names; see
// gguf_unpermute_rows), or for "dummy" the configs only (then make_dummy_weights). Errors name
// the file: kNotFound, kInvalidArgument, kDataLoss, kUnimplemented.
Status read_checkpoint(const std::string& path, const LoadOptions& options, WeightStore* store);

// Random weights for `specs` in store->config().torch_dtype. Values are a deterministic function
// of the seed, the tensor name and the element index, whatever the thread count.
// kResourceExhausted when they would not fit in memory.
Status make_dummy_weights(const std::vector<TensorSpec>& specs, const LoadOptions& options,
                          WeightStore* store);

// Rows [num_heads * head_dim, cols] of a llama-architecture GGUF Q or K matrix back in
// Hugging Face's rotate-half order (the inverse of llama.cpp's convert permutation); any
// dtype whose rows are whole blocks. Returns the store-owned copy.
Result<TensorView> gguf_unpermute_rows(const TensorView& view, int64_t num_heads, int64_t head_dim,
                                       WeightStore* store);

}  // namespace kite
