#include "bench/command_util.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>

#include "bench/presets.h"
#include "bench/result.h"

namespace kite::bench {

namespace bj = boost::json;

Result<std::vector<double>> parse_percentiles(std::string_view text) {
  std::vector<double> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string_view item =
        text.substr(pos, comma == std::string_view::npos ? text.npos : comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    double p = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), p);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || p < 0 || p > 100) {
      return invalid_argument(
          fmt::format("--metric-percentiles: '{}' is not a percentile in [0, 100]", item));
    }
    out.push_back(p);
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

Result<Slo> slo_of(const OutputOptions& out) {
  if (out.slo.empty()) return Slo{};
  Result<Slo> s = parse_slo(out.slo);
  if (!s.ok()) return s.status().with_context("--slo");
  return s;
}

Result<double> parse_rate(std::string_view text) {
  if (text == "inf" || text == "Inf" || text == "INF") return INFINITY;
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || !(v > 0) ||
      std::isinf(v)) {
    return invalid_argument(
        fmt::format("--request-rate: '{}' is not a positive number or inf", text));
  }
  return v;
}

Status check_dataset(const DatasetOptions& d) {
  if (d.name != "random" && d.name != "sharegpt" && d.name != "jsonl") {
    return invalid_argument(
        fmt::format("--dataset-name must be random, sharegpt or jsonl, got '{}'", d.name));
  }
  if (d.name != "random" && d.path.empty()) {
    return invalid_argument(fmt::format("--dataset-name {} needs --dataset-path", d.name));
  }
  if (d.num_prompts <= 0) {
    return invalid_argument(fmt::format("--num-prompts must be > 0, got {}", d.num_prompts));
  }
  return ok_status();
}

Result<std::vector<PromptSpec>> make_prompts(const DatasetOptions& d, int64_t num_prompts,
                                             int64_t vocab_size,
                                             const std::vector<int32_t>& excluded_ids,
                                             const TokenCounter& count_tokens) {
  KITE_RETURN_IF_ERROR(check_dataset(d));
  if (d.name == "sharegpt") {
    return sharegpt_dataset({d.path, num_prompts, d.sharegpt_output_len, d.seed}, count_tokens);
  }
  if (d.name == "jsonl") return jsonl_dataset(d.path, num_prompts, d.output_len);
  RandomDatasetConfig c;
  c.num_prompts = num_prompts;
  c.input_len = d.input_len;
  c.output_len = d.output_len;
  c.range_ratio = d.range_ratio;
  c.prefix_len = d.prefix_len;
  c.vocab_size = vocab_size;
  c.excluded_ids = excluded_ids;
  c.seed = d.seed;
  return random_dataset(c);
}

bj::object dataset_workload_json(const DatasetOptions& d, int64_t num_prompts) {
  bj::object w;
  w["preset"] = "";
  w["dataset"] = d.name;
  w["num_prompts"] = num_prompts;
  if (d.name == "random") {
    w["name"] = fmt::format("random ({},{})", d.input_len, d.output_len);
    w["input_len"] = d.input_len;
    w["output_len"] = d.output_len;
    w["range_ratio"] = d.range_ratio;
    w["prefix_len"] = d.prefix_len;
  } else {
    w["name"] = d.name;
    w["dataset_path"] = d.path;
    if (d.name == "sharegpt" && d.sharegpt_output_len > 0) w["output_len"] = d.sharegpt_output_len;
    if (d.name == "jsonl") w["output_len"] = d.output_len;
  }
  w["seed"] = d.seed;
  return w;
}

Result<std::vector<PresetRun>> apply_preset_prompts(std::vector<PresetRun> runs,
                                                    std::string_view counts) {
  if (counts.empty()) return runs;
  std::vector<PresetRun> out;
  size_t pos = 0;
  for (size_t i = 0; pos <= counts.size(); ++i) {
    size_t comma = counts.find(',', pos);
    std::string_view item =
        counts.substr(pos, comma == std::string_view::npos ? counts.npos : comma - pos);
    int64_t n = -1;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || n < 0) {
      return invalid_argument(fmt::format("--preset-prompts: '{}' is not a count", item));
    }
    if (i >= runs.size()) {
      return invalid_argument(
          fmt::format("--preset-prompts has more counts than the preset's {} "
                      "runs",
                      runs.size()));
    }
    if (n > 0) {
      runs[i].num_prompts = n;
      out.push_back(runs[i]);
    }
    if (comma == std::string_view::npos) {
      for (size_t k = i + 1; k < runs.size(); ++k) out.push_back(runs[k]);
      break;
    }
    pos = comma + 1;
  }
  return out;
}

bj::object preset_workload_json(const PresetRun& p, int64_t num_prompts) {
  bj::object w;
  w["preset"] = p.preset;
  w["name"] = p.name;
  w["dataset"] = p.chat_prompts ? "w4_chat_prompts" : "random";
  w["num_prompts"] = num_prompts;
  if (p.input_len > 0) w["input_len"] = p.input_len;
  w["output_len"] = p.output_len;
  w["range_ratio"] = 0.0;
  w["ignore_eos"] = true;
  if (p.max_concurrency > 0) w["max_concurrency"] = p.max_concurrency;
  w["reference_model"] = p.model_hint;
  return w;
}

