// The `kite bench` subcommands as plain option structs and entry points (src/cli/cmd_bench.cpp
// binds the flags; everything else lives here). Each entry point prints its summary to stdout,
// progress and errors to stderr, writes result JSON, and returns the process exit code
// (0 success, 1 failure, 2 bad usage).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/serve_bench.h"
#include "bench/throughput_bench.h"
#include "kite/engine.h"

namespace kite::bench {

struct DatasetOptions {
  std::string name = "random";  // random | sharegpt | jsonl
  std::string path;             // sharegpt / jsonl file
  int64_t num_prompts = 1000;
  bool num_prompts_set = false;  // --num-prompts given (overrides preset counts)
  int64_t input_len = 1024;      // random
  int64_t output_len = 128;      // random; jsonl default
  double range_ratio = 0.0;
  int64_t prefix_len = 0;
  int64_t vocab_size = 0;  // random over HTTP (else from --model-path's config.json)
  int64_t sharegpt_output_len = 0;
  uint64_t seed = 0;
};

struct OutputOptions {
  std::string label;        // legend label; default: "kite" in-process, the engine name over HTTP
  std::string output_json;  // one run: this file
  std::string result_dir = "results";  // otherwise files named after label and workload here
  bool save_detailed = false;          // per-request ITL arrays in the samples
  bool save_samples = true;            // per-request records at all
  std::string percentiles = "50,90,95,99";
  std::string slo;  // "ttft=500ms,tpot=50ms,e2e=10s" (goodput)
  bool progress = true;
  std::string workload;  // W1..W6 preset
  double scale = 1.0;
  std::string preset_prompts;      // per-run request counts of a preset, in order ("1024,256,0,64";
                                   // 0 skips that run)
  std::vector<std::string> notes;  // added to every result
  std::string progress_suffix;     // appended to progress bar labels (sweep points)
};

struct ThroughputCommand {
  EngineConfig engine;  // engine.model is the MODEL argument
  bool max_model_len_set = false;
  DatasetOptions data;
  ThroughputOptions run;
  OutputOptions out;
};

struct ServeCommand {
  ServeOptions serve;
  DatasetOptions data;
  OutputOptions out;
  std::string request_rate = "inf";
  std::string engine_name;  // what runs behind the URL ("vllm", "tgi", "kite", ...)
  std::string model_path;   // optional local copy: vocabulary size and shape for the result
  std::string response_format_file;  // see read_response_formats (bench/openai_stream.h)
};

struct SweepCommand {
  std::string mode;  // "throughput" | "serve"
  ThroughputCommand throughput;
  ServeCommand serve;
  std::string grid;       // the list for the swept flag (--max-num-seqs / --request-rate ...)
  std::string parameter;  // "max_num_seqs" | "request_rate" | "max_concurrency"
  std::string maximize;   // objective metric (one of maximize/minimize)
  std::string minimize;
  std::vector<std::string> subject_to;
  int refine = -1;  // bisection steps after the grid (-1: the preset's, else 0)
  bool stop_at_first_infeasible = true;
  bool save_points = false;  // one result file per point as well
  double point_seconds = 30;
  // Serve mode without --base-url: launch `kite serve launch_model serve_args...` for the sweep.
  std::string launch_model;
  std::vector<std::string> serve_args;
  std::string server_binary;  // default: this kite
};

struct PlotCommand {
  std::vector<std::string> inputs;  // result files or directories of them
  std::string out = "report.html";
  std::string markdown;
  std::string title = "kite bench report";
  // Each chart also as DIR/<name>.svg; with --markdown, the table is followed by links to them
  // (relative to the Markdown file).
  std::string svg_dir;
};

struct StartupCommand {
  std::string model;
  std::vector<std::string> serve_args;
  std::string server_binary;  // default: this kite
  double timeout_s = 600;
  std::string log_path;
  OutputOptions out;
};

int run_throughput_command(ThroughputCommand& cmd);
int run_serve_command(ServeCommand& cmd);
int run_sweep_command(SweepCommand& cmd);
int run_plot_command(const PlotCommand& cmd);
int run_startup_command(StartupCommand& cmd);

// Creates an engine (Engine::create, timed by the callers).
Result<std::unique_ptr<Engine>> create_engine(const EngineConfig& config);

}  // namespace kite::bench
