// Pieces shared by the `kite bench` commands (internal to kite_bench).
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "bench/commands.h"
#include "bench/dataset.h"
#include "bench/metrics.h"

namespace kite::bench {

// "50,90,99" -> {50, 90, 99}; each in [0, 100].
Result<std::vector<double>> parse_percentiles(std::string_view text);
// The SLO of --slo, or an empty one.
Result<Slo> slo_of(const OutputOptions& out);
// "inf" or a positive number.
Result<double> parse_rate(std::string_view text);

// Checks the dataset flags that do not depend on the model.
Status check_dataset(const DatasetOptions& d);

// The prompts of a dataset. `vocab_size` and `excluded_ids` are for random prompts;
// `count_tokens` (optional) for ShareGPT lengths.
Result<std::vector<PromptSpec>> make_prompts(const DatasetOptions& d, int64_t num_prompts,
                                             int64_t vocab_size,
                                             const std::vector<int32_t>& excluded_ids,
                                             const TokenCounter& count_tokens);

// The "workload" object of a custom (non-preset) run.
boost::json::object dataset_workload_json(const DatasetOptions& d, int64_t num_prompts);

// Adds metrics, slo, token_check, failures, samples (per OutputOptions) and notes.
void add_run_sections(boost::json::object& result, const BenchmarkMetrics& m,
                      const std::vector<RequestSample>& samples, const Slo& slo,
                      const OutputOptions& out, std::vector<std::string> notes);

// Prints the run's summary block to stdout (in the style of vLLM's benchmark scripts).
void print_summary(std::string_view title, const BenchmarkMetrics& m,
                   const std::vector<double>& percentiles);

// Where a result goes: --output-json when given (and `single`), else
// <result_dir>/<label>-<stem>.json with unsafe characters replaced.
std::string result_path(const OutputOptions& out, std::string_view label, std::string_view stem,
                        bool single);

// Writes the result and says where on stderr.
Status write_result_file(const boost::json::object& result, const std::string& path);

// Prints "kite bench <what>: error: <status>" to stderr; returns the exit code for it.
int report_error(std::string_view what, const Status& s);

}  // namespace kite::bench

namespace kite::bench {

struct PresetRun;

// One in-process throughput run and its result JSON. `engine` may be null: an engine is made
// from cmd.engine (and the model load time recorded). `preset` (optional) sets the workload;
// otherwise cmd.data does.
struct ThroughputOutcome {
  boost::json::object result;
  BenchmarkMetrics metrics;
};
Result<ThroughputOutcome> run_one_throughput(const ThroughputCommand& cmd, Engine* engine,
                                             const PresetRun* preset, int64_t num_prompts,
                                             const std::vector<double>& percentiles, const Slo& slo,
                                             const std::string& label);

// The runs of a preset, in-process (W1: one engine per dataset; W4, W5: one shared engine).
// Returns the exit code.
int run_throughput_presets(const ThroughputCommand& cmd, const std::vector<PresetRun>& runs,
                           const std::vector<double>& percentiles, const Slo& slo,
                           const std::string& label);

// One HTTP run and its result JSON (`preset` optional as above).
struct ServeOutcome {
  boost::json::object result;
  BenchmarkMetrics metrics;
};
Result<ServeOutcome> run_one_serve(const ServeCommand& cmd, const ServeOptions& serve,
                                   const PresetRun* preset, int64_t num_prompts,
                                   const std::vector<double>& percentiles, const Slo& slo,
                                   const std::string& label);

// The preset's runs with --preset-prompts applied (counts by position; 0 drops the run).
Result<std::vector<PresetRun>> apply_preset_prompts(std::vector<PresetRun> runs,
                                                    std::string_view counts);

// The "workload" object of a preset run.
boost::json::object preset_workload_json(const PresetRun& p, int64_t num_prompts);

}  // namespace kite::bench
