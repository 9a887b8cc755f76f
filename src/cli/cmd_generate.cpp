// `kite generate MODEL`: offline generation through the Engine.
//   kite generate MODEL [--prompt TEXT | --prompt-ids 1,2,3]   one prompt, streamed to stdout
//   kite generate MODEL --input prompts.jsonl --output out.jsonl   a whole file (offline_batch.h)
// Engine flags (engine_args.h) and sampling flags set the defaults of every request; a JSONL
// line's own fields override them.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/engine_args.h"
#include "cli/offline_batch.h"
#include "core/mapped_file.h"
#include "engine/runner_factory.h"
#include "kite/engine.h"
#include "parallel/launch.h"
#include "parallel/mpi_communicator.h"
#include "parallel/world.h"

namespace kite::cli {
namespace {

struct GenerateArgs {
  EngineArgs engine;
  SamplingArgs sampling;
  std::string prompt;
  std::string prompt_ids;
  std::string input;
  std::string output;
  std::string chat_template;  // a file
  bool print_ids = false;
  bool no_progress = false;
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

Status run_single(Engine& engine, const GenerateArgs& a, const SamplingParams& params) {
  GenerateRequest req;
  req.params = params;
  const bool has_tokenizer = engine.tokenize("a", false).ok();
  if (!a.prompt_ids.empty()) {
    KITE_ASSIGN_OR_RETURN(std::vector<int32_t> ids, parse_ids(a.prompt_ids));
    req.prompt = std::move(ids);
  } else if (!a.prompt.empty()) {
    if (!has_tokenizer) {
      return failed_precondition(fmt::format(
          "{} has no tokenizer kite can read (a tokenizer.json beside it or a vocabulary "
          "embedded in the .gguf): pass token ids with --prompt-ids, or --tokenizer",
          a.engine.config.model));
    }
    req.prompt = a.prompt;
  } else if (engine.model_info().bos_token_id) {
    req.prompt = std::vector<int32_t>{*engine.model_info().bos_token_id};  // continue from BOS
  } else {
    return invalid_argument("the model has no BOS token; give --prompt or --prompt-ids");
  }
  const bool print_text = has_tokenizer && !a.print_ids;
  const auto t0 = Clock::now();
  KITE_ASSIGN_OR_RETURN(std::shared_ptr<RequestStream> stream, engine.add_request(std::move(req)));
  std::vector<std::vector<int32_t>> tokens(static_cast<size_t>(params.n));
  std::vector<std::string> texts(static_cast<size_t>(params.n));
  RequestOutput last;
  size_t prompt_len = 0;
  while (auto out = stream->next()) {
    if (!out->prompt_token_ids.empty()) prompt_len = out->prompt_token_ids.size();
    for (const ChoiceDelta& d : out->choices) {
      auto& t = tokens[static_cast<size_t>(d.index)];
      t.insert(t.end(), d.token_ids.begin(), d.token_ids.end());
      texts[static_cast<size_t>(d.index)] += d.text;
      if (print_text && params.n == 1) {  // stream one choice as it comes
        std::fputs(d.text.c_str(), stdout);
        std::fflush(stdout);
      }
    }
    if (out->finished) last = std::move(*out);
  }
  if (!last.error.ok()) return last.error;
  if (print_text && params.n == 1) {
    std::fputs("\n", stdout);
    std::fflush(stdout);
  } else {
    for (int c = 0; c < params.n; ++c) {
      if (params.n > 1) std::printf("--- choice %d ---\n", c);
      if (print_text) {
        std::printf("%s\n", texts[static_cast<size_t>(c)].c_str());
      } else {
        std::printf("%s\n",
                    fmt::format("{}", fmt::join(tokens[static_cast<size_t>(c)], ",")).c_str());
      }
    }
  }
  const RequestMetrics& m = last.metrics;
  const double ttft = std::chrono::duration<double>(m.first_token_time - m.arrival_time).count();
  const double total = std::chrono::duration<double>(Clock::now() - t0).count();
  const double decode =
      std::chrono::duration<double>(m.last_token_time - m.first_token_time).count();
  std::fprintf(stderr,
               "kite generate: prompt %zu tokens (time to first token %.3f s), %lld tokens "
               "generated in %.3f s (%.1f tokens/s decode) on %s\n",
               prompt_len, ttft, static_cast<long long>(m.num_generation_tokens), total,
               m.num_generation_tokens > params.n
                   ? static_cast<double>(m.num_generation_tokens - params.n) / decode
                   : 0.0,
               engine.model_info().backend.c_str());
  return ok_status();
}

Status run(GenerateArgs& a) {
  if (!a.prompt.empty() + !a.prompt_ids.empty() + !a.input.empty() > 1) {
    return invalid_argument("give either --prompt or --prompt-ids or --input, not several");
  }
  if (a.input.empty() != a.output.empty()) {
    return invalid_argument("--input and --output go together");
  }
  KITE_RETURN_IF_ERROR(finish_engine_args(&a.engine));
  const int tp = a.engine.config.tensor_parallel_size;
  const int pp = a.engine.pipeline_parallel_size;
  if (tp >= 1 && pp >= 1 && tp * pp > 1 && !parallel::launched_by_mpi()) {
    // One node, no launcher: start the ranks under mpirun (returns only on error).
    return parallel::relaunch_under_mpirun(tp * pp);
  }
  if (tp != 1 || pp != 1 || parallel::launched_by_mpi()) {
    // Every rank loads its shard; rank 0 runs the engine, the others its steps (docs/parallel.md).
    KITE_ASSIGN_OR_RETURN(std::shared_ptr<parallel::Communicator> world,
                          parallel::init_world({tp, pp, a.engine.pipeline_micro_batches}));
    if (world->rank() != 0) return run_model_worker(a.engine.config);
  }
  KITE_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::create(a.engine.config));
  const SamplingParams defaults =
      sampling_defaults(a.sampling, engine->model_info().default_sampling);
  if (a.input.empty()) {
    KITE_RETURN_IF_ERROR(defaults.validate(engine->model_info().vocab_size));
    Status s = run_single(*engine, a, defaults);
    engine->shutdown(0);
    return s;
  }
  BatchOptions options;
  options.input = a.input;
  options.output = a.output;
  options.progress = !a.no_progress;
  if (!a.chat_template.empty()) {
    auto text = read_file(a.chat_template, kMaxTemplateFileBytes);
    if (!text.ok()) return text.status().with_context("--chat-template");
    options.chat_template = std::move(*text);
  }
  BatchSummary summary;
  Status s = run_offline_batch(*engine, options, defaults, &summary);
  engine->shutdown(0);
  KITE_RETURN_IF_ERROR(s);
  std::fputs(format_summary(summary, engine->stats()).c_str(), stdout);
  if (summary.num_failed > 0) {
    return invalid_argument(fmt::format("{} of {} requests failed (see their \"error\" in {})",
                                        summary.num_failed, summary.num_requests, a.output));
  }
  return ok_status();
}

}  // namespace

KITE_REGISTER_COMMAND(
    generate, "generate", "Generate text offline: one prompt, or a JSONL file of requests",
    [](CLI::App& sub) -> std::function<int()> {
      auto args = std::make_shared<GenerateArgs>();
      sub.add_option("model", args->engine.config.model,
                     "HF model directory, .gguf file, Hub id (org/name[:QUANT]), or config (with "
                     "--load-format dummy)")
          ->required();
      sub.add_option("--prompt", args->prompt, "prompt text");
      sub.add_option("--prompt-ids", args->prompt_ids, "prompt token ids, e.g. 1,2,3");
      sub.add_option("--input", args->input, "JSONL file of requests (see docs/engine.md)");
      sub.add_option("--output", args->output, "JSONL file for the results, in input order");
      sub.add_option("--chat-template", args->chat_template,
                     "Jinja chat template file for \"messages\" lines (default: the model's)");
      sub.add_flag("--print-ids", args->print_ids, "print token ids instead of text");
      sub.add_flag("--no-progress", args->no_progress, "no progress bar");
      // Greedy and 64 tokens unless a flag or generation_config.json says otherwise.
      args->sampling.params.temperature = 0.0;
      args->sampling.params.max_tokens = 64;
      add_sampling_args(sub, &args->sampling);
      add_engine_args(sub, &args->engine);
      return [args]() -> int {
        Status s = run(*args);
        if (!s.ok()) {
          const auto world = parallel::world();
          if (world != nullptr && world->world_size() > 1) {
            std::fprintf(stderr, "kite generate: error: rank %d of %d: %s\n", world->rank(),
                         world->world_size(), s.to_string().c_str());
          } else {
            std::fprintf(stderr, "kite generate: error: %s\n", s.to_string().c_str());
          }
        }
        return parallel::finish_world(s.ok() ? 0 : 1);
      };
    });

}  // namespace kite::cli
