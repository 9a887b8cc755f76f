#include "cli/offline_batch.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>

namespace kite::cli {
namespace json = boost::json;
namespace {

Status field_error(std::string_view field, std::string_view what) {
  return invalid_argument(fmt::format("field '{}' {}", field, what));
}

Result<double> as_number(const json::value& v, std::string_view field) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return field_error(field, "must be a number");
}

Result<int64_t> as_int(const json::value& v, std::string_view field) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v.get_uint64());
  }
  if (v.is_double() && std::floor(v.get_double()) == v.get_double() &&
      std::fabs(v.get_double()) < 9e15) {
    return static_cast<int64_t>(v.get_double());
  }
  return field_error(field, "must be an integer");
}

Result<int32_t> as_int32(const json::value& v, std::string_view field) {
  KITE_ASSIGN_OR_RETURN(int64_t x, as_int(v, field));
  if (x < INT32_MIN || x > INT32_MAX) return field_error(field, "is out of range");
  return static_cast<int32_t>(x);
}

Result<bool> as_bool(const json::value& v, std::string_view field) {
  if (!v.is_bool()) return field_error(field, "must be true or false");
  return v.get_bool();
}

Result<std::vector<int32_t>> as_ids(const json::value& v, std::string_view field) {
  if (!v.is_array()) return field_error(field, "must be an array of token ids");
  std::vector<int32_t> ids;
  for (const json::value& x : v.get_array()) {
    KITE_ASSIGN_OR_RETURN(int32_t id, as_int32(x, field));
    ids.push_back(id);
  }
  return ids;
}

Status apply_sampling_field(std::string_view key, const json::value& v, SamplingParams* p,
                            int* priority) {
  if (key == "n") {
    KITE_ASSIGN_OR_RETURN(int64_t x, as_int(v, key));
    if (x < 1 || x > 1024) return field_error(key, "must be in [1, 1024]");
    p->n = static_cast<int>(x);
  } else if (key == "temperature") {
    KITE_ASSIGN_OR_RETURN(p->temperature, as_number(v, key));
  } else if (key == "top_p") {
    KITE_ASSIGN_OR_RETURN(p->top_p, as_number(v, key));
  } else if (key == "top_k") {
    KITE_ASSIGN_OR_RETURN(p->top_k, as_int32(v, key));
  } else if (key == "min_p") {
    KITE_ASSIGN_OR_RETURN(p->min_p, as_number(v, key));
  } else if (key == "repetition_penalty") {
    KITE_ASSIGN_OR_RETURN(p->repetition_penalty, as_number(v, key));
  } else if (key == "presence_penalty") {
    KITE_ASSIGN_OR_RETURN(p->presence_penalty, as_number(v, key));
  } else if (key == "frequency_penalty") {
    KITE_ASSIGN_OR_RETURN(p->frequency_penalty, as_number(v, key));
  } else if (key == "max_tokens") {
    KITE_ASSIGN_OR_RETURN(p->max_tokens, as_int(v, key));
  } else if (key == "min_tokens") {
    KITE_ASSIGN_OR_RETURN(p->min_tokens, as_int(v, key));
  } else if (key == "seed") {
    if (v.is_null()) {
      p->seed.reset();
    } else {
      KITE_ASSIGN_OR_RETURN(int64_t x, as_int(v, key));
      p->seed = static_cast<uint64_t>(x);
    }
  } else if (key == "stop") {
    p->stop.clear();
    if (v.is_string()) {
      p->stop.emplace_back(v.get_string());
    } else if (v.is_array()) {
      for (const json::value& s : v.get_array()) {
        if (!s.is_string()) return field_error(key, "must be a string or an array of strings");
        p->stop.emplace_back(s.get_string());
      }
    } else if (!v.is_null()) {
      return field_error(key, "must be a string or an array of strings");
    }
  } else if (key == "stop_token_ids") {
    KITE_ASSIGN_OR_RETURN(p->stop_token_ids, as_ids(v, key));
  } else if (key == "ignore_eos") {
    KITE_ASSIGN_OR_RETURN(p->ignore_eos, as_bool(v, key));
  } else if (key == "skip_special_tokens") {
    KITE_ASSIGN_OR_RETURN(p->skip_special_tokens, as_bool(v, key));
  } else if (key == "include_stop_str_in_output") {
    KITE_ASSIGN_OR_RETURN(p->include_stop_str_in_output, as_bool(v, key));
  } else if (key == "logprobs") {
    if (v.is_null()) {
      p->logprobs.reset();
    } else {
      KITE_ASSIGN_OR_RETURN(int32_t x, as_int32(v, key));
      p->logprobs = x;
    }
  } else if (key == "prompt_logprobs") {
    if (v.is_null()) {
      p->prompt_logprobs.reset();
    } else {
      KITE_ASSIGN_OR_RETURN(int32_t x, as_int32(v, key));
      p->prompt_logprobs = x;
    }
  } else if (key == "logit_bias") {
    if (!v.is_object()) return field_error(key, "must be an object of token id -> bias");
    p->logit_bias.clear();
    for (const auto& kv : v.get_object()) {
      int32_t id = 0;
      const std::string k(kv.key());
      char* end = nullptr;
      const long parsed = std::strtol(k.c_str(), &end, 10);
      if (k.empty() || *end != '\0' || parsed < INT32_MIN || parsed > INT32_MAX) {
        return field_error(key, fmt::format("has key '{}', which is not a token id", k));
      }
      id = static_cast<int32_t>(parsed);
      KITE_ASSIGN_OR_RETURN(double bias, as_number(kv.value(), key));
      p->logit_bias.emplace_back(id, static_cast<float>(bias));
    }
  } else if (key == "priority") {
    KITE_ASSIGN_OR_RETURN(*priority, as_int32(v, key));
  } else {
    return invalid_argument(fmt::format("unknown field '{}'", key));
  }
  return ok_status();
}

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

