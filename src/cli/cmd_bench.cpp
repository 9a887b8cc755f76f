// `kite bench`: the benchmark suite (src/bench; docs/benchmarks.md).
//   kite bench throughput MODEL [engine flags] [dataset flags]      offline, in-process
//   kite bench serve --base-url URL --model NAME [dataset flags]    load over HTTP (any server)
//   kite bench sweep throughput MODEL --max-num-seqs 1,2,4 ...      grid + constrained search
//   kite bench sweep serve --base-url URL --request-rate 1,2,4 ...
//   kite bench startup MODEL [-- kite serve flags]                  W6
//   kite bench plot results/*.json --out report.html --markdown table.md
// Engine and dataset flags use vLLM's names.
#include <fmt/format.h>

#include <memory>

#include "bench/commands.h"
#include "cli/command.h"
#include "cli/engine_args.h"
#include "engine/runner_factory.h"
#include "hub/hub.h"
#include "parallel/launch.h"
#include "parallel/mpi_communicator.h"
#include "parallel/world.h"

namespace kite::cli {
namespace {

using bench::DatasetOptions;
using bench::OutputOptions;

// Flags whose presence matters (optional values, "was it given").
struct Given {
  CLI::Option* num_prompts = nullptr;
  CLI::Option* max_model_len = nullptr;
  CLI::Option* top_p = nullptr;
  CLI::Option* top_k = nullptr;
  CLI::Option* temperature = nullptr;
  CLI::Option* seed = nullptr;
  double top_p_value = 1.0;
  int top_k_value = 0;
  double temperature_value = 0.0;
  bool server_default_temperature = false;
  std::string kv_cache_memory;  // --kv-cache-memory, as kite serve/generate take it
};

// The engine flags that need more than a plain assignment (as src/cli/engine_args.cpp does).
Status finish_engine(const Given& g, EngineConfig& c) {
  if (!g.kv_cache_memory.empty()) {
    KITE_ASSIGN_OR_RETURN(c.kv_cache_memory_bytes, parse_byte_size(g.kv_cache_memory));
  }
  return ok_status();
}

void add_engine_options(CLI::App* app, EngineConfig& c, Given& g, std::string* max_num_seqs_grid) {
  app->add_option("--tokenizer", c.tokenizer,
                  "Directory with tokenizer.json, .gguf or Hub id (default: the model's)");
  app->add_option("--revision", c.revision, "Hub revision of a Hub id model (default: main)");
  app->add_option("--download-dir", c.download_dir,
                  "Hugging Face cache folder (default: $HF_HUB_CACHE)");
  app->add_option("--served-model-name", c.served_model_name, "Model name in results");
  app->add_option("--load-format", c.load_format, "auto|safetensors|gguf|dummy (random weights)")
      ->check(CLI::IsMember({"auto", "safetensors", "gguf", "dummy"}));
  app->add_option("--dtype", c.dtype, "auto|float32|bfloat16|float16")
      ->check(CLI::IsMember({"auto", "float32", "bfloat16", "float16"}));
  app->add_option("--device", c.device, "auto|cpu|cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  g.max_model_len = app->add_option("--max-model-len", c.max_model_len,
                                    "Context length (0: the model's; presets: input + output)");
  if (max_num_seqs_grid != nullptr) {
    app->add_option("--max-num-seqs", *max_num_seqs_grid,
                    "Sweep grid: 1,2,4 or 1:512:*2 (W2's when omitted)");
  } else {
    app->add_option("--max-num-seqs", c.max_num_seqs, "Sequences per step");
  }
  app->add_option("--max-num-batched-tokens", c.max_num_batched_tokens, "Token budget per step");
  app->add_option("--block-size", c.block_size, "Tokens per KV block");
  app->add_option("--gpu-memory-utilization", c.gpu_memory_utilization,
                  "Fraction of GPU memory for weights + KV cache");
  app->add_option("--kv-cache-memory", g.kv_cache_memory,
                  "KV cache size, e.g. 2GiB (CPU default: up to 1 GiB)");
  app->add_option("--kv-cache-dtype", c.kv_cache_dtype, "auto|float32|bfloat16|fp8 (= fp8_e4m3)");
  app->add_option("--quantization,-q", c.quantization,
                  "fp8: FP8 weights with per-channel scales made at load")
      ->check(CLI::IsMember({"fp8"}));
  app->add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", c.enable_prefix_caching,
                "Prefix caching (default on)");
  app->add_flag("--enable-chunked-prefill,!--no-enable-chunked-prefill", c.enable_chunked_prefill,
                "Chunked prefill (default on)");
  app->add_option("--scheduling-policy", c.scheduling_policy, "fcfs|priority");
  app->add_flag("--enforce-eager", c.enforce_eager, "CUDA: no graphs");
  app->add_option("--tensor-parallel-size", c.tensor_parallel_size, "GPUs per model");
  app->add_option("--threads,--num-threads", c.num_threads, "CPU backend threads (0: all cores)");
}

void add_dataset_options(CLI::App* app, DatasetOptions& d, Given& g) {
  app->add_option("--dataset-name", d.name, "random|sharegpt|jsonl")
      ->check(CLI::IsMember({"random", "sharegpt", "jsonl"}));
  app->add_option("--dataset-path", d.path, "ShareGPT JSON or JSONL file");
  g.num_prompts =
      app->add_option("--num-prompts", d.num_prompts, "Requests (overrides a preset's counts)");
  app->add_option("--random-input-len", d.input_len, "Random prompts: input tokens");
  app->add_option("--random-output-len", d.output_len, "Random prompts: output tokens");
  app->add_option("--random-range-ratio", d.range_ratio,
                  "Lengths uniform in [len*(1-r), len*(1+r)], r in [0, 1)");
  app->add_option("--random-prefix-len", d.prefix_len, "Shared prefix tokens of random prompts");
  app->add_option("--sharegpt-output-len", d.sharegpt_output_len,
                  "Fixed output length for ShareGPT (default: the reply's length)");
  app->add_option("--output-len", d.output_len, "JSONL prompts without their own output_len");
  g.seed = app->add_option("--seed", d.seed, "Seed of the dataset (and arrivals / engine)");
}

void add_sampling_options(CLI::App* app, Given& g, bool* ignore_eos) {
  app->add_flag("--ignore-eos", *ignore_eos,
                "Generate exactly the asked-for tokens (over HTTP: vLLM's ignore_eos extension)");
  g.temperature = app->add_option("--temperature", g.temperature_value,
                                  "Sampling temperature (default 0: greedy)");
  app->add_flag("--server-default-temperature", g.server_default_temperature,
                "Send no temperature (use the server's default)");
  g.top_p = app->add_option("--top-p", g.top_p_value, "Nucleus sampling");
  g.top_k = app->add_option("--top-k", g.top_k_value, "Top-k sampling");
}

void add_output_options(CLI::App* app, OutputOptions& o) {
  app->add_option("--label", o.label, "Legend label of this run");
  app->add_option("--output-json", o.output_json, "Result file (single runs)");
  app->add_option("--result-dir", o.result_dir, "Directory for result files (default results)");
  app->add_flag("--save-detailed", o.save_detailed, "Keep every inter-token gap in the samples");
  app->add_flag("!--no-samples", o.save_samples, "Do not keep per-request samples");
  app->add_option("--metric-percentiles", o.percentiles, "Percentiles to report (50,90,95,99)");
  app->add_option("--slo,--goodput", o.slo, "Goodput SLO, e.g. ttft=500ms,tpot=50ms,e2e=10s");
  app->add_flag("!--no-progress", o.progress, "No progress bar");
  app->add_option("--workload", o.workload, "Reference workload preset W1..W6")
      ->check(CLI::IsMember({"W1", "W2", "W3", "W4", "W5", "W6"}));
  app->add_option("--scale", o.scale, "Multiply the preset's request counts (e.g. 0.25)");
  app->add_option("--preset-prompts", o.preset_prompts,
                  "Request counts of the preset's runs in order, e.g. 1024,256,256,64 (0 skips)");
  // One value per --note, so that a note never swallows the arguments after `--`.
  app->add_option("--note", o.notes, "A note stored in the result (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

void add_serve_client_options(CLI::App* app, bench::ServeCommand& c, std::string* rate_grid,
                              std::string* concurrency_grid) {
  bench::ServeOptions& s = c.serve;
  app->add_option("--base-url", s.base_url, "Server URL (default http://127.0.0.1:8000)");
  app->add_option("--endpoint", s.endpoint, "/v1/completions or /v1/chat/completions");
  app->add_option("--model", s.request.model, "Served model name");
  app->add_option("--api-key", s.api_key, "Bearer token (default: $OPENAI_API_KEY)");
  app->add_option("--engine-name", c.engine_name, "What serves the URL (vllm, tgi, kite, ...)");
  app->add_option("--model-path", c.model_path,
                  "Model directory or Hub id: vocabulary for random prompts, shape for the "
                  "result");
  app->add_option("--random-vocab-size", c.data.vocab_size,
                  "Token ids of random prompts are drawn below this");
  if (rate_grid != nullptr) {
    app->add_option("--request-rate", *rate_grid, "Sweep grid of rates (req/s), e.g. 1,2,4,8");
    app->add_option("--max-concurrency", *concurrency_grid,
                    "Sweep grid of concurrency caps instead of rates");
  } else {
    app->add_option("--request-rate", c.request_rate, "Requests/s (Poisson), or inf (default)");
    app->add_option("--max-concurrency", s.max_concurrency, "Most requests in flight (0: no cap)");
  }
  app->add_option("--burstiness", s.arrivals.burstiness,
                  "Gamma shape of the gaps: 1 Poisson, < 1 burstier, > 1 smoother");
  app->add_option("--request-timeout", s.request_timeout_s, "Seconds per request (default 600)");
  app->add_option("--ready-check-timeout-sec", s.ready_timeout_s,
                  "Retry the initial request this long while the server starts");
  app->add_flag("!--skip-initial-test", s.initial_test, "Do not send the initial test request");
  app->add_option("--num-warmups", s.num_warmups, "Unmeasured requests before the run");
  app->add_option("--extra-body", s.request.extra_body_json, "JSON merged into every request");
  app->add_option("--response-format-file", c.response_format_file,
                  "structured outputs: a JSON array (or JSONL) of response_format objects or bare "
                  "JSON schemas; request i carries entry i mod N");
  app->add_flag("!--no-stream-usage", s.request.include_usage,
                "Do not ask for stream_options.include_usage");
}

void finish_sampling(const Given& g, std::optional<double>& temperature,
                     std::optional<double>& top_p, std::optional<int>& top_k) {
  temperature =
      g.server_default_temperature ? std::nullopt : std::optional<double>(g.temperature_value);
  if (g.top_p->count() > 0) top_p = g.top_p_value;
  if (g.top_k->count() > 0) top_k = g.top_k_value;
}

struct State {
  bench::ThroughputCommand throughput;
  Given throughput_given;
  int throughput_pp = 1;  // pipeline stages of `bench throughput` (ranks = tensor x pipeline)
  int throughput_micro_batches = 0;  // its --pipeline-micro-batches (0: the number of stages)
  bench::ServeCommand serve;
  Given serve_given;
  bench::SweepCommand sweep;
  Given sweep_tp_given;
  Given sweep_sv_given;
  std::string sweep_rate_grid;
  std::string sweep_concurrency_grid;
  std::string sweep_seqs_grid;
  bench::PlotCommand plot;
  bench::StartupCommand startup;
};

int usage_error(const Status& s) {
  fmt::print(stderr, "kite bench: {}\n", s.message());
  return 2;
}

// `bench throughput` over several ranks, as `kite generate` does (docs/parallel.md): started
// without a launcher it re-executes itself under mpirun; under it rank 0 runs the benchmark
// and the other ranks serve its steps.
int run_throughput_ranks(State& st) {
  const int tp = st.throughput.engine.tensor_parallel_size;
  const int pp = st.throughput_pp;
  if (tp >= 1 && pp >= 1 && tp * pp > 1 && !parallel::launched_by_mpi()) {
    return usage_error(parallel::relaunch_under_mpirun(tp * pp));  // returns only on error
  }
  if (tp == 1 && pp == 1 && !parallel::launched_by_mpi()) {
    return bench::run_throughput_command(st.throughput);
  }
  auto world = parallel::init_world({tp, pp, st.throughput_micro_batches});
  if (!world.ok()) {
    fmt::print(stderr, "kite bench throughput: error: {}\n", world.status().to_string());
    return parallel::finish_world(1);
  }
  if ((*world)->rank() != 0) {
    const Status s = run_model_worker(st.throughput.engine);
    if (!s.ok()) {
      fmt::print(stderr, "kite bench throughput: error: rank {} of {}: {}\n", (*world)->rank(),
                 (*world)->world_size(), s.to_string());
    }
    return parallel::finish_world(s.ok() ? 0 : 1);
  }
  return parallel::finish_world(bench::run_throughput_command(st.throughput));
}

std::function<int()> setup_bench(CLI::App& bench_app) {
  auto st = std::make_shared<State>();
  bench_app.require_subcommand(1);

  // throughput
  CLI::App* tp = bench_app.add_subcommand("throughput", "Offline throughput, in-process");
  tp->add_option("model", st->throughput.engine.model, "Model directory or .gguf")->required();
  add_engine_options(tp, st->throughput.engine, st->throughput_given, nullptr);
  add_dataset_options(tp, st->throughput.data, st->throughput_given);
  add_sampling_options(tp, st->throughput_given, &st->throughput.run.ignore_eos);
  tp->add_option("--pipeline-parallel-size", st->throughput_pp,
                 "Pipeline stages; ranks = tensor x pipeline, started under mpirun "
                 "(docs/parallel.md)");
  add_pipeline_micro_batches(*tp, &st->throughput_micro_batches);
  add_expert_parallel_refusal(*tp);
  st->throughput.run.ignore_eos = false;
  add_output_options(tp, st->throughput.out);
  tp->add_option("--max-concurrency", st->throughput.run.max_concurrency,
                 "Submit at most this many requests at a time (0: all at once)");
  tp->add_option("--num-warmups", st->throughput.run.num_warmups, "Unmeasured requests first");

  // serve
  CLI::App* sv = bench_app.add_subcommand("serve", "Load an OpenAI-compatible server over HTTP");
  add_serve_client_options(sv, st->serve, nullptr, nullptr);
  add_dataset_options(sv, st->serve.data, st->serve_given);
  add_sampling_options(sv, st->serve_given, &st->serve.serve.request.ignore_eos);
  add_output_options(sv, st->serve.out);

  // sweep
  CLI::App* sw = bench_app.add_subcommand("sweep",
                                          "Run a benchmark over a grid; find the best "
                                          "setting under constraints");
  sw->require_subcommand(1);
  auto add_sweep_options = [&](CLI::App* app) {
    bench::SweepCommand& s = st->sweep;
    app->add_option("--maximize", s.maximize, "Objective metric (default output_throughput)");
    app->add_option("--minimize", s.minimize, "Objective metric to minimise");
    app->add_option("--subject-to", s.subject_to,
                    "Constraint, e.g. tpot_mean<20ms, ttft_mean<1s (repeatable)");
    app->add_option("--refine", s.refine, "Bisection steps between feasible and infeasible");
    app->add_flag("!--no-stop-at-first-infeasible", s.stop_at_first_infeasible,
                  "Run the whole grid even past an infeasible point");
    app->add_flag("--save-points", s.save_points, "Also write one result file per point");
    app->add_option("--sweep-point-seconds", s.point_seconds,
                    "Time-bound W3: arrivals per point last about this long");
  };
  CLI::App* swt = sw->add_subcommand("throughput", "Sweep --max-num-seqs in-process (W2)");
  swt->add_option("model", st->sweep.throughput.engine.model, "Model directory or .gguf")
      ->required();
  add_engine_options(swt, st->sweep.throughput.engine, st->sweep_tp_given, &st->sweep_seqs_grid);
  add_dataset_options(swt, st->sweep.throughput.data, st->sweep_tp_given);
  add_sampling_options(swt, st->sweep_tp_given, &st->sweep.throughput.run.ignore_eos);
  add_output_options(swt, st->sweep.throughput.out);
  add_sweep_options(swt);
  CLI::App* sws = sw->add_subcommand("serve", "Sweep --request-rate over HTTP (W3)");
  add_serve_client_options(sws, st->sweep.serve, &st->sweep_rate_grid, &st->sweep_concurrency_grid);
  add_dataset_options(sws, st->sweep.serve.data, st->sweep_sv_given);
  add_sampling_options(sws, st->sweep_sv_given, &st->sweep.serve.serve.request.ignore_eos);
  add_output_options(sws, st->sweep.serve.out);
  add_sweep_options(sws);
  sws->add_option("--launch", st->sweep.launch_model,
                  "Start `kite serve MODEL [args after --]` for the sweep instead of --base-url");
  sws->add_option("--server-binary", st->sweep.server_binary, "kite binary to launch");
  sws->footer("kite serve flags for --launch go after --");

  // startup
  CLI::App* su = bench_app.add_subcommand("startup", "W6: kite serve startup time and footprint");
  su->add_option("model", st->startup.model, "Model directory or .gguf")->required();
  su->footer("kite serve flags go after --");
  su->add_option("--server-binary", st->startup.server_binary, "kite binary (default: this one)");
  su->add_option("--timeout", st->startup.timeout_s, "Seconds to wait for the server");
  su->add_option("--server-log", st->startup.log_path, "Server output file");
  add_output_options(su, st->startup.out);

  // plot
  CLI::App* pl = bench_app.add_subcommand("plot", "HTML report with SVG charts + Markdown table");
  pl->add_option("results", st->plot.inputs, "Result JSON files or directories")->required();
  pl->add_option("--out,-o", st->plot.out, "HTML report (default report.html)");
  pl->add_option("--markdown", st->plot.markdown, "Markdown table (default: stdout)");
  pl->add_option("--title", st->plot.title, "Report title");
  pl->add_option("--svg-dir", st->plot.svg_dir,
                 "Also write each chart as DIR/<name>.svg (linked from the Markdown)");

  return [st, tp, sv, sw, swt, sws, su, pl]() -> int {
    if (tp->parsed()) {
      Given& g = st->throughput_given;
      st->throughput.data.num_prompts_set = g.num_prompts->count() > 0;
      st->throughput.max_model_len_set = g.max_model_len->count() > 0;
      st->throughput.engine.seed = st->throughput.data.seed;
      if (Status s = finish_engine(g, st->throughput.engine); !s.ok()) return usage_error(s);
      finish_sampling(g, st->throughput.run.temperature, st->throughput.run.top_p,
                      st->throughput.run.top_k);
      return run_throughput_ranks(*st);
    }
    if (sv->parsed()) {
      Given& g = st->serve_given;
      st->serve.data.num_prompts_set = g.num_prompts->count() > 0;
      finish_sampling(g, st->serve.serve.request.temperature, st->serve.serve.request.top_p,
                      st->serve.serve.request.top_k);
      if (!st->serve.model_path.empty()) {  // a Hub id: its config from the Hugging Face cache
        auto local = hub::resolve(st->serve.model_path, hub::Need::kConfig, {});
        if (!local.ok()) return usage_error(local.status());
        st->serve.model_path = local->path;
      }
      return bench::run_serve_command(st->serve);
    }
    if (sw->parsed()) {
      bench::SweepCommand& s = st->sweep;
      if (swt->parsed()) {
        Given& g = st->sweep_tp_given;
        s.mode = "throughput";
        s.parameter = "max_num_seqs";
        s.grid = st->sweep_seqs_grid;
        s.throughput.data.num_prompts_set = g.num_prompts->count() > 0;
        s.throughput.max_model_len_set = g.max_model_len->count() > 0;
        s.throughput.engine.seed = s.throughput.data.seed;
        if (Status e = finish_engine(g, s.throughput.engine); !e.ok()) return usage_error(e);
        finish_sampling(g, s.throughput.run.temperature, s.throughput.run.top_p,
                        s.throughput.run.top_k);
      } else {
        Given& g = st->sweep_sv_given;
        s.mode = "serve";
        if (!st->sweep_concurrency_grid.empty()) {
          s.parameter = "max_concurrency";
          s.grid = st->sweep_concurrency_grid;
        } else {
          s.grid = st->sweep_rate_grid;
        }
        s.serve.data.num_prompts_set = g.num_prompts->count() > 0;
        finish_sampling(g, s.serve.serve.request.temperature, s.serve.serve.request.top_p,
                        s.serve.serve.request.top_k);
      }
      s.serve_args = passthrough_args();
      return bench::run_sweep_command(s);
    }
    if (su->parsed()) {
      st->startup.serve_args = passthrough_args();
      return bench::run_startup_command(st->startup);
    }
    if (pl->parsed()) return bench::run_plot_command(st->plot);
    return 2;
  };
}

}  // namespace

KITE_REGISTER_COMMAND(bench, "bench",
                      "Benchmarks: throughput, serve, sweep, startup, plot (see "
                      "docs/benchmarks.md)",
                      setup_bench);

}  // namespace kite::cli
