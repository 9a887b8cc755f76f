// Engine::create: loads the model, its tokenizer and chat template, picks the backend
// (engine/runner_factory.h) and starts the engine.
#include <algorithm>
#include <filesystem>
#include <thread>

#include "core/logging.h"
#include "engine/engine_impl.h"
#include "engine/frontend_text_io.h"
#include "engine/pooling_config.h"
#include "engine/runner_factory.h"
#include "hub/hub.h"
#include "kite/engine.h"

namespace kite {
namespace {

void add_unique(std::vector<int32_t>* ids, int32_t id) {
  if (std::find(ids->begin(), ids->end(), id) == ids->end()) ids->push_back(id);
}

bool is_gguf_path(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0;
}

// The tokenizer: --tokenizer (a directory with tokenizer.json, or a .gguf); else, for a .gguf
// model, the vocabulary embedded in it (tokenizer.ggml.*); else tokenizer.json in the model
// directory (or beside the .gguf / config.json). nullptr when there is none: the engine then
// takes and returns token ids only. A GGUF whose embedded tokenizer kite cannot build
// (an unsupported tokenizer.ggml.model) is only a warning, so --prompt-ids still work.
// *path: where the tokenizer came from.
Result<std::shared_ptr<const Tokenizer>> load_tokenizer(const EngineConfig& c, std::string* path) {
  namespace fs = std::filesystem;
  if (!c.tokenizer.empty()) {
    *path = c.tokenizer;
    auto tok = is_gguf_path(c.tokenizer) ? Tokenizer::from_gguf_file(c.tokenizer)
                                         : Tokenizer::from_pretrained(c.tokenizer);
    if (!tok.ok()) return tok.status().with_context("loading the tokenizer from " + c.tokenizer);
    return std::shared_ptr<const Tokenizer>(std::move(*tok));
  }
  std::error_code ec;
  fs::path p(c.model);
  if (is_gguf_path(c.model) && c.load_format != "dummy") {
    auto tok = Tokenizer::from_gguf_file(c.model);
    *path = c.model;
    if (tok.ok()) return std::shared_ptr<const Tokenizer>(std::move(*tok));
    path->clear();
    if (tok.status().code() != StatusCode::kNotFound &&
        tok.status().code() != StatusCode::kUnimplemented) {
      return tok.status().with_context("loading the tokenizer embedded in " + c.model);
    }
    KITE_LOG_WARN("{}", tok.status().to_string());
  }
  if (!fs::is_directory(p, ec)) p = p.parent_path();
  if (fs::exists(p / "tokenizer.json", ec)) {
    *path = p.string();
    auto tok = Tokenizer::from_pretrained(p.string());
    if (!tok.ok()) return tok.status().with_context("loading the tokenizer from " + p.string());
    return std::shared_ptr<const Tokenizer>(std::move(*tok));
  }
  return std::shared_ptr<const Tokenizer>();
}

// The grammar compiler over the tokenizer's vocabulary. Special tokens get no piece: a grammar
// never produces them (their text, e.g. "<|eot_id|>", must not appear inside a JSON string);
// the EOS ids end a complete output.
Result<std::unique_ptr<structured::GrammarCompiler>> make_grammar_compiler(
    const Tokenizer& tok, int64_t model_vocab, const std::vector<int32_t>& eos, int timeout_ms) {
  structured::StructuredVocab v;
  // Ids past the model's logits can never be sampled: the masks cover exactly the logits.
  const int64_t n = std::min(tok.vocab_size(), model_vocab);
  v.encoded.resize(static_cast<size_t>(n));
  for (int64_t id = 0; id < n; ++id) {
    const auto t = static_cast<int32_t>(id);
    if (!tok.is_special(t)) v.encoded[static_cast<size_t>(id)] = tok.id_to_token(t);
  }
  // Nor the thinking delimiters (added tokens some vocabularies do not flag special): an answer
  // that contained "</think>" would be split by the reasoning parser.
  for (const char* delimiter : {"<think>", "</think>"}) {
    if (auto id = tok.token_to_id(delimiter); id && *id < n) v.encoded[static_cast<size_t>(*id)].clear();
  }
  v.kind = structured::detect_vocab_kind(v.encoded);
  // SentencePiece-style vocabularies ("▁" words) prepend a space to the first word.
  v.add_prefix_space = v.kind == structured::VocabKind::kByteFallback;
  v.model_vocab_size = model_vocab;
  v.stop_token_ids = eos;
  structured::GrammarCompilerOptions o;
  o.max_compile_ms = timeout_ms;
  o.num_threads =
      static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency() / 2, 1, 8));
  return structured::GrammarCompiler::create(std::move(v), o);
}