json::value logprob_json(const LogprobEntry& e) {
  json::object o;
  o["token_id"] = e.token_id;
  o["logprob"] = e.logprob;
  o["rank"] = e.rank;
  json::array top;
  for (const TokenLogprob& t : e.top)
    top.push_back(json::object{{"token_id", t.token_id}, {"logprob", t.logprob}});
  o["top"] = std::move(top);
  return o;
}

// Everything one request's stream delivered.
struct Slot {
  std::string id;
  std::shared_ptr<RequestStream> stream;
  std::string error;  // the line could not run
  bool done = false;
  int n = 1;
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::string> text;
  std::vector<std::vector<LogprobEntry>> logprobs;
  std::vector<FinishReason> finish;
  std::vector<std::variant<std::monostate, std::string, int32_t>> stop_reason;
  std::vector<int32_t> prompt_token_ids;
  std::vector<LogprobEntry> prompt_logprobs;
  bool has_prompt_logprobs = false;
  bool has_logprobs = false;
  RequestMetrics metrics;
  Status status;

  void absorb(RequestOutput& out) {
    if (!out.prompt_token_ids.empty()) prompt_token_ids = std::move(out.prompt_token_ids);
    if (!out.prompt_logprobs.empty()) prompt_logprobs = std::move(out.prompt_logprobs);
    for (ChoiceDelta& d : out.choices) {
      const auto i = static_cast<size_t>(d.index);
      tokens[i].insert(tokens[i].end(), d.token_ids.begin(), d.token_ids.end());
      text[i] += d.text;
      for (LogprobEntry& e : d.logprobs) logprobs[i].push_back(std::move(e));
      if (d.finish_reason != FinishReason::kNone) {
        finish[i] = d.finish_reason;
        stop_reason[i] = d.stop_reason;
      }
    }
    if (out.finished) {
      done = true;
      metrics = out.metrics;
      status = out.error;
    }
  }

