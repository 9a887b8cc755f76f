// load_model: a checkpoint read from disk (checkpoint/weights.h) and checked against its
// family's definition — the one place where files meet the declared tensor names.
//
//   safetensors  tensors keep their stored (Hugging Face) names; a multimodal Gemma 3's text
//                model saved as model.language_model.* also answers to the declared
//                language_model.model.* names
//   GGUF         each declared tensor is taken from its llama.cpp name (TensorDecl::gguf_name),
//                llama-arch Q/K rows un-permuted to the rotate-half layout
//   dummy        the declared tensors are created (random, in the config's dtype)
// then validate_weights() binds every declared weight (models/model_weights.h) and adds the
// tied-embedding alias.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/weights.h"
#include "kite/status.h"
#include "models/model_graph.h"

namespace kite {

// Loads a model. Errors name the file and what is wrong: kNotFound (no such path, missing
// config.json or tensor), kInvalidArgument (malformed JSON, wrong shapes or dtypes), kDataLoss
// (truncated or corrupt weight files), kUnimplemented (unsupported architecture, dtype or
// quantization).
Result<std::unique_ptr<WeightStore>> load_model(const std::string& path,
                                                const LoadOptions& options = {});

// The tensors `config`'s definition requires (name, row-major shape), without the optional
// ones (biases a family only uses when present, RoPE frequency factors) and without lm_head
// when the embeddings are tied.
std::vector<TensorSpec> expected_tensors(const ModelConfig& config);

// Checks that every declared tensor is present with its shape and a dtype the backends compute
// with, adding the tied alias (lm_head.weight <-> model.embed_tokens.weight) when only one of
// them is stored, and reports a needed tensor stored in a dtype kite cannot read as such.
Status validate_weights(WeightStore* store);

// Tensors of a multimodal checkpoint's vision tower and projector ("[model.]vision_tower.*",
// "[model.]multi_modal_projector.*": Gemma 3's), which kite does not run; load_model loads the
// text model and logs how many it left aside.
int64_t count_vision_tensors(const WeightStore& store);

// The Hugging Face name the Llama-like definition gives a GGUF tensor (blk.3.attn_q.weight ->
// model.layers.3.self_attn.q_proj.weight); nullopt for names it does not declare.
std::optional<std::string> gguf_to_hf_name(std::string_view gguf_name);

}  // namespace kite
