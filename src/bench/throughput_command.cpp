// `kite bench throughput` (in-process, on the Engine API). Built when the engine library is.
#include <fmt/format.h>

#include <algorithm>

#include "bench/command_util.h"
#include "bench/model_info.h"
#include "bench/presets.h"
#include "bench/result.h"
#include "parallel/world.h"

namespace kite::bench {

namespace bj = boost::json;
using Clock = std::chrono::steady_clock;

Result<std::unique_ptr<Engine>> create_engine(const EngineConfig& config) {
  return Engine::create(config);
}

namespace {

std::vector<int32_t> special_ids(const ModelInfo& info) {
  std::vector<int32_t> ids = info.eos_token_ids;
  if (info.bos_token_id) ids.push_back(*info.bos_token_id);
  return ids;
}

// A note when the model is not the shape the preset's numbers are about.
std::optional<std::string> shape_note(const PresetRun& p, const bj::object& model) {
  auto num = [&](const char* k) { return get_number(model, k).value_or(0); };
  bool ok = true;
  if (p.model_hint == "Llama-3-8B") {
    ok = num("hidden_size") == 4096 && num("num_hidden_layers") == 32 &&
         num("intermediate_size") == 14336 && num("vocab_size") == 128256;
  } else if (p.model_hint == "Llama-3.2-3B") {
    ok =
        num("hidden_size") == 3072 && num("num_hidden_layers") == 28 && num("vocab_size") == 128256;
  }
  if (ok) return std::nullopt;
  return fmt::format(
      "{} is defined for the {} shape; this model differs, so the numbers are not "
      "comparable with the reference figures",
      p.preset, p.model_hint);
}

}  // namespace

Result<ThroughputOutcome> run_one_throughput(const ThroughputCommand& cmd, Engine* engine,
                                             const PresetRun* preset, int64_t num_prompts,
                                             const std::vector<double>& percentiles, const Slo& slo,
                                             const std::string& label) {
  std::unique_ptr<Engine> owned;
  double load_s = -1;
  EngineConfig config = cmd.engine;
  if (preset != nullptr && preset->max_model_len > 0 && !cmd.max_model_len_set) {
    config.max_model_len = preset->max_model_len;
  }
  if (engine == nullptr) {
    const auto t = Clock::now();
    Result<std::unique_ptr<Engine>> created = create_engine(config);
    if (!created.ok()) return created.status().with_context("creating the engine");
    load_s = std::chrono::duration<double>(Clock::now() - t).count();
    owned = std::move(*created);
    engine = owned.get();
  }
  const ModelInfo& info = engine->model_info();
  ThroughputOptions run = cmd.run;
  run.progress = cmd.out.progress;
  run.progress_label = "throughput";
  std::vector<PromptSpec> prompts;
  if (preset != nullptr) {
    run.ignore_eos = true;
    if (preset->max_concurrency > 0) run.max_concurrency = preset->max_concurrency;
    if (preset->max_concurrency == 1 && run.num_warmups == 0) run.num_warmups = 1;
    run.progress_label = preset->name;
    if (preset->chat_prompts) {
      if (info.vocab_size < 128256) {
        return invalid_argument(fmt::format(
            "{}'s chat prompts are Llama-3 token ids; the model's vocabulary ({}) is smaller "
            "(use a Llama-3-family model such as the Llama-3.2-3B shape)",
            preset->preset, info.vocab_size));
      }
      KITE_ASSIGN_OR_RETURN(prompts, w4_chat_prompts(num_prompts, preset->output_len));
    } else {
      DatasetOptions d = cmd.data;
      d.name = "random";
      d.input_len = preset->input_len;
      d.output_len = preset->output_len;
      d.range_ratio = 0;
      d.prefix_len = 0;
      KITE_ASSIGN_OR_RETURN(
          prompts, make_prompts(d, num_prompts, info.vocab_size, special_ids(info), nullptr));
    }
  } else {
    TokenCounter counter = [engine](const std::string& text) -> Result<int64_t> {
      KITE_ASSIGN_OR_RETURN(std::vector<int32_t> ids, engine->tokenize(text, true));
      return static_cast<int64_t>(ids.size());
    };
    KITE_ASSIGN_OR_RETURN(
        prompts, make_prompts(cmd.data, num_prompts, info.vocab_size, special_ids(info), counter));
  }
  run.progress_label += cmd.out.progress_suffix;
  KITE_ASSIGN_OR_RETURN(ThroughputRun tr, run_throughput_benchmark(*engine, prompts, run));
  ThroughputOutcome o;
  o.metrics = compute_metrics(tr.samples, tr.duration_s, slo, percentiles);
  bj::object& r = o.result = new_result("throughput", label);
  r["engine"] =
      bj::object{{"name", "kite"}, {"version", version_string()}, {"backend", info.backend}};
  bj::object model = model_json(config.model);
  model["dtype"] = config.dtype;
  model["served_model_name"] = info.served_model_name;
  model["max_model_len"] = info.max_model_len;
  model["vocab_size"] = info.vocab_size;
  if (!info.architecture.empty()) model["architecture"] = info.architecture;
  model["num_kv_blocks"] = info.num_kv_blocks;
  model["block_size"] = info.block_size;
  model["kv_cache_dtype"] = info.kv_cache_dtype;
  model["kv_cache_bytes"] = info.kv_cache_bytes;
  r["model"] = model;
  bj::object workload = preset != nullptr ? preset_workload_json(*preset, num_prompts)
                                          : dataset_workload_json(cmd.data, num_prompts);
  workload["ignore_eos"] = run.ignore_eos;
  workload["request_rate"] = "inf";
  if (run.max_concurrency > 0) workload["max_concurrency"] = run.max_concurrency;
  r["workload"] = std::move(workload);
  bj::object cfg = engine_config_json(config);
  if (load_s >= 0) cfg["model_load_s"] = load_s;
  if (run.temperature) cfg["temperature"] = *run.temperature;
  cfg["num_warmups"] = run.num_warmups;
  r["config"] = std::move(cfg);
  r["engine_stats"] = bj::object{
      {"num_preemptions", tr.stats_after.num_preemptions - tr.stats_before.num_preemptions},
      {"prefix_cache_queries",
       tr.stats_after.prefix_cache_queries - tr.stats_before.prefix_cache_queries},
      {"prefix_cache_hits", tr.stats_after.prefix_cache_hits - tr.stats_before.prefix_cache_hits},
      {"num_steps", tr.stats_after.num_steps - tr.stats_before.num_steps}};
  std::vector<std::string> notes;
  if (preset != nullptr) {
    if (auto n = shape_note(*preset, r["model"].as_object())) notes.push_back(*n);
  }
  add_run_sections(r, o.metrics, tr.samples, slo, cmd.out, std::move(notes));
  return o;
}

int run_throughput_presets(const ThroughputCommand& cmd, const std::vector<PresetRun>& runs,
                           const std::vector<double>& percentiles, const Slo& slo,
                           const std::string& label) {
  // W1 sizes max_model_len per dataset (one engine each); W4 and W5 share one engine. Over
  // several ranks (docs/parallel.md) the ranks load the model once, so W1's datasets share one
  // engine too, sized for the longest.
  const auto world = parallel::world();
  const bool several_ranks = world != nullptr && world->world_size() > 1;
  const bool shared_engine = runs.front().preset != "W1" || several_ranks;
  std::unique_ptr<Engine> engine;
  if (shared_engine) {
    EngineConfig config = cmd.engine;
    if (!cmd.max_model_len_set) {
      config.max_model_len = runs.front().max_model_len;
      for (const PresetRun& p : runs) {
        if (several_ranks) config.max_model_len = std::max(config.max_model_len, p.max_model_len);
      }
    }
    Result<std::unique_ptr<Engine>> created = create_engine(config);
    if (!created.ok()) return report_error("throughput", created.status());
    engine = std::move(*created);
  }
  int failures = 0;
  for (const PresetRun& p : runs) {
    Result<ThroughputOutcome> o =
        run_one_throughput(cmd, engine.get(), &p, p.num_prompts, percentiles, slo, label);
    if (!o.ok()) {
      report_error(fmt::format("throughput ({})", p.name), o.status());
      ++failures;
      continue;
    }
    print_summary(p.name, o->metrics, percentiles);
    Status w = write_result_file(o->result, result_path(cmd.out, label, p.file_stem, false));
    if (!w.ok()) {
      report_error("throughput", w);
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace kite::bench
