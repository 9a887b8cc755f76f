// POST /v1/completions: one engine request per prompt, n choices each (choice index =
// prompt_index * n + choice), answered whole or streamed as SSE chunks.
#include <fmt/format.h>

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "server/beam_search.h"
#include "server/engine_requests.h"
#include "server/generation_common.h"
#include "server/handlers.h"
#include "server/prep_pool.h"
#include "server/sse.h"

namespace kite::server {

namespace asio = boost::asio;
namespace bj = boost::json;
using asio::awaitable;

namespace {

struct CompletionContext {
  const CompletionRequest& req;
  const std::string& id;
  int64_t created;
  TokenTextCache& token_text;
};

bj::object chunk_header(const CompletionContext& c) {
  bj::object o;
  o["id"] = c.id;
  o["object"] = "text_completion";
  o["created"] = c.created;
  o["model"] = c.req.model;
  return o;
}

// The prompt's entries for echo + logprobs; when the engine sent no prompt logprobs, every
// entry is shown without one.
size_t prompt_logprob_entries(const PromptState& p, std::vector<LogprobEntry>& entries) {
  if (p.prompt_logprobs.size() == p.prompt_token_ids.size()) {
    entries = p.prompt_logprobs;
    return entries.empty() ? 0 : 1;  // the first prompt token has no logprob
  }
  entries.clear();
  for (int32_t id : p.prompt_token_ids) entries.push_back(LogprobEntry{id, 0.0f, 0, {}});
  return entries.size();
}

bj::array ids_json(const std::vector<int32_t>& ids) {
  bj::array a;
  a.reserve(ids.size());
  for (int32_t id : ids) a.emplace_back(id);
  return a;
}

std::string whole_response(const CompletionContext& c, const std::vector<PromptState>& prompts) {
  TokenText tt = [&c](int32_t id) { return c.token_text(id); };
  const int n = c.req.params.n;
  bj::array choices;
  for (size_t p = 0; p < prompts.size(); ++p) {
    const PromptState& ps = prompts[p];
    for (int k = 0; k < n; ++k) {
      const ChoiceAccum& acc = ps.choices[k];
      bj::object choice;
      choice["index"] = static_cast<int64_t>(p) * n + k;
      choice["text"] = c.req.echo ? ps.text + acc.text : acc.text;
      if (c.req.params.logprobs) {
        bj::object lp = empty_completion_logprobs();
        int64_t offset = 0;
        if (c.req.echo) {
          std::vector<LogprobEntry> entries;
          size_t without = prompt_logprob_entries(ps, entries);
          append_completion_logprobs(lp, entries, tt, offset, without);
        }
        append_completion_logprobs(lp, acc.logprobs, tt, offset);
        choice["logprobs"] = std::move(lp);
      } else {
        choice["logprobs"] = nullptr;
      }
      choice["finish_reason"] = finish_reason_json(acc.finish_reason);
      choice["stop_reason"] = stop_reason_json(acc.stop_reason);
      if (c.req.return_token_ids) {
        choice["prompt_token_ids"] = ids_json(ps.prompt_token_ids);
        choice["token_ids"] = ids_json(acc.token_ids);
      }
      choices.emplace_back(std::move(choice));
    }
  }
  bj::object body = chunk_header(c);
  body["choices"] = std::move(choices);
  body["usage"] = usage_json(total_usage(prompts));
  body["system_fingerprint"] = nullptr;
  return bj::serialize(body);
}

// Appends the SSE events for one engine output of prompt `p` to `buf`.
void stream_output(const CompletionContext& c, size_t p, PromptState& ps, const RequestOutput& out,
                   std::string& buf) {
  TokenText tt = [&c](int32_t id) { return c.token_text(id); };
  const int n = c.req.params.n;
  const bool first = ps.apply(out);
  const bool want_logprobs = c.req.params.logprobs.has_value();
  auto emit = [&](bj::object choice, const PromptState& state) {
    bj::object chunk = chunk_header(c);
    bj::array choices;
    choices.emplace_back(std::move(choice));
    chunk["choices"] = std::move(choices);
    if (c.req.stream_options.continuous_usage_stats) {
      chunk["usage"] = usage_json(
          {static_cast<int64_t>(state.prompt_token_ids.size()), state.completion_tokens()});
    } else if (c.req.stream_options.include_usage) {
      chunk["usage"] = nullptr;
    }
    buf += sse_event(bj::serialize(chunk));
  };
  if (first && c.req.echo) {
    for (int k = 0; k < n; ++k) {
      bj::object choice;
      choice["index"] = static_cast<int64_t>(p) * n + k;
      choice["text"] = ps.text;
      if (want_logprobs) {
        bj::object lp = empty_completion_logprobs();
        std::vector<LogprobEntry> entries;
        size_t without = prompt_logprob_entries(ps, entries);
        append_completion_logprobs(lp, entries, tt, ps.text_offsets[k], without);
        choice["logprobs"] = std::move(lp);
      } else {
        choice["logprobs"] = nullptr;
      }
      choice["finish_reason"] = nullptr;
      choice["stop_reason"] = nullptr;
      if (c.req.return_token_ids) {
        choice["prompt_token_ids"] = ids_json(ps.prompt_token_ids);
        choice["token_ids"] = bj::array();
        ps.first_chunk_sent[k] = true;
      }
      emit(std::move(choice), ps);
    }
  }
  for (const ChoiceDelta& d : out.choices) {
    if (d.index < 0 || d.index >= n) continue;
    const bool finishing = d.finish_reason != FinishReason::kNone;
    if (d.text.empty() && d.token_ids.empty() && !finishing) continue;
    bj::object choice;
    choice["index"] = static_cast<int64_t>(p) * n + d.index;
    choice["text"] = sanitize_utf8(d.text);
    if (want_logprobs) {
      bj::object lp = empty_completion_logprobs();
      append_completion_logprobs(lp, d.logprobs, tt, ps.text_offsets[d.index]);
      choice["logprobs"] = std::move(lp);
    } else {
      choice["logprobs"] = nullptr;
    }
    choice["finish_reason"] = finish_reason_json(d.finish_reason);
    choice["stop_reason"] = stop_reason_json(d.stop_reason);
    if (c.req.return_token_ids) {
      if (!ps.first_chunk_sent[d.index]) {
        choice["prompt_token_ids"] = ids_json(ps.prompt_token_ids);
        ps.first_chunk_sent[d.index] = true;
      }
      choice["token_ids"] = ids_json(d.token_ids);
    }
    emit(std::move(choice), ps);
  }
  if (!out.error.ok()) buf += sse_event(error_body(api_error_from_status(out.error, "")));
}

// use_beam_search: vLLM's beam search (beam_search.h), one round of one-token engine requests
// per step; answered whole, one choice per beam (index = prompt index x n + rank).
awaitable<void> beam_search_completions(Exchange& ex, Engine& engine, const CompletionRequest& req,
                                        const std::string& id) {
  const size_t width = static_cast<size_t>(req.params.n);
  const std::vector<int32_t> eos = engine.model_info().eos_token_ids;
  std::vector<std::vector<BeamHypothesis>> live(req.prompts.size());
  std::vector<std::vector<BeamHypothesis>> finished(req.prompts.size());
  Status tokenized;
  if (!co_await run_prepared(ex, [&](const PrepToken&) {
        for (size_t p = 0; p < req.prompts.size() && tokenized.ok(); ++p) {
          BeamHypothesis b;
          if (const auto* text = std::get_if<std::string>(&req.prompts[p])) {
            Result<std::vector<int32_t>> ids = engine.tokenize(*text, req.add_special_tokens);
            if (!ids.ok()) {
              tokenized = ids.status();
              break;
            }
            b.tokens = std::move(*ids);
          } else {
            b.tokens = std::get<std::vector<int32_t>>(req.prompts[p]);
          }
          b.num_prompt_tokens = b.tokens.size();
          live[p].push_back(std::move(b));
        }
      })) {
    co_return;
  }
  if (!tokenized.ok()) {
    co_await ex.send_error(api_error_from_status(tokenized, "prompt"));
    co_return;
  }
  SamplingParams step;
  step.n = 1;
  step.max_tokens = 1;
  step.temperature = req.beam_search.temperature;
  step.logprobs = static_cast<int>(2 * width);
  step.ignore_eos = true;  // only the log-probabilities are read
  step.seed = req.params.seed;

  InFlightGuard in_flight(ex.state());
  EngineRequests* current = nullptr;
  bool gone = false;
  ex.watch_disconnect([&current, &gone] {
    gone = true;
    if (current) current->interrupt();
  });
  WatchGuard watch(ex);
  const auto executor = co_await asio::this_coro::executor;
  for (int64_t t = 0; t < req.params.max_tokens; ++t) {
    EngineRequests requests(engine, executor, ex.state().metrics(), &ex.record());
    current = &requests;
    std::vector<std::pair<size_t, size_t>> owners;  // (prompt, beam) of each engine request
    for (size_t p = 0; p < live.size(); ++p) {
      for (size_t b = 0; b < live[p].size(); ++b) {
        GenerateRequest g;
        g.request_id = fmt::format("{}-{}-{}-{}", id, t, p, b);
        g.prompt = live[p][b].tokens;
        g.params = step;
        g.priority = req.priority;
        if (Status s = requests.add(std::move(g)); !s.ok()) {
          current = nullptr;
          co_await ex.send_error(api_error_from_status(s, "prompt"));
          co_return;
        }
        owners.emplace_back(p, b);
      }
    }
    if (owners.empty()) break;
    std::vector<std::vector<TokenLogprob>> candidates(owners.size());
    Status error;
    while (true) {
      auto batch = co_await requests.next();
      if (batch.empty()) break;
      for (auto& [i, out] : batch) {
        if (!out.error.ok()) error = out.error;
        for (const ChoiceDelta& d : out.choices) {
          if (d.logprobs.empty()) continue;
          const LogprobEntry& e = d.logprobs[0];
          candidates[i] = e.top;
          bool chosen_in_top = false;
          for (const TokenLogprob& c : e.top)
            chosen_in_top = chosen_in_top || c.token_id == e.token_id;
          if (!chosen_in_top) candidates[i].push_back({e.token_id, e.logprob});
        }
      }
    }
    current = nullptr;
    if (gone || requests.interrupted()) co_return;
    if (!error.ok()) {
      co_await ex.send_error(api_error_from_status(error, ""));
      co_return;
    }
    for (size_t p = 0; p < live.size(); ++p) {
      std::vector<std::vector<TokenLogprob>> mine;
      for (size_t i = 0; i < owners.size(); ++i) {
        if (owners[i].first == p) mine.push_back(std::move(candidates[i]));
      }
      live[p] = beam_step(live[p], mine, width, eos, req.params.ignore_eos, finished[p]);
    }
  }
  bj::array choices;
  Usage usage;
  for (size_t p = 0; p < live.size(); ++p) {
    std::vector<BeamHypothesis> best =
        best_beams(std::move(finished[p]), live[p], width, req.beam_search.length_penalty);
    for (size_t k = 0; k < best.size(); ++k) {
      const BeamHypothesis& b = best[k];
      std::vector<int32_t> generated(b.tokens.begin() + static_cast<ptrdiff_t>(b.num_prompt_tokens),
                                     b.tokens.end());
      Result<std::string> text = engine.detokenize(generated, req.params.skip_special_tokens);
      bj::object choice;
      choice["index"] = static_cast<int64_t>(p * width + k);
      choice["text"] = text.ok() ? sanitize_utf8(std::move(*text)) : std::string();
      choice["logprobs"] = nullptr;
      choice["finish_reason"] = b.ended_with_eos ? "stop" : "length";
      choice["stop_reason"] = nullptr;
      if (req.return_token_ids) {
        choice["prompt_token_ids"] = ids_json(std::vector<int32_t>(
            b.tokens.begin(), b.tokens.begin() + static_cast<ptrdiff_t>(b.num_prompt_tokens)));
        choice["token_ids"] = ids_json(generated);
      }
      choices.emplace_back(std::move(choice));
      usage.completion_tokens += static_cast<int64_t>(generated.size());
      if (k == 0) usage.prompt_tokens += static_cast<int64_t>(b.num_prompt_tokens);
    }
  }
  bj::object body;
  body["id"] = id;
  body["object"] = "text_completion";
  body["created"] = unix_time_now();
  body["model"] = req.model;
  body["choices"] = std::move(choices);
  body["usage"] = usage_json(usage);
  body["system_fingerprint"] = nullptr;
  std::string out = bj::serialize(body);
  co_await ex.send_body(200, "application/json", out);
}

}  // namespace

awaitable<void> handle_completions(Exchange& ex) {
  std::shared_ptr<const LoadedModel> model = co_await require_model(ex);
  if (!model) co_return;
  // Parsing runs on the preparation pool (prep_pool.h), as the requests' add_request below.
  std::optional<ApiResult<CompletionRequest>> parsed;
  if (!co_await run_prepared(ex, [&](const PrepToken&) {
        parsed.emplace(parse_completion_request(ex.request().body(), model->parse_context));
      })) {
    co_return;
  }
  if (!parsed->ok()) {
    co_await ex.send_error(parsed->error());
    co_return;
  }
  const CompletionRequest& req = parsed->value();
  Engine& engine = *model->engine;
  const std::string id = random_id("cmpl-");
  TokenTextCache token_text(engine);
  CompletionContext ctx{req, id, unix_time_now(), token_text};
  if (req.beam_search.enabled) {
    co_await beam_search_completions(ex, engine, req, id);
    co_return;
  }

  InFlightGuard in_flight(ex.state());
  EngineRequests requests(engine, co_await asio::this_coro::executor, ex.state().metrics(),
                          &ex.record());
  // Every prompt's add_request (tokenization, grammar) runs on the preparation pool; a prompt
  // that fails ends the request (the ones added before are aborted).
  Status s;
  if (!co_await run_prepared(ex, [&](const PrepToken& token) {
        for (size_t i = 0; i < req.prompts.size() && s.ok(); ++i) {
          if (token.expired()) return;  // the answer is a 503 (or nobody's): skip the rest
          GenerateRequest g;
          g.request_id = req.prompts.size() == 1 ? id : fmt::format("{}-{}", id, i);
          g.prompt = req.prompts[i];
          g.add_special_tokens = req.add_special_tokens;
          g.params = req.params;
          g.priority = req.priority;
          g.cache_salt = req.cache_salt;
          s = requests.add(std::move(g));
        }
      })) {
    co_return;
  }
  if (!s.ok()) {
    requests.abort_all();
    co_await ex.send_error(api_error_from_status(s, "prompt"));
    co_return;
  }
  std::vector<PromptState> prompts;
  prompts.reserve(req.prompts.size());
  for (size_t i = 0; i < req.prompts.size(); ++i) {
    PromptState& ps = prompts.emplace_back(req.params.n);
    if (req.echo) {
      if (const auto* text = std::get_if<std::string>(&req.prompts[i])) {
        ps.text = *text;
      } else {
        Result<std::string> decoded = engine.detokenize(
            std::get<std::vector<int32_t>>(req.prompts[i]), /*skip_special_tokens=*/false);
        if (decoded.ok()) ps.text = sanitize_utf8(std::move(*decoded));
      }
    }
  }
  ex.watch_disconnect([&requests] { requests.interrupt(); });
  WatchGuard watch(ex);

  if (!req.stream) {
    while (true) {
      auto batch = co_await requests.next();
      if (batch.empty()) break;
      for (auto& [i, out] : batch) prompts[i].apply(out);
    }
    if (requests.interrupted()) co_return;  // the client left; `requests` aborts the rest
    for (const PromptState& ps : prompts) {
      if (!ps.error.ok()) {
        co_await ex.send_error(api_error_from_status(ps.error, ""));
        co_return;
      }
    }
    std::string body = whole_response(ctx, prompts);
    co_await ex.send_body(200, "application/json", body);
    co_return;
  }

  if (!co_await ex.begin_events()) co_return;
  std::string buf;
  bool failed = false;
  while (!failed) {
    auto batch = co_await requests.next();
    if (batch.empty()) break;
    buf.clear();
    for (auto& [i, out] : batch) {
      stream_output(ctx, i, prompts[i], out, buf);
      if (!out.error.ok()) failed = true;
    }
    if (!co_await ex.send_events(buf)) co_return;
  }
  if (requests.interrupted()) co_return;
  buf.clear();
  if (req.stream_options.include_usage && !failed) {
    bj::object chunk = chunk_header(ctx);
    chunk["choices"] = bj::array();
    chunk["usage"] = usage_json(total_usage(prompts));
    buf += sse_event(bj::serialize(chunk));
  }
  buf += kSseDone;
  if (co_await ex.send_events(buf)) co_await ex.end_events();
}

}  // namespace kite::server
