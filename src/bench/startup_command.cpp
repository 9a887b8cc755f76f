// `kite bench startup MODEL [-- kite serve flags]` (W6).
#include <fmt/format.h>

#include "bench/command_util.h"
#include "bench/model_info.h"
#include "bench/result.h"
#include "bench/server_process.h"
#include "bench/startup_bench.h"

namespace kite::bench {

namespace bj = boost::json;

int run_startup_command(StartupCommand& cmd) {
  if (!cmd.out.workload.empty() && cmd.out.workload != "W6") {
    return report_error("startup",
                        invalid_argument(fmt::format("--workload {}: the startup benchmark is W6",
                                                     cmd.out.workload)));
  }
  StartupOptions opt;
  opt.binary = cmd.server_binary.empty() ? self_executable() : cmd.server_binary;
  opt.argv = kite_serve_command(opt.binary, cmd.model, cmd.serve_args, opt.model_name);
  opt.timeout_s = cmd.timeout_s;
  opt.log_path = cmd.log_path;
  const std::string label = cmd.out.label.empty() ? "kite" : cmd.out.label;
  Result<StartupResult> r = run_startup_benchmark(opt);
  if (!r.ok()) return report_error("startup", r.status());
  bj::object res = new_result("startup", label);
  res["engine"] = bj::object{{"name", "kite"}};
  res["model"] = model_json(cmd.model);
  res["workload"] = bj::object{{"preset", "W6"}, {"name", "W6 startup"}};
  bj::array argv;
  for (const std::string& a : opt.argv) argv.emplace_back(a);
  res["config"] = bj::object{{"command", argv}, {"timeout_s", cmd.timeout_s}};
  res["startup"] = startup_json(*r);
  bj::array notes;
  for (const std::string& n : cmd.out.notes) notes.emplace_back(n);
  res["notes"] = std::move(notes);
  std::printf("%s\n", fmt::format("{:=^56}", " Startup (W6) ").c_str());
  std::printf("%-40s %.2f\n", "Spawn to /health (s):", r->time_to_health_s);
  std::printf("%-40s %.2f\n", "Spawn to first token (s):", r->time_to_first_token_s);
  std::printf("%-40s %.1f\n", "First request TTFT (ms):", r->first_request_ttft_ms);
  std::printf("%-40s %.1f\n", "Binary size (MB):", r->binary_size_bytes / 1e6);
  std::printf("%-40s %.1f\n", "Peak host memory of the server (MB):", r->peak_rss_bytes / 1e6);
  std::printf("%s\n", std::string(56, '=').c_str());
  std::fflush(stdout);
  Status w = write_result_file(res, result_path(cmd.out, label, "W6-startup", true));
  return w.ok() ? 0 : report_error("startup", w);
}

}  // namespace kite::bench
