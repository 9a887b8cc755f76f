// `kite bench sweep throughput|serve`: runs a benchmark over a grid of one setting and finds the
// best point under constraints (W2: max_num_seqs under mean TPOT < 20 ms; W3: request rate
// under mean TTFT < 1 s).
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "bench/command_util.h"
#include "bench/presets.h"
#include "bench/result.h"
#include "bench/server_process.h"
#include "bench/startup_bench.h"
#include "bench/sweep.h"

namespace kite::bench {

namespace bj = boost::json;

namespace {

struct PointRun {
  SweepPoint point;
  int64_t num_prompts = 0;
  bj::object result;  // the full result of the point (empty if it failed)
};

void print_point(const std::string& parameter, const PointRun& p, const std::string& objective,
                 const std::vector<Constraint>& constraints) {
  std::string line =
      fmt::format("sweep {}={:g} ({} requests): ", parameter, p.point.value, p.num_prompts);
  if (!p.point.ran) {
    line += "failed: " + p.point.error;
  } else {
    auto v = lookup_metric(p.point.metrics, objective);
    line += fmt::format("{} = {}", objective, v ? fmt::format("{:.2f}", *v) : "n/a");
    for (const Constraint& c : constraints) {
      auto m = lookup_metric(p.point.metrics, c.metric);
      line += fmt::format(", {} = {} ({})", c.metric, m ? fmt::format("{:.2f}", *m) : "n/a",
                          m && c.holds(*m) ? "ok" : "violates " + c.text);
    }
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

bool point_feasible(const SweepPoint& p, const std::vector<Constraint>& constraints) {
  if (!p.ran) return false;
  for (const Constraint& c : constraints) {
    auto v = lookup_metric(p.metrics, c.metric);
    if (!v || !c.holds(*v)) return false;
  }
  return true;
}

}  // namespace

int run_sweep_command(SweepCommand& cmd) {
  const std::string what = "sweep " + cmd.mode;
  if (cmd.mode != "throughput" && cmd.mode != "serve") {
    return report_error("sweep", invalid_argument("mode must be throughput or serve"));
  }
  const bool tp = cmd.mode == "throughput";
  OutputOptions& out = tp ? cmd.throughput.out : cmd.serve.out;
  DatasetOptions& data = tp ? cmd.throughput.data : cmd.serve.data;
  Result<std::vector<double>> pcts = parse_percentiles(out.percentiles);
  if (!pcts.ok()) return report_error(what, pcts.status());
  Result<Slo> slo = slo_of(out);
  if (!slo.ok()) return report_error(what, slo.status());

  std::optional<PresetSweep> preset;
  if (!out.workload.empty()) {
    Result<PresetSweep> ps = preset_sweep(
        out.workload, out.scale,
        data.num_prompts_set ? std::optional<int64_t>(data.num_prompts) : std::nullopt);
    if (!ps.ok()) return report_error(what, ps.status());
    if ((ps->parameter == "max_num_seqs") != tp) {
      return report_error(what, invalid_argument(fmt::format(
                                    "{} sweeps {}: run it with `kite bench sweep {}`", out.workload,
                                    ps->parameter, tp ? "serve" : "throughput")));
    }
    ps->point_seconds = cmd.point_seconds;
    preset = *ps;
  }
  std::string parameter = cmd.parameter;
  if (parameter.empty())
    parameter = preset ? preset->parameter : (tp ? "max_num_seqs" : "request_rate");
  std::vector<double> grid;
  if (!cmd.grid.empty()) {
    Result<std::vector<double>> g = parse_grid(cmd.grid, parameter == "request_rate");
    if (!g.ok()) return report_error(what, g.status().with_context("--" + parameter));
    grid = *g;
  } else if (preset) {
    grid = preset->grid;
  } else {
    return report_error(what, invalid_argument(fmt::format(
                                  "give the grid, e.g. --{} 1,2,4,8",
                                  parameter == "max_num_seqs" ? "max-num-seqs" : "request-rate")));
  }
  if (parameter != "request_rate") {
    for (double v : grid) {
      if (v != std::floor(v)) {
        return report_error(
            what, invalid_argument(fmt::format("{} must be whole numbers, got {}", parameter, v)));
      }
    }
  }
  if (!cmd.maximize.empty() && !cmd.minimize.empty()) {
    return report_error(what, invalid_argument("give --maximize or --minimize, not both"));
  }
  const bool maximize = cmd.minimize.empty();
  std::string objective = !cmd.maximize.empty() ? cmd.maximize : cmd.minimize;
  if (objective.empty()) objective = preset ? preset->objective : "output_throughput";
  std::vector<Constraint> constraints;
  std::vector<std::string> constraint_texts = cmd.subject_to;
  if (constraint_texts.empty() && preset) constraint_texts.push_back(preset->constraint);
  for (const std::string& t : constraint_texts) {
    Result<Constraint> c = parse_constraint(t);
    if (!c.ok()) return report_error(what, c.status());
    constraints.push_back(*c);
  }
  const int refine = cmd.refine >= 0 ? cmd.refine : (preset ? preset->refine : 0);
  const std::string label = !out.label.empty()               ? out.label
                            : tp                             ? "kite"
                            : !cmd.serve.engine_name.empty() ? cmd.serve.engine_name
                            : !cmd.launch_model.empty()      ? "kite serve"
                                                             : "server";

  // Serve mode: the server to load (given, or launched here).
  ServeOptions serve = cmd.serve.serve;
  std::unique_ptr<ServerProcess> server;
  if (!tp) {
    if (serve.api_key.empty()) {
      if (const char* k = std::getenv("OPENAI_API_KEY")) serve.api_key = k;
    }
    if (serve.endpoint.find("chat") != std::string::npos)
      serve.request.api = ApiKind::kChatCompletions;
    if (!cmd.launch_model.empty()) {
      Result<int> port = pick_free_port();
      if (!port.ok()) return report_error(what, port.status());
      if (serve.request.model.empty()) serve.request.model = "kite-bench";
      std::vector<std::string> argv =
          kite_serve_command(cmd.server_binary.empty() ? self_executable() : cmd.server_binary,
                             cmd.launch_model, cmd.serve_args, serve.request.model);
      for (std::string& a : argv) {
        if (a == "{PORT}") a = std::to_string(*port);
      }
      std::string log = result_path(out, label, "server", false);
      log = log.substr(0, log.size() - 5) + ".log";  // ".json" -> ".log"
      std::error_code ec;
      std::filesystem::create_directories(out.result_dir, ec);
      Result<std::unique_ptr<ServerProcess>> p = ServerProcess::spawn(argv, log);
      if (!p.ok()) return report_error(what, p.status());
      server = std::move(*p);
      serve.base_url = fmt::format("http://127.0.0.1:{}", *port);
      std::fprintf(stderr, "kite bench: started `%s serve %s` on port %d (log: %s)\n",
                   argv[0].c_str(), cmd.launch_model.c_str(), *port, log.c_str());
      Result<double> ready = server->wait_healthy(*parse_http_url(serve.base_url), "/health",
                                                  std::chrono::minutes(10));
      if (!ready.ok()) return report_error(what, ready.status());
      if (cmd.serve.engine_name.empty()) cmd.serve.engine_name = "kite";
      if (cmd.serve.model_path.empty()) cmd.serve.model_path = cmd.launch_model;
    }
  }

  const PresetRun* preset_run = preset ? &preset->run : nullptr;
  auto run_point = [&](double v) -> PointRun {
    PointRun pr;
    pr.point.value = v;
    pr.num_prompts = preset ? preset->prompts_at(v) : data.num_prompts;
    Result<bj::object> result = [&]() -> Result<bj::object> {
      if (tp) {
        ThroughputCommand tc = cmd.throughput;
        tc.engine.max_num_seqs = static_cast<int>(v);
        tc.out.progress_suffix = fmt::format(" {}={:g}", parameter, v);
        KITE_ASSIGN_OR_RETURN(
            ThroughputOutcome o,
            run_one_throughput(tc, nullptr, preset_run, pr.num_prompts, *pcts, *slo, label));
        return std::move(o.result);
      }
      ServeOptions so = serve;
      if (parameter == "request_rate") {
        so.arrivals.request_rate = v;
      } else {
        so.max_concurrency = static_cast<int>(v);
      }
      so.arrivals.seed = data.seed;
      ServeCommand sc = cmd.serve;
      sc.out.progress_suffix = fmt::format(" {}={:g}", parameter, v);
      KITE_ASSIGN_OR_RETURN(ServeOutcome o,
                            run_one_serve(sc, so, preset_run, pr.num_prompts, *pcts, *slo, label));
      return std::move(o.result);
    }();
    if (!result.ok()) {
      pr.point.error = result.status().message();
      return pr;
    }
    pr.point.ran = true;
    pr.point.metrics = result->at("metrics").as_object();
    pr.result = std::move(*result);
    return pr;
  };

  std::vector<PointRun> runs;
  std::vector<SweepPoint> points;
  std::vector<std::string> notes;
  for (size_t i = 0; i < grid.size(); ++i) {
    const double v = grid[i];
    runs.push_back(run_point(v));
    points.push_back(runs.back().point);
    print_point(parameter, runs.back(), objective, constraints);
    if (cmd.stop_at_first_infeasible && !constraints.empty() &&
        !point_feasible(runs.back().point, constraints) && i + 1 < grid.size()) {
      notes.push_back(fmt::format(
          "stopped at {}={:g}, the first infeasible point (larger settings assumed infeasible too)",
          parameter, v));
      break;
    }
  }
  for (int i = 0; i < refine; ++i) {
    std::optional<double> next = next_refinement(
        points, constraints, parameter == "request_rate" ? 0.05 : 1.0, parameter != "request_rate");
    if (!next) break;
    runs.push_back(run_point(*next));
    points.push_back(runs.back().point);
    print_point(parameter, runs.back(), objective, constraints);
  }
  if (server) server->stop();

  SweepChoice choice = choose_best(points, objective, maximize, constraints);
  bj::object r = new_result("sweep", label);
  for (const PointRun& p : runs) {
    if (!p.point.ran) continue;
    for (const char* key : {"engine", "model", "workload", "config", "server"}) {
      if (p.result.contains(key)) r[key] = p.result.at(key);
    }
    break;
  }
  if (r.contains("workload")) {
    bj::object& w = r["workload"].as_object();
    if (preset) {
      w["name"] = preset->run.name;
      w["time_bound"] = preset->time_bound;
    }
    w.erase("num_prompts");
    w.erase("max_concurrency");
    if (parameter == "request_rate") w.erase("request_rate");
  }
  bj::array pts;
  for (size_t i = 0; i < runs.size(); ++i) {
    const PointRun& p = runs[i];
    bj::object po{{"value", number_or_inf(p.point.value)},
                  {"ran", p.point.ran},
                  {"feasible", static_cast<bool>(choice.feasible[i])},
                  {"num_prompts", p.num_prompts},
                  {"metrics", p.point.metrics}};
    if (!p.point.ran) po["error"] = p.point.error;
    if (cmd.save_points && p.point.ran) {
      const std::string path =
          result_path(out, label,
                      fmt::format("{}-{}{:g}", preset ? preset->run.file_stem : "sweep", parameter,
                                  p.point.value),
                      false);
      if (write_result_file(p.result, path).ok()) po["result_file"] = path;
    }
    pts.push_back(std::move(po));
  }
  bj::array cons;
  for (const Constraint& c : constraints) cons.emplace_back(c.text);
  bj::object sw{{"mode", cmd.mode},
                {"parameter", parameter},
                {"objective", objective},
                {"maximize", maximize},
                {"constraints", cons},
                {"points", pts},
                {"stop_at_first_infeasible", cmd.stop_at_first_infeasible},
                {"refine", refine}};
  if (choice.best) {
    sw["best_index"] = static_cast<int64_t>(*choice.best);
    sw["best_value"] = number_or_inf(points[*choice.best].value);
    r["metrics"] = points[*choice.best].metrics;
  } else {
    sw["best_index"] = nullptr;
    sw["best_value"] = nullptr;
    sw["reason"] = choice.reason;
    r["metrics"] = bj::object{};
  }
  r["sweep"] = std::move(sw);
  r["slo"] = slo_json(*slo);
  bj::array n;
  for (const std::string& s : notes) n.emplace_back(s);
  for (const std::string& s : out.notes) n.emplace_back(s);
  r["notes"] = std::move(n);

  if (choice.best) {
    const SweepPoint& b = points[*choice.best];
    std::printf("Best %s = %g: %s = %.2f", parameter.c_str(), b.value, objective.c_str(),
                lookup_metric(b.metrics, objective).value_or(0));
    for (const Constraint& c : constraints) {
      std::printf(", %s = %.2f", c.metric.c_str(), lookup_metric(b.metrics, c.metric).value_or(0));
    }
    std::printf(" (output %.1f tok/s)\n",
                lookup_metric(b.metrics, "output_throughput").value_or(0));
  } else {
    std::printf("No feasible %s: %s\n", parameter.c_str(), choice.reason.c_str());
  }
  std::fflush(stdout);
  const std::string stem = preset ? preset->run.file_stem : "sweep-" + parameter;
  Status w = write_result_file(r, result_path(out, label, stem, true));
  if (!w.ok()) return report_error(what, w);
  size_t ran = 0;
  for (const SweepPoint& p : points) ran += p.ran;
  return ran > 0 ? 0 : 1;
}

}  // namespace kite::bench
