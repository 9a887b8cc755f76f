// Engine::create: loads the model, its tokenizer and chat template, picks the backend
// (executor/runner_factory.h) and starts the engine.
#include <algorithm>
#include <filesystem>

#include "core/logging.h"
#include "engine/engine_impl.h"
#include "engine/frontend_text_io.h"
#include "executor/runner_factory.h"
#include "kite/engine.h"

namespace kite {
namespace {

void add_unique(std::vector<int32_t>* ids, int32_t id) {
  if (std::find(ids->begin(), ids->end(), id) == ids->end()) ids->push_back(id);
}

// Where the tokenizer lives: --tokenizer, else the model directory (or the folder of a .gguf
// or config.json). Empty when there is no tokenizer.json there.
std::string tokenizer_dir(const EngineConfig& c) {
  namespace fs = std::filesystem;
  if (!c.tokenizer.empty()) return c.tokenizer;
  std::error_code ec;
  fs::path p(c.model);
  if (!fs::is_directory(p, ec)) p = p.parent_path();
  if (fs::exists(p / "tokenizer.json", ec)) return p.string();
  return {};
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::create(const EngineConfig& config) {
  KITE_ASSIGN_OR_RETURN(LoadedModel model, create_model_runner(config));
  const ModelConfig& mc = model.weights->config();
  const GenerationConfig& gc = model.weights->generation_config();
  EngineParts parts;
  parts.config = config;
  ModelInfo& info = parts.info;
  info.architecture = mc.architecture;
  info.eos_token_ids = mc.eos_token_ids;
  for (int32_t id : gc.eos_token_ids) add_unique(&info.eos_token_ids, id);
  info.bos_token_id = gc.bos_token_id ? gc.bos_token_id : mc.bos_token_id;
  // generation_config.json's sampling defaults (what vLLM applies by default).
  SamplingParams& d = info.default_sampling;
  if (gc.temperature) d.temperature = *gc.temperature;
  if (gc.top_p) d.top_p = *gc.top_p;
  if (gc.top_k) d.top_k = static_cast<int>(*gc.top_k);
  if (gc.min_p) d.min_p = *gc.min_p;
  if (gc.repetition_penalty) d.repetition_penalty = *gc.repetition_penalty;
  if (gc.max_new_tokens) d.max_tokens = *gc.max_new_tokens;

  const std::string tok_dir = tokenizer_dir(config);
  if (!tok_dir.empty()) {
    auto tok = Tokenizer::from_pretrained(tok_dir);
    if (!tok.ok()) return tok.status().with_context("loading the tokenizer from " + tok_dir);
    std::shared_ptr<const Tokenizer> tokenizer = std::move(*tok);
    if (auto eos = tokenizer->eos_token_id()) add_unique(&info.eos_token_ids, *eos);
    KITE_ASSIGN_OR_RETURN(parts.text, make_frontend_text_io(std::move(tokenizer)));
  } else {
    KITE_LOG_WARN("no tokenizer.json for {}: the engine takes and returns token ids only",
                  config.model);
  }
  parts.runner = std::move(model.runner);
  return EngineFactory::create(std::move(parts));
}

}  // namespace kite
