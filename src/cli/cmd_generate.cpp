// `kite generate MODEL`: loads a model (HF directory, .gguf, or --load-format dummy), runs one
// sequence on the CPU backend and prints the continuation: as text when the model has a
// tokenizer (tokenizer.json in its directory), else (or with --print-ids) as token ids.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_model_runner.h"
#include "backend/cpu/sequence_runner.h"
#include "cli/command.h"
#include "frontend/tokenizer.h"
#include "kite/sampling_params.h"
#include "model/weights.h"
#include "sampling/sampling_batch_builder.h"

namespace kite::cli {
namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  std::string prompt_ids;
  int64_t max_tokens = 64;
  double temperature = 0.0;
  double top_p = 1.0;
  int top_k = 0;
  uint64_t seed = 0;
  bool ignore_eos = false;
  bool print_ids = false;
  std::string load_format = "auto";
  int threads = 0;
};

Result<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string_view item(text.data() + pos, comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    int32_t id = 0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || id < 0) {
      return invalid_argument(fmt::format("--prompt-ids: '{}' is not a token id", item));
    }
    ids.push_back(id);
    pos = comma + 1;
  }
  return ids;
}

std::string join_ids(const std::vector<int32_t>& ids) {
  return fmt::format("{}", fmt::join(ids, ","));
}

Status run(const GenerateArgs& a) {
  if (!a.prompt.empty() && !a.prompt_ids.empty()) {
    return invalid_argument("give either --prompt or --prompt-ids, not both");
  }
  SamplingParams params;
  params.temperature = a.temperature;
  params.top_p = a.top_p;
  params.top_k = a.top_k;
  params.seed = a.seed;
  params.max_tokens = a.max_tokens;
  params.ignore_eos = a.ignore_eos;
  if (a.max_tokens < 1) return invalid_argument("--max-tokens must be at least 1");

  LoadOptions load;
  load.load_format = a.load_format;
  load.seed = a.seed;
  load.num_threads = a.threads;
  KITE_ASSIGN_OR_RETURN(std::unique_ptr<WeightStore> loaded, load_model(a.model, load));
  std::shared_ptr<const WeightStore> weights = std::move(loaded);
  const ModelConfig& config = weights->config();
  KITE_RETURN_IF_ERROR(params.validate(config.vocab_size));

  // The tokenizer of a Hugging Face directory (GGUF-embedded vocabularies are not read yet).
  std::unique_ptr<Tokenizer> tokenizer;
  if (weights->format() != ModelFormat::kGguf) {
    auto tok = Tokenizer::from_pretrained(weights->path());
    if (tok.ok()) {
      tokenizer = std::move(*tok);
    } else if (tok.status().code() != StatusCode::kNotFound) {
      return tok.status();
    }
  }

  std::vector<int32_t> prompt;
  if (!a.prompt.empty()) {
    if (!tokenizer) {
      return unimplemented(fmt::format(
          "{} has no tokenizer kite can read (tokenizer.json; GGUF vocabularies are not "
          "supported yet): pass token ids with --prompt-ids",
          a.model));
    }
    prompt = tokenizer->encode(a.prompt);
  } else if (!a.prompt_ids.empty()) {
    KITE_ASSIGN_OR_RETURN(prompt, parse_ids(a.prompt_ids));
  } else if (config.bos_token_id) {
    prompt.push_back(*config.bos_token_id);  // no prompt: continue from BOS
  } else {
    return invalid_argument("the model has no BOS token; give --prompt-ids");
  }
  for (int32_t id : prompt) {
    if (id >= config.vocab_size) {
      return invalid_argument(fmt::format(
          "--prompt-ids: token id {} is outside the vocabulary [0, {})", id, config.vocab_size));
    }
  }
  const int64_t max_len = config.max_position_embeddings;
  if (static_cast<int64_t>(prompt.size()) >= max_len) {
    return out_of_range(
        fmt::format("the prompt has {} tokens; the model's context is {}", prompt.size(), max_len));
  }
  const int64_t total =
      std::min<int64_t>(max_len, static_cast<int64_t>(prompt.size()) + a.max_tokens);

  CpuRunnerOptions ropts;
  ropts.num_threads = a.threads;
  KITE_ASSIGN_OR_RETURN(auto runner, CpuModelRunner::create(weights, ropts));
  KvCacheConfig kv;
  const int64_t blocks = (total + kv.block_size - 1) / kv.block_size + 1;  // + the null block
  KITE_RETURN_IF_ERROR(runner->allocate_kv_cache(blocks, kv));
  SequenceRunner seq(runner.get(), kv.block_size, blocks);

  std::vector<int32_t> eos = config.eos_token_ids;
  for (int32_t id : weights->generation_config().eos_token_ids) eos.push_back(id);
  SamplingBatchBuilder builder;
  std::vector<int32_t> output;
  const auto t0 = std::chrono::steady_clock::now();
  double prefill_s = 0;
  std::vector<int32_t> next = prompt;
  while (seq.length() + static_cast<int64_t>(next.size()) <= total &&
         static_cast<int64_t>(output.size()) < a.max_tokens) {
    KITE_ASSIGN_OR_RETURN(std::vector<float> logits, seq.feed(next));
    if (output.empty()) {
      prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    builder.reset();
    SamplingRow row;
    row.params = &params;
    row.seed = choice_seed(a.seed, 0);
    row.step = static_cast<uint32_t>(output.size());
    row.prompt_token_ids = prompt;
    row.output_token_ids = output;
    row.eos_token_ids = eos;
    builder.add_row(row);
    const SamplingBatch& batch = builder.finish();
    SamplerOutput sampled;
    TensorView view(logits.data(), DType::kF32, {1, config.vocab_size});
    KITE_RETURN_IF_ERROR(runner->sample(view, batch, &sampled));
    const int32_t token = sampled.token_ids[0];
    output.push_back(token);
    if (!a.ignore_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) break;
    next = {token};
  }
  const double total_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (tokenizer && !a.print_ids) {
    std::printf("%s\n", tokenizer->decode(output, /*skip_special_tokens=*/true).c_str());
  } else {
    std::printf("%s\n", join_ids(output).c_str());
  }
  std::fflush(stdout);
  const double decode_s = total_s - prefill_s;
  std::fprintf(stderr,
               "kite generate: prompt %zu tokens (prefill %.3f s), %zu tokens generated "
               "(%.1f tokens/s decode), %d threads\n",
               prompt.size(), prefill_s, output.size(),
               output.size() > 1 ? static_cast<double>(output.size() - 1) / decode_s : 0.0,
               runner->num_threads());
  return ok_status();
}

}  // namespace

