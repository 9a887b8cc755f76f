// Built instead of throughput_command.cpp and throughput_bench.cpp when this build has no
// engine library (src/engine): the in-process commands say so; everything over HTTP works.
#include "bench/command_util.h"

namespace kite::bench {

namespace {
Status no_engine() {
  return unimplemented(
      "this kite was built without the engine (src/engine): the in-process "
      "benchmarks are unavailable; `kite bench serve` works against any server");
}
}  // namespace

Result<ThroughputOutcome> run_one_throughput(const ThroughputCommand&, Engine*, const PresetRun*,
                                             int64_t, const std::vector<double>&, const Slo&,
                                             const std::string&) {
  return no_engine();
}

int run_throughput_presets(const ThroughputCommand&, const std::vector<PresetRun>&,
                           const std::vector<double>&, const Slo&, const std::string&) {
  return report_error("throughput", no_engine());
}

}  // namespace kite::bench
