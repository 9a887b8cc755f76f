#include "server/generation_common.h"

#include <boost/asio/this_coro.hpp>

#include "server/engine_requests.h"
#include "server/prep_pool.h"

namespace kite::server {

namespace asio = boost::asio;

bool PromptState::apply(const RequestOutput& out) {
  bool first = !started;
  if (first) {
    started = true;
    prompt_token_ids = out.prompt_token_ids;
    prompt_logprobs = out.prompt_logprobs;
  }
  for (const ChoiceDelta& d : out.choices) {
    if (d.index >= 0 && static_cast<size_t>(d.index) < choices.size()) choices[d.index].add(d);
  }
  if (!out.error.ok()) error = out.error;
  return first;
}

int64_t PromptState::completion_tokens() const {
  int64_t n = 0;
  for (const ChoiceAccum& c : choices) n += static_cast<int64_t>(c.token_ids.size());
  return n;
}

Usage total_usage(const std::vector<PromptState>& prompts) {
  Usage u;
  for (const PromptState& p : prompts) {
    u.prompt_tokens += static_cast<int64_t>(p.prompt_token_ids.size());
    u.completion_tokens += p.completion_tokens();
  }
  return u;
}

InFlightGuard::InFlightGuard(ServerState& state) : state_(state) {
  state_.generations_in_flight.fetch_add(1);
  state_.metrics().add_in_flight(1);
}

InFlightGuard::~InFlightGuard() {
  state_.metrics().add_in_flight(-1);
  state_.generations_in_flight.fetch_sub(1);
}

asio::awaitable<void> run_generation(Exchange& ex, Engine& engine, GenerateRequest& request,
                                     bool stream, std::string_view error_param,
                                     GenerationSink& sink) {
  const int n = request.params.n;
  InFlightGuard in_flight(ex.state());
  EngineRequests requests(engine, co_await asio::this_coro::executor, ex.state().metrics(),
                          &ex.record());
  // add_request tokenizes the prompt and compiles its grammar: on the preparation pool.
  Status s;
  if (!co_await run_prepared(ex, [&](const PrepToken&) { s = requests.add(std::move(request)); })) {
    co_return;
  }
  if (!s.ok()) {
    co_await ex.send_error(api_error_from_status(s, std::string(error_param)));
    co_return;
  }
  PromptState ps(n);
  ex.watch_disconnect([&requests] { requests.interrupt(); });
  WatchGuard watch(ex);

  if (!stream) {
    while (true) {
      auto batch = co_await requests.next();
      if (batch.empty()) break;
      for (auto& [i, out] : batch) ps.apply(out);
    }
    if (requests.interrupted()) co_return;
    if (!ps.error.ok()) {
      co_await ex.send_error(api_error_from_status(ps.error, ""));
      co_return;
    }
    std::string body = sink.whole(ps);
    co_await ex.send_body(200, "application/json", body);
    co_return;
  }

  if (!co_await ex.begin_events()) co_return;
  std::string buf = sink.stream_begin(ps);
  if (!co_await ex.send_events(buf)) co_return;
  bool failed = false;
  while (!failed) {
    auto batch = co_await requests.next();
    if (batch.empty()) break;
    buf.clear();
    for (auto& [i, out] : batch) {
      sink.stream_output(ps, out, buf);
      if (!out.error.ok()) failed = true;
    }
    if (!co_await ex.send_events(buf)) co_return;
  }
  if (requests.interrupted()) co_return;
  buf = sink.stream_end(ps, failed);
  if (co_await ex.send_events(buf)) co_await ex.end_events();
}

}  // namespace kite::server
