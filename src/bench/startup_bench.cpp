#include "bench/startup_bench.h"

#include <fmt/format.h>

#include <filesystem>

#include "bench/serve_bench.h"
#include "bench/server_process.h"

namespace kite::bench {

std::vector<std::string> kite_serve_command(const std::string& kite_binary,
                                            const std::string& model,
                                            const std::vector<std::string>& extra_args,
                                            const std::string& served_model_name) {
  std::vector<std::string> argv = {kite_binary,      "serve",  model,    "--host",
                                   "127.0.0.1",      "--port", "{PORT}", "--served-model-name",
                                   served_model_name};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  return argv;
}

Result<StartupResult> run_startup_benchmark(const StartupOptions& opt) {
  if (opt.argv.empty()) return invalid_argument("no server command");
  StartupResult r;
  KITE_ASSIGN_OR_RETURN(r.port, pick_free_port());
  std::vector<std::string> argv = opt.argv;
  for (std::string& a : argv) {
    if (size_t pos = a.find("{PORT}"); pos != std::string::npos) {
      a.replace(pos, 6, std::to_string(r.port));
    }
  }
  std::error_code ec;
  r.binary_size_bytes = static_cast<int64_t>(std::filesystem::file_size(argv[0], ec));
  if (ec) return invalid_argument(fmt::format("cannot stat {}: {}", argv[0], ec.message()));
  const HttpUrl url{"127.0.0.1", std::to_string(r.port), ""};
  KITE_ASSIGN_OR_RETURN(std::unique_ptr<ServerProcess> server,
                        ServerProcess::spawn(argv, opt.log_path));
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(opt.timeout_s * 1000));
  KITE_ASSIGN_OR_RETURN(r.time_to_health_s, server->wait_healthy(url, opt.health_target, timeout));
  // One streamed request, measured from the moment it is sent.
  ServeOptions so;
  so.base_url = fmt::format("http://127.0.0.1:{}", r.port);
  so.request.model = opt.model_name;
  so.initial_test = false;
  so.progress = false;
  so.request_timeout_s = opt.timeout_s;
  PromptSpec p{opt.prompt_token_ids, static_cast<int64_t>(opt.prompt_token_ids.size()),
               opt.max_tokens};
  const auto sent = BenchClock::now();
  KITE_ASSIGN_OR_RETURN(ServeRun run, run_serve_benchmark(so, {p}));
  const RequestSample& s = run.samples.front();
  if (!s.success) {
    return unavailable(fmt::format("the first request failed: {}; the server log ends with:\n{}",
                                   s.error, server->log_tail()));
  }
  r.first_request_ttft_ms = s.ttft_s * 1e3;
  r.time_to_first_token_s =
      std::chrono::duration<double>(sent - server->started()).count() + s.ttft_s;
  r.peak_rss_bytes = server->peak_rss_bytes();
  ExitInfo exit = server->stop();
  r.peak_rss_bytes = std::max(r.peak_rss_bytes, exit.peak_rss_bytes);
  return r;
}

boost::json::object startup_json(const StartupResult& r) {
  boost::json::object o;
  o["time_to_health_s"] = r.time_to_health_s;
  o["time_to_first_token_s"] = r.time_to_first_token_s;
  o["first_request_ttft_ms"] = r.first_request_ttft_ms;
  o["binary_size_bytes"] = r.binary_size_bytes;
  o["peak_rss_bytes"] = r.peak_rss_bytes;
  return o;
}

}  // namespace kite::bench
