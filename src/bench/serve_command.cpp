// `kite bench serve`: the load generator against an OpenAI-compatible server.
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

#include "bench/command_util.h"
#include "bench/http_client.h"
#include "bench/model_info.h"
#include "bench/presets.h"
#include "bench/result.h"

namespace kite::bench {

namespace bj = boost::json;

namespace {

// Token counts from the server's /tokenize (vLLM and kite have one), or nullptr when it has none.
TokenCounter server_token_counter(const ServeOptions& serve) {
  Result<HttpUrl> url = parse_http_url(serve.base_url);
  if (!url.ok()) return nullptr;
  auto count = [url = *url, serve](const std::string& text) -> Result<int64_t> {
    bj::object body{{"model", serve.request.model}, {"prompt", text}};
    HttpResponse r =
        http_request_sync(url, true, join_target(url, "/tokenize"), bj::serialize(body),
                          std::chrono::seconds(30), serve.api_key);
    if (!r.ok()) return unavailable(fmt::format("POST /tokenize: HTTP {} {}", r.status, r.error));
    boost::system::error_code ec;
    bj::value v = bj::parse(r.body, ec);
    if (ec || !v.is_object()) return unavailable("POST /tokenize: not a JSON object");
    const bj::object& o = v.get_object();
    if (const bj::value* c = o.if_contains("count"); c && c->is_int64()) return c->get_int64();
    if (const bj::value* t = o.if_contains("tokens"); t && t->is_array()) {
      return static_cast<int64_t>(t->get_array().size());
    }
    return unavailable("POST /tokenize: no count or tokens");
  };
  if (!count("hello").ok()) return nullptr;
  return count;
}

// GET /v1/models (the served names and, for vLLM and kite, max_model_len); null if it fails.
bj::value server_models(const ServeOptions& serve) {
  Result<HttpUrl> url = parse_http_url(serve.base_url);
  if (!url.ok()) return nullptr;
  HttpResponse r = http_request_sync(*url, false, join_target(*url, "/v1/models"), "",
                                     std::chrono::seconds(10), serve.api_key);
  if (!r.ok()) return nullptr;
  boost::system::error_code ec;
  bj::value v = bj::parse(r.body, ec);
  if (ec || !v.is_object()) return nullptr;
  if (const bj::value* data = v.get_object().if_contains("data")) return *data;
  return nullptr;
}

}  // namespace

Result<ServeOutcome> run_one_serve(const ServeCommand& cmd, const ServeOptions& serve_in,
                                   const PresetRun* preset, int64_t num_prompts,
                                   const std::vector<double>& percentiles, const Slo& slo,
                                   const std::string& label) {
  ServeOptions serve = serve_in;
  serve.progress = cmd.out.progress;
  std::vector<PromptSpec> prompts;
  std::vector<std::string> notes;
  int64_t vocab = cmd.data.vocab_size;
  if (vocab <= 0 && !cmd.model_path.empty())
    vocab = vocab_size_from_config(cmd.model_path).value_or(0);
  if (preset != nullptr) {
    serve.request.ignore_eos = true;
    if (preset->max_concurrency > 0) serve.max_concurrency = preset->max_concurrency;
    serve.progress_label = preset->name;
    if (preset->chat_prompts) {
      KITE_ASSIGN_OR_RETURN(prompts, w4_chat_prompts(num_prompts, preset->output_len));
    } else {
      DatasetOptions d = cmd.data;
      d.name = "random";
      d.input_len = preset->input_len;
      d.output_len = preset->output_len;
      d.range_ratio = 0;
      d.prefix_len = 0;
      KITE_ASSIGN_OR_RETURN(prompts, make_prompts(d, num_prompts, vocab, {}, nullptr));
    }
  } else {
    TokenCounter counter;
    if (cmd.data.name == "sharegpt") {
      counter = server_token_counter(serve);
      if (!counter) {
        notes.push_back("the server has no /tokenize: ShareGPT lengths estimated from characters");
      }
    }
    KITE_ASSIGN_OR_RETURN(prompts, make_prompts(cmd.data, num_prompts, vocab, {}, counter));
  }
  serve.progress_label += cmd.out.progress_suffix;
  KITE_ASSIGN_OR_RETURN(ServeRun run, run_serve_benchmark(serve, prompts));
  ServeOutcome o;
  o.metrics = compute_metrics(run.samples, run.duration_s, slo, percentiles);
  bj::object& r = o.result = new_result("serve", label);
  bj::value models = server_models(serve);
  std::string engine_name = cmd.engine_name;
  if (engine_name.empty() && models.is_array() && !models.get_array().empty() &&
      models.get_array()[0].is_object()) {
    // vLLM answers owned_by "vllm"; other servers name themselves (or their organisation).
    engine_name = get_string(models.get_array()[0].get_object(), "owned_by");
  }
  r["engine"] = bj::object{{"name", engine_name.empty() ? "unknown" : engine_name},
                           {"base_url", serve.base_url}};
  r["server"] = bj::object{{"models", models}};
  bj::object model = cmd.model_path.empty() ? bj::object{} : model_json(cmd.model_path);
  model["served_model_name"] = serve.request.model;
  if (!model.contains("name")) model["name"] = serve.request.model;
  r["model"] = std::move(model);
  bj::object workload = preset != nullptr ? preset_workload_json(*preset, num_prompts)
                                          : dataset_workload_json(cmd.data, num_prompts);
  workload["ignore_eos"] = serve.request.ignore_eos;
  workload["request_rate"] = number_or_inf(serve.arrivals.request_rate);
  workload["burstiness"] = serve.arrivals.burstiness;
  workload["max_concurrency"] = serve.max_concurrency;
  workload["endpoint"] = serve.endpoint;
  r["workload"] = std::move(workload);
  bj::object cfg{{"base_url", serve.base_url},
                 {"endpoint", serve.endpoint},
                 {"request_timeout_s", serve.request_timeout_s},
                 {"num_warmups", serve.num_warmups},
                 {"include_usage", serve.request.include_usage},
                 {"connections_opened", run.connections_opened},
                 {"arrival_seed", serve.arrivals.seed}};
  if (serve.request.temperature) cfg["temperature"] = *serve.request.temperature;
  if (serve.request.top_p) cfg["top_p"] = *serve.request.top_p;
  if (serve.request.top_k) cfg["top_k"] = *serve.request.top_k;
  if (!serve.request.extra_body_json.empty()) cfg["extra_body"] = serve.request.extra_body_json;
  if (!serve.request.response_formats.empty()) {
    cfg["response_formats"] = static_cast<int64_t>(serve.request.response_formats.size());
  }
  r["config"] = std::move(cfg);
  add_run_sections(r, o.metrics, run.samples, slo, cmd.out, std::move(notes));
  return o;
}

int run_serve_command(ServeCommand& cmd) {
  Result<std::vector<double>> pcts = parse_percentiles(cmd.out.percentiles);
  if (!pcts.ok()) return report_error("serve", pcts.status());
  Result<Slo> slo = slo_of(cmd.out);
  if (!slo.ok()) return report_error("serve", slo.status());
  Result<double> rate = parse_rate(cmd.request_rate);
  if (!rate.ok()) return report_error("serve", rate.status());
  ServeOptions serve = cmd.serve;
  if (!cmd.response_format_file.empty()) {
    auto formats = read_response_formats(cmd.response_format_file);
    if (!formats.ok()) return report_error("serve", formats.status());
    serve.request.response_formats = std::move(*formats);
  }
  serve.arrivals.request_rate = *rate;
  serve.arrivals.seed = cmd.data.seed;
  if (serve.api_key.empty()) {
    if (const char* k = std::getenv("OPENAI_API_KEY")) serve.api_key = k;
  }
  if (serve.endpoint.find("chat") != std::string::npos)
    serve.request.api = ApiKind::kChatCompletions;
  const std::string label = !cmd.out.label.empty()
                                ? cmd.out.label
                                : (cmd.engine_name.empty() ? "server" : cmd.engine_name);
  if (cmd.out.workload.empty()) {
    Result<ServeOutcome> o =
        run_one_serve(cmd, serve, nullptr, cmd.data.num_prompts, *pcts, *slo, label);
    if (!o.ok()) return report_error("serve", o.status());
    print_summary("Serving Benchmark Result", o->metrics, *pcts);
    Status w = write_result_file(o->result, result_path(cmd.out, label, "serve", true));
    return w.ok() ? 0 : report_error("serve", w);
  }
  Result<std::vector<PresetRun>> runs = preset_runs(
      cmd.out.workload, cmd.out.scale,
      cmd.data.num_prompts_set ? std::optional<int64_t>(cmd.data.num_prompts) : std::nullopt);
  if (!runs.ok()) return report_error("serve", runs.status());
  runs = apply_preset_prompts(std::move(*runs), cmd.out.preset_prompts);
  if (!runs.ok()) return report_error("serve", runs.status());
  if (runs->empty())
    return report_error("serve", invalid_argument("--preset-prompts dropped every run"));
  int failures = 0;
  for (const PresetRun& p : *runs) {
    Result<ServeOutcome> o = run_one_serve(cmd, serve, &p, p.num_prompts, *pcts, *slo, label);
    if (!o.ok()) {
      report_error(fmt::format("serve ({})", p.name), o.status());
      ++failures;
      continue;
    }
    print_summary(p.name, o->metrics, *pcts);
    Status w = write_result_file(o->result, result_path(cmd.out, label, p.file_stem, false));
    if (!w.ok()) {
      report_error("serve", w);
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace kite::bench
