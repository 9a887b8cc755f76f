// `kite bench throughput`: flag checks and presets (the runs themselves: throughput_command.cpp).
#include <fmt/format.h>

#include "bench/command_util.h"
#include "bench/presets.h"

namespace kite::bench {

int run_throughput_command(ThroughputCommand& cmd) {
  Result<std::vector<double>> pcts = parse_percentiles(cmd.out.percentiles);
  if (!pcts.ok()) return report_error("throughput", pcts.status());
  Result<Slo> slo = slo_of(cmd.out);
  if (!slo.ok()) return report_error("throughput", slo.status());
  const std::string label = cmd.out.label.empty() ? "kite" : cmd.out.label;
  if (cmd.out.workload.empty()) {
    Status s = check_dataset(cmd.data);
    if (!s.ok()) return report_error("throughput", s);
    Result<ThroughputOutcome> o =
        run_one_throughput(cmd, nullptr, nullptr, cmd.data.num_prompts, *pcts, *slo, label);
    if (!o.ok()) return report_error("throughput", o.status());
    print_summary("Offline Throughput Benchmark Result", o->metrics, *pcts);
    Status w = write_result_file(o->result, result_path(cmd.out, label, "throughput", true));
    return w.ok() ? 0 : report_error("throughput", w);
  }
  Result<std::vector<PresetRun>> runs = preset_runs(
      cmd.out.workload, cmd.out.scale,
      cmd.data.num_prompts_set ? std::optional<int64_t>(cmd.data.num_prompts) : std::nullopt);
  if (!runs.ok()) return report_error("throughput", runs.status());
  runs = apply_preset_prompts(std::move(*runs), cmd.out.preset_prompts);
  if (!runs.ok()) return report_error("throughput", runs.status());
  if (runs->empty()) {
    return report_error("throughput", invalid_argument("--preset-prompts dropped every run"));
  }
  return run_throughput_presets(cmd, *runs, *pcts, *slo, label);
}

}  // namespace kite::bench