// Settings checked before the model is loaded, so a bad value costs no load time.
Status validate_before_load(const EngineConfig& c) {
  if (!(c.gpu_memory_utilization > 0.0 && c.gpu_memory_utilization <= 1.0)) {
    return invalid_argument("gpu_memory_utilization must be in (0, 1], got " +
                            std::to_string(c.gpu_memory_utilization));
  }
  if (c.tensor_parallel_size < 1) {
    return invalid_argument("tensor_parallel_size must be >= 1, got " +
                            std::to_string(c.tensor_parallel_size));
  }
  if (c.runner != "generate" && c.runner != "pooling") {
    return invalid_argument("runner must be generate or pooling, got '" + c.runner + "'");
  }
  return ok_status();
}

// Hub ids in `model` / `tokenizer` -> paths in the Hugging Face cache (downloading what is
// missing, src/hub/hub.h); local paths are kept. A hub model is served under its id.
Status resolve_hub_ids(EngineConfig* c) {
  hub::HubOptions options;
  options.cache_dir = c->download_dir;
  options.revision = c->revision;
  const std::string model_spec = c->model;
  const hub::Need need = c->load_format == "dummy" ? hub::Need::kConfig : hub::Need::kModel;
  KITE_ASSIGN_OR_RETURN(hub::Resolved model, hub::resolve(model_spec, need, options));
  if (!model.repo_id.empty()) {
    KITE_LOG_INFO("{}: {}", model_spec, model.path);
    if (c->served_model_name.empty()) c->served_model_name = model_spec;
    c->model = model.path;
  }
  if (!c->tokenizer.empty()) {
    const std::optional<hub::RepoRef> ref = hub::parse_repo_ref(c->tokenizer);
    options.revision = c->tokenizer_revision;
    if (options.revision.empty() && ref && model.repo_id == ref->repo_id) {
      options.revision = c->revision;
    }
    KITE_ASSIGN_OR_RETURN(hub::Resolved tok,
                          hub::resolve(c->tokenizer, hub::Need::kTokenizer, options));
    c->tokenizer = tok.path;
  }
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::create(const EngineConfig& requested) {
  KITE_RETURN_IF_ERROR(validate_before_load(requested));
  EngineConfig config = requested;
  KITE_RETURN_IF_ERROR(resolve_hub_ids(&config));
  KITE_ASSIGN_OR_RETURN(LoadedModel model, create_model_runner(config));
  const ModelConfig& mc = model.weights->config();
  const GenerationConfig& gc = model.weights->generation_config();
  EngineParts parts;
  parts.config = config;
  ModelInfo& info = parts.info;
  info.model_path = config.model;
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

  KITE_ASSIGN_OR_RETURN(std::shared_ptr<const Tokenizer> tokenizer,
                        load_tokenizer(config, &info.tokenizer_path));
  if (tokenizer) {
    if (auto eos = tokenizer->eos_token_id()) add_unique(&info.eos_token_ids, *eos);
    info.chat_template_supports_tools =
        tokenizer->chat_template() &&
        tokenizer->chat_template()->find("tools") != std::string::npos;
    parts.think_start_token = tokenizer->token_to_id("<think>");
    parts.think_end_token = tokenizer->token_to_id("</think>");
    parts.make_grammar_compiler = [tokenizer, vocab = mc.vocab_size, eos = info.eos_token_ids,
                                   timeout = config.grammar_compile_timeout_ms] {
      return make_grammar_compiler(*tokenizer, vocab, eos, timeout);
    };
    KITE_ASSIGN_OR_RETURN(parts.text, make_frontend_text_io(std::move(tokenizer)));
  } else {
    KITE_LOG_WARN("no tokenizer for {}: the engine takes and returns token ids only", config.model);
  }
  info.runner = config.runner;
  if (config.runner == "pooling") {
    if (!model.runner->supports_pooling()) {
      return unimplemented("the " +
                           std::string(model.runner->device() == Device::kCuda ? "cuda" : "cpu") +
                           " backend does not run pooling (embedding) models yet; use "
                           "--device cpu");
    }
    KITE_ASSIGN_OR_RETURN(info.pooling, read_pooling_config(config.model, mc.hidden_size));
  }
  parts.runner = std::move(model.runner);
  return EngineFactory::create(std::move(parts));
}

}  // namespace kite