  json::object to_json(int64_t index) const {
    json::object o;
    o["index"] = index;
    o["id"] = id;
    if (!error.empty()) {
      o["error"] = error;
      return o;
    }
    o["prompt_token_ids"] = json::value_from(prompt_token_ids);
    if (has_prompt_logprobs) {
      json::array pl;
      for (size_t i = 0; i < prompt_logprobs.size(); ++i) {
        pl.push_back(i == 0 ? json::value(nullptr) : logprob_json(prompt_logprobs[i]));
      }
      o["prompt_logprobs"] = std::move(pl);
    }
    json::array outs;
    for (int c = 0; c < n; ++c) {
      const auto i = static_cast<size_t>(c);
      json::object ch;
      ch["index"] = c;
      ch["text"] = text[i];
      ch["token_ids"] = json::value_from(tokens[i]);
      ch["finish_reason"] = finish_reason_name(finish[i]);
      if (const auto* s = std::get_if<std::string>(&stop_reason[i])) {
        ch["stop_reason"] = *s;
      } else if (const auto* t = std::get_if<int32_t>(&stop_reason[i])) {
        ch["stop_reason"] = *t;
      } else {
        ch["stop_reason"] = nullptr;
      }
      if (has_logprobs) {
        json::array lp;
        for (const LogprobEntry& e : logprobs[i]) lp.push_back(logprob_json(e));
        ch["logprobs"] = std::move(lp);
      }
      outs.push_back(std::move(ch));
    }
    o["outputs"] = std::move(outs);
    if (!status.ok()) o["error"] = status.to_string();
    o["num_cached_tokens"] = metrics.num_cached_tokens;
    json::object m;
    m["ttft_s"] = seconds(metrics.arrival_time, metrics.first_token_time);
    m["e2e_s"] = seconds(metrics.arrival_time, metrics.finished_time);
    m["num_prompt_tokens"] = metrics.num_prompt_tokens;
    m["num_generation_tokens"] = metrics.num_generation_tokens;
    m["num_preemptions"] = metrics.num_preemptions;
    o["metrics"] = std::move(m);
    return o;
  }
};

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

double mean(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

// A one-line progress bar on stderr (redrawn in place on a terminal, every 10% otherwise).
class Progress {
 public:
  Progress(int64_t total, bool enabled)
      : total_(total), enabled_(enabled), tty_(isatty(fileno(stderr)) != 0), start_(Clock::now()) {}
  void update(int64_t done, int64_t tokens, bool force = false) {
    if (!enabled_ || total_ == 0) return;
    const auto now = Clock::now();
    if (tty_) {
      if (!force && now - last_ < std::chrono::milliseconds(100)) return;
    } else {
      const int64_t decile = done * 10 / total_;
      if (!force && decile == last_decile_) return;
      last_decile_ = decile;
    }
    last_ = now;
    const double s = std::max(1e-9, seconds(start_, now));
    const int width = 30;
    const int filled = static_cast<int>(width * done / total_);
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < width) bar += '>';
    bar.resize(static_cast<size_t>(width), ' ');
    std::fprintf(stderr, "%s[%s] %lld/%lld requests  %.1f req/s  %.0f output tok/s%s",
                 tty_ ? "\r" : "", bar.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), static_cast<double>(done) / s,
                 static_cast<double>(tokens) / s, tty_ ? "" : "\n");
    std::fflush(stderr);
  }
  void finish(int64_t done, int64_t tokens) {
    if (tty_ || last_decile_ != 10) update(done, tokens, true);
    if (enabled_ && tty_ && total_ > 0) std::fprintf(stderr, "\n");
  }

 private:
  int64_t total_;
  bool enabled_;
  bool tty_;
  Clock::time_point start_;
  Clock::time_point last_{};
  int64_t last_decile_ = -1;
};

// The "id" of a line that failed to parse, when it has a readable one.
std::optional<std::string> line_id(std::string_view line) {
  boost::system::error_code ec;
  json::value doc = json::parse(line, ec);
  if (ec || !doc.is_object()) return std::nullopt;
  for (const char* key : {"id", "request_id"}) {
    const json::value* v = doc.get_object().if_contains(key);
    if (v == nullptr) continue;
    if (v->is_string()) return std::string(v->get_string());
    if (v->is_int64() || v->is_uint64()) return json::serialize(*v);
  }
  return std::nullopt;
}

}  // namespace

