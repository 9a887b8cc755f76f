// WeightStore: a loaded model — its ModelConfig, generation defaults and weights by Hugging
// Face name — and load_model(), which reads every supported on-disk format into one.
//
// Formats (LoadOptions::load_format):
//   "auto"         a directory with config.json (+ model.safetensors, or sharded
//                  model-0000X-of-0000N.safetensors + model.safetensors.index.json), or a .gguf
//   "safetensors"  the directory form only
//   "gguf"         a .gguf file only
//   "dummy"        random weights of the shape config.json describes (a directory or the
//                  config.json path), in the checkpoint's dtype; for benchmarks
//
// Tensor names are Hugging Face's (model.layers.N.self_attn.q_proj.weight, ...), whatever the
// format; GGUF names are mapped and llama-arch Q/K rows un-permuted back to the rotate-half
// layout, so every backend applies one RoPE (neox). GGUF-only extras keep their GGUF name
// (`rope_freqs.weight`, Llama 3.1's RoPE frequency factors).
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

#include "core/mapped_file.h"
#include "core/tensor.h"
#include "kite/status.h"
#include "model/config.h"
#include "model/generation_config.h"
#include "model/gguf.h"

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

 private:
  ModelConfig config_;
  GenerationConfig generation_config_;
  ModelFormat format_ = ModelFormat::kSafetensors;
  std::string path_;
  std::shared_ptr<GgufFile> gguf_;
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::vector<HostBuffer> owned_;
  std::map<std::string, TensorView, std::less<>> tensors_;
};

// Loads a model (see the formats above). Errors name the file and what is wrong: kNotFound
// (no such path, missing config.json or tensor), kInvalidArgument (malformed JSON, wrong
// shapes or dtypes), kDataLoss (truncated or corrupt weight files), kUnimplemented
// (unsupported architecture, dtype or quantization).
Result<std::unique_ptr<WeightStore>> load_model(const std::string& path,
                                                const LoadOptions& options = {});

// The tensors a config requires (name, row-major shape). Optional tensors (o_proj/q_proj
// biases of Llama-family configs without attention_bias) are not listed.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<TensorSpec> expected_tensors(const ModelConfig& config);

// Checks that every expected tensor is present with its shape and a dtype the backends compute
// with (F32, F16, BF16, or a dequantizable GGUF type), adding the tied alias
// (lm_head.weight <-> model.embed_tokens.weight) when only one of them is stored.
Status validate_weights(WeightStore* store);

}  // namespace kite
