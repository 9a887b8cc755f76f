// POST /v1/completions: one engine request per prompt, n choices each (choice index =
// prompt_index * n + choice), answered whole or streamed as SSE chunks.
#include <fmt/format.h>

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "server/engine_requests.h"
#include "server/generation_common.h"
#include "server/handlers.h"
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

}  // namespace

awaitable<void> handle_completions(Exchange& ex) {
  std::shared_ptr<const LoadedModel> model = co_await require_model(ex);
  if (!model) co_return;
  ApiResult<CompletionRequest> parsed =
      parse_completion_request(ex.request().body(), model->parse_context);
  if (!parsed.ok()) {
    co_await ex.send_error(parsed.error());
    co_return;
  }
  const CompletionRequest& req = parsed.value();
  Engine& engine = *model->engine;
  const std::string id = random_id("cmpl-");
  TokenTextCache token_text(engine);
  CompletionContext ctx{req, id, unix_time_now(), token_text};

  InFlightGuard in_flight(ex.state());
  EngineRequests requests(engine, co_await asio::this_coro::executor, ex.state().metrics(),
                          &ex.record());
  std::vector<PromptState> prompts;
  prompts.reserve(req.prompts.size());
  for (size_t i = 0; i < req.prompts.size(); ++i) {
    GenerateRequest g;
    g.request_id = req.prompts.size() == 1 ? id : fmt::format("{}-{}", id, i);
    g.prompt = req.prompts[i];
    g.add_special_tokens = req.add_special_tokens;
    g.params = req.params;
    g.priority = req.priority;
    g.cache_salt = req.cache_salt;
    Status s = requests.add(std::move(g));
    if (!s.ok()) {
      requests.abort_all();
      co_await ex.send_error(api_error_from_status(s, "prompt"));
      co_return;
    }
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