Result<BatchLine> parse_batch_line(std::string_view line, int64_t index,
                                   const SamplingParams& defaults, const Engine& engine,
                                   const std::optional<std::string>& chat_template) {
  BatchLine out;
  out.id = fmt::format("{}", index);
  boost::system::error_code ec;
  json::value doc = json::parse(line, ec);
  if (ec) return invalid_argument("not valid JSON: " + ec.message());
  if (!doc.is_object()) return invalid_argument("each line must be a JSON object");
  const json::object& obj = doc.get_object();
  GenerateRequest& req = out.request;
  req.params = defaults;
  int sources = 0;
  for (const auto& kv : obj) {
    const std::string_view key = kv.key();
    const json::value& v = kv.value();
    if (key == "id" || key == "request_id") {
      if (v.is_string()) {
        out.id = std::string(v.get_string());
      } else if (v.is_int64() || v.is_uint64()) {
        out.id = json::serialize(v);
      } else {
        return field_error(key, "must be a string or an integer");
      }
    } else if (key == "prompt") {
      ++sources;
      if (v.is_string()) {
        req.prompt = std::string(v.get_string());
      } else {
        KITE_ASSIGN_OR_RETURN(std::vector<int32_t> ids, as_ids(v, key));
        req.prompt = std::move(ids);
      }
    } else if (key == "prompt_token_ids") {
      ++sources;
      KITE_ASSIGN_OR_RETURN(std::vector<int32_t> ids, as_ids(v, key));
      req.prompt = std::move(ids);
    } else if (key == "messages") {
      ++sources;
      if (!v.is_array()) return field_error(key, "must be an array of messages");
      ChatTemplateOptions opts;
      opts.add_generation_prompt = true;
      opts.chat_template = chat_template;
      KITE_ASSIGN_OR_RETURN(std::string text, engine.apply_chat_template(json::serialize(v), opts));
      // The template writes the special tokens (BOS ...) itself.
      KITE_ASSIGN_OR_RETURN(std::vector<int32_t> ids, engine.tokenize(text, false));
      req.prompt = std::move(ids);
    } else {
      KITE_RETURN_IF_ERROR(apply_sampling_field(key, v, &req.params, &req.priority));
    }
  }
  if (sources != 1) {
    return invalid_argument(
        "each line needs exactly one of 'prompt', 'prompt_token_ids', 'messages'");
  }
  return out;
}

