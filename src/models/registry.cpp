#include "models/registry.h"

#include <fmt/format.h>

namespace kite {

Result<ModelGraph> build_model_graph(const ModelConfig& config) {
  switch (config.family) {
    case ModelFamily::kLlama:
    case ModelFamily::kMistral:
    case ModelFamily::kQwen2:
    case ModelFamily::kQwen3:
    case ModelFamily::kPhi3:
    case ModelFamily::kQwen3Moe:
    case ModelFamily::kMixtral:
      return build_llama_graph(config);
    case ModelFamily::kGemma2:
    case ModelFamily::kGemma3:
      return build_gemma_graph(config);
  }
  return unimplemented(
      fmt::format("no model definition for family {}", model_family_name(config.family)));
}

}  // namespace kite