void add_run_sections(bj::object& r, const BenchmarkMetrics& m,
                      const std::vector<RequestSample>& samples, const Slo& slo,
                      const OutputOptions& out, std::vector<std::string> notes) {
  r["metrics"] = metrics_json(m);
  r["slo"] = slo_json(slo);
  r["token_check"] = token_check_json(m);
  r["failures"] = failures_json(m);
  if (out.save_samples) r["samples"] = samples_json(samples, out.save_detailed);
  if (m.prompt_token_mismatches > 0) {
    notes.push_back(
        fmt::format("{} requests: the server counted a different number of prompt "
                    "tokens than were sent",
                    m.prompt_token_mismatches));
  }
  if (m.output_token_mismatches > 0) {
    notes.push_back(
        fmt::format("{} requests produced a different number of tokens than asked "
                    "for although EOS was ignored",
                    m.output_token_mismatches));
  }
  if (m.usage_missing > 0) {
    notes.push_back(
        fmt::format("{} requests: no usage in the stream; output tokens counted as "
                    "chunks",
                    m.usage_missing));
  }
  for (const std::string& n : out.notes) notes.push_back(n);
  bj::array a;
  for (const std::string& n : notes) a.emplace_back(n);
  r["notes"] = std::move(a);
}

namespace {

void line(std::string_view name, const std::string& value) {
  std::printf("%-40s %s\n", std::string(name).c_str(), value.c_str());
}

void dist_lines(std::string_view title, const Distribution& d,
                const std::vector<double>& percentiles) {
  std::printf("%s\n", fmt::format("{:-^56}", fmt::format(" {} ", title)).c_str());
  if (d.count == 0) {
    line("(no samples)", "");
    return;
  }
  const std::string short_name(title.substr(0, title.find(' ')));
  line(fmt::format("Mean {} (ms):", short_name), fmt::format("{:.2f}", d.mean));
  line(fmt::format("Median {} (ms):", short_name), fmt::format("{:.2f}", d.median));
  line(fmt::format("Std {} (ms):", short_name), fmt::format("{:.2f}", d.std));
  for (double p : percentiles) {
    if (p == 50) continue;
    const double* v = d.find_percentile(p);
    if (v) line(fmt::format("P{:g} {} (ms):", p, short_name), fmt::format("{:.2f}", *v));
  }
}

}  // namespace

void print_summary(std::string_view title, const BenchmarkMetrics& m,
                   const std::vector<double>& percentiles) {
  std::printf("%s\n", fmt::format("{:=^56}", fmt::format(" {} ", title)).c_str());
  line("Successful requests:", fmt::format("{}", m.completed));
  line("Failed requests:", fmt::format("{}", m.failed));
  for (const auto& [k, v] : m.failures) line(fmt::format("  {}:", k), fmt::format("{}", v));
  line("Benchmark duration (s):", fmt::format("{:.2f}", m.duration_s));
  line("Total input tokens:", fmt::format("{}", m.total_input_tokens));
  line("Total generated tokens:", fmt::format("{}", m.total_output_tokens));
  line("Request throughput (req/s):", fmt::format("{:.2f}", m.request_throughput));
  line("Output token throughput (tok/s):", fmt::format("{:.2f}", m.output_throughput));
  line("Total token throughput (tok/s):", fmt::format("{:.2f}", m.total_token_throughput));
  if (m.goodput) line("Goodput (req/s):", fmt::format("{:.2f}", *m.goodput));
  line("Max concurrent requests:", fmt::format("{}", m.max_concurrency_observed));
  dist_lines("TTFT (time to first token)", m.ttft_ms, percentiles);
  dist_lines("TPOT (time per output token, excl. 1st)", m.tpot_ms, percentiles);
  dist_lines("ITL (inter-token latency)", m.itl_ms, percentiles);
  dist_lines("E2E (end-to-end latency)", m.e2e_ms, percentiles);
  if (m.prompt_token_mismatches || m.output_token_mismatches) {
    line("Token-count mismatches (prompt/output):",
         fmt::format("{}/{}", m.prompt_token_mismatches, m.output_token_mismatches));
  }
  std::printf("%s\n", std::string(56, '=').c_str());
  std::fflush(stdout);
}

std::string result_path(const OutputOptions& out, std::string_view label, std::string_view stem,
                        bool single) {
  if (single && !out.output_json.empty()) return out.output_json;
  std::string name = fmt::format("{}-{}", label, stem);
  for (char& c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    if (!ok) c = '_';
  }
  return (out.result_dir.empty() ? std::string(".") : out.result_dir) + "/" + name + ".json";
}

Status write_result_file(const bj::object& result, const std::string& path) {
  KITE_RETURN_IF_ERROR(write_result(result, path));
  std::fprintf(stderr, "kite bench: wrote %s\n", path.c_str());
  return ok_status();
}

int report_error(std::string_view what, const Status& s) {
  std::fprintf(stderr, "kite bench %s: error: %s\n", std::string(what).c_str(),
               s.message().c_str());
  return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace kite::bench