Status run_offline_batch(Engine& engine, const BatchOptions& options,
                         const SamplingParams& defaults, BatchSummary* summary) {
  std::ifstream in(options.input);
  if (!in) return not_found("cannot read " + options.input);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines
    lines.push_back(std::move(line));
  }
  std::ofstream out(options.output, std::ios::trunc);
  if (!out) return invalid_argument("cannot write " + options.output);

  const auto start = Clock::now();
  std::vector<Slot> slots(lines.size());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<size_t> dirty;  // slots with queued outputs (guarded by mu)
  for (size_t i = 0; i < lines.size(); ++i) {
    Slot& slot = slots[i];
    auto parsed = parse_batch_line(lines[i], static_cast<int64_t>(i), defaults, engine,
                                   options.chat_template);
    if (!parsed.ok()) {
      slot.id = line_id(lines[i]).value_or(fmt::format("{}", i));
      slot.error = parsed.status().to_string();
      slot.done = true;
      continue;
    }
    slot.id = parsed->id;
    const SamplingParams& p = parsed->request.params;
    slot.n = p.n;
    slot.tokens.resize(static_cast<size_t>(p.n));
    slot.text.resize(static_cast<size_t>(p.n));
    slot.logprobs.resize(static_cast<size_t>(p.n));
    slot.finish.assign(static_cast<size_t>(p.n), FinishReason::kNone);
    slot.stop_reason.resize(static_cast<size_t>(p.n));
    slot.has_logprobs = p.logprobs.has_value();
    slot.has_prompt_logprobs = p.prompt_logprobs.has_value();
    parsed->request.notifier = [&mu, &cv, &dirty, i] {
      std::lock_guard<std::mutex> lock(mu);
      dirty.push_back(i);
      cv.notify_one();
    };
    auto stream = engine.add_request(std::move(parsed->request));
    if (!stream.ok()) {
      slot.error = stream.status().to_string();
      slot.done = true;
      continue;
    }
    slot.stream = *stream;
  }

  Progress progress(static_cast<int64_t>(slots.size()), options.progress);
  size_t next_to_write = 0;
  int64_t done = 0, tokens = 0;
  for (const Slot& s : slots) done += s.done ? 1 : 0;
  auto write_ready = [&]() -> Status {
    while (next_to_write < slots.size() && slots[next_to_write].done) {
      out << json::serialize(slots[next_to_write].to_json(static_cast<int64_t>(next_to_write)))
          << '\n';
      ++next_to_write;
    }
    if (!out) return data_loss("writing " + options.output + " failed");
    return ok_status();
  };
  KITE_RETURN_IF_ERROR(write_ready());
  while (done < static_cast<int64_t>(slots.size())) {
    std::vector<size_t> batch;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return !dirty.empty(); });
      batch.swap(dirty);
    }
    std::sort(batch.begin(), batch.end());
    batch.erase(std::unique(batch.begin(), batch.end()), batch.end());
    for (size_t i : batch) {
      Slot& slot = slots[i];
      while (!slot.done) {
        std::optional<RequestOutput> o = slot.stream->try_next();
        if (!o) break;
        for (const ChoiceDelta& d : o->choices) tokens += static_cast<int64_t>(d.token_ids.size());
        slot.absorb(*o);
        if (slot.done) ++done;
      }
    }
    KITE_RETURN_IF_ERROR(write_ready());
    progress.update(done, tokens);
  }
  KITE_RETURN_IF_ERROR(write_ready());
  out.flush();
  progress.finish(done, tokens);

  summary->wall_seconds = seconds(start, Clock::now());
  summary->num_requests = static_cast<int64_t>(slots.size());
  for (const Slot& s : slots) {
    if (!s.error.empty() || !s.status.ok()) {
      ++summary->num_failed;
      continue;
    }
    const RequestMetrics& m = s.metrics;
    summary->prompt_tokens += m.num_prompt_tokens;
    summary->output_tokens += m.num_generation_tokens;
    if (m.first_token_time == Clock::time_point{}) continue;  // no token (aborted)
    summary->ttft_s.push_back(seconds(m.arrival_time, m.first_token_time));
    summary->e2e_s.push_back(seconds(m.arrival_time, m.finished_time));
    size_t longest = 0;
    for (const auto& t : s.tokens) longest = std::max(longest, t.size());
    if (longest > 1) {
      summary->tpot_s.push_back(seconds(m.first_token_time, m.last_token_time) /
                                static_cast<double>(longest - 1));
    }
  }
  return ok_status();
}

std::string format_summary(const BatchSummary& s, const EngineStats& stats) {
  const double wall = std::max(1e-9, s.wall_seconds);
  auto ms = [](const std::vector<double>& v) {
    return fmt::format("mean {:.1f}  median {:.1f}  p99 {:.1f}", mean(v) * 1e3,
                       percentile(v, 0.5) * 1e3, percentile(v, 0.99) * 1e3);
  };
  const double hit_rate = stats.prefix_cache_queries > 0
                              ? 100.0 * static_cast<double>(stats.prefix_cache_hits) /
                                    static_cast<double>(stats.prefix_cache_queries)
                              : 0.0;
  return fmt::format(
      "requests: {} ({} failed) in {:.2f} s\n"
      "throughput: {:.2f} req/s, {:.1f} output tok/s, {:.1f} total tok/s\n"
      "prompt tokens: {}, output tokens: {}\n"
      "TTFT (ms): {}\n"
      "TPOT (ms): {}\n"
      "E2E  (ms): {}\n"
      "prefix cache hit rate: {:.1f}% ({} of {} prompt tokens), tokens computed: {}, "
      "preemptions: {}\n",
      s.num_requests, s.num_failed, s.wall_seconds,
      static_cast<double>(s.num_requests - s.num_failed) / wall,
      static_cast<double>(s.output_tokens) / wall,
      static_cast<double>(s.prompt_tokens + s.output_tokens) / wall, s.prompt_tokens,
      s.output_tokens, ms(s.ttft_s), ms(s.tpot_s), ms(s.e2e_s), hit_rate, stats.prefix_cache_hits,
      stats.prefix_cache_queries, stats.num_computed_tokens_total, stats.num_preemptions);
}

}  // namespace kite::cli