KITE_REGISTER_COMMAND(
    generate, "generate", "Generate a continuation of one prompt on the CPU",
    [](CLI::App& sub) -> std::function<int()> {
      auto args = std::make_shared<GenerateArgs>();
      sub.add_option("model", args->model, "HF model directory, .gguf file, or config (dummy)")
          ->required();
      sub.add_option("--prompt", args->prompt, "prompt text");
      sub.add_option("--prompt-ids", args->prompt_ids, "prompt token ids, e.g. 1,2,3");
      sub.add_option("--max-tokens", args->max_tokens, "tokens to generate (default 64)");
      sub.add_option("--temperature", args->temperature, "0 = greedy (default)");
      sub.add_option("--top-p", args->top_p, "nucleus sampling mass (default 1)");
      sub.add_option("--top-k", args->top_k, "keep the k most likely tokens (0 = off)");
      sub.add_option("--seed", args->seed, "random seed (sampling and dummy weights)");
      sub.add_flag("--ignore-eos", args->ignore_eos, "keep generating after EOS");
      sub.add_flag("--print-ids", args->print_ids, "print token ids, not text");
      sub.add_option("--load-format", args->load_format, "auto|safetensors|gguf|dummy")
          ->check(CLI::IsMember({"auto", "safetensors", "gguf", "dummy"}));
      sub.add_option("--threads", args->threads, "CPU threads (0 = all cores)");
      return [args]() -> int {
        Status s = run(*args);
        if (!s.ok()) {
          std::fprintf(stderr, "kite generate: error: %s\n", s.to_string().c_str());
          return 1;
        }
        return 0;
      };
    });

}  // namespace kite::cli
