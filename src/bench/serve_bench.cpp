#include "bench/serve_bench.h"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>
#include <deque>
#include <memory>

#include "bench/http_client.h"
#include "bench/progress.h"
#include "bench/sse_parser.h"

namespace kite::bench {

namespace asio = boost::asio;
using asio::awaitable;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Counting semaphore for one io_context (no locking: one thread).
class AsyncSemaphore {
 public:
  AsyncSemaphore(asio::any_io_executor ex, int count) : ex_(std::move(ex)), available_(count) {}
  awaitable<void> acquire() {
    if (available_ > 0) {
      --available_;
      co_return;
    }
    auto timer = std::make_shared<asio::steady_timer>(ex_, asio::steady_timer::time_point::max());
    waiters_.push_back(timer);
    co_await timer->async_wait(kTuple);  // cancelled by release(): the slot is handed over
  }
  void release() {
    if (!waiters_.empty()) {
      waiters_.front()->cancel();
      waiters_.pop_front();
    } else {
      ++available_;
    }
  }

 private:
  asio::any_io_executor ex_;
  int available_;
  std::deque<std::shared_ptr<asio::steady_timer>> waiters_;
};

struct RunContext {
  const ServeOptions& opt;
  HttpClient& client;
  std::string target;
  BenchClock::time_point t0;
  double seconds(BenchClock::time_point t) const {
    return std::chrono::duration<double>(t - t0).count();
  }
};

// Sends one request and measures it. `body` is the JSON request body.
awaitable<RequestSample> measure_one(RunContext& ctx, const PromptSpec& prompt, std::string body) {
  const auto start = BenchClock::now();
  StreamRecorder rec(ctx.seconds(start));
  rec.set_expected(prompt.prompt_len, ctx.opt.request.ignore_eos ? prompt.output_len : -1);
  SseParser sse;
  bool done = false;
  std::optional<std::string> stream_error;
  std::optional<std::string> protocol_error;
  BenchClock::time_point last_event = start;
  const ApiKind api = ctx.opt.request.api;
  auto on_body = [&](std::string_view bytes, BenchClock::time_point arrival) {
    sse.feed(bytes, [&](std::string_view data) {
      last_event = arrival;
      if (done || protocol_error) return;
      Result<StreamChunk> c = parse_stream_chunk(data, api);
      if (!c.ok()) {
        protocol_error = c.status().message();
        return;
      }
      if (c->error && !stream_error) stream_error = *c->error;
      if (c->has_content) rec.on_token_chunk(ctx.seconds(arrival));
      if (c->has_usage) rec.on_usage(c->prompt_tokens, c->completion_tokens);
      if (c->done) done = true;
    });
  };
  const auto deadline = start + std::chrono::duration_cast<BenchClock::duration>(
                                    std::chrono::duration<double>(ctx.opt.request_timeout_s));
  HttpResponse resp =
      co_await ctx.client.post_stream(ctx.target, std::move(body), deadline, on_body);
  const double end_s = ctx.seconds(BenchClock::now());
  if (resp.failure != FailureKind::kNone) {
    co_return rec.fail(end_s, resp.failure, resp.error, resp.status);
  }
  if (resp.status < 200 || resp.status >= 300) {
    std::string body_text = resp.body.substr(0, 300);
    for (char& c : body_text) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    co_return rec.fail(end_s, FailureKind::kHttpStatus,
                       fmt::format("HTTP {}: {}", resp.status, body_text), resp.status);
  }
  if (stream_error) co_return rec.fail(end_s, FailureKind::kStreamError, *stream_error);
  if (protocol_error) {
    co_return rec.fail(end_s, FailureKind::kProtocol, "malformed stream chunk: " + *protocol_error);
  }
  if (!done) {
    co_return rec.fail(end_s, FailureKind::kProtocol,
                       sse.num_events() == 0 ? "the response had no SSE events"
                                             : "the stream ended without [DONE]");
  }
  if (rec.num_chunks() == 0 && rec.reported_output_tokens() > 0) {
    // Nothing to time a first token by: a server streaming empty text, e.g. for a model
    // without a tokenizer. Counting it would report a TTFT of zero.
    co_return rec.fail(end_s, FailureKind::kProtocol,
                       fmt::format("usage reports {} output tokens but no chunk carried output "
                                   "(empty text; does the served model have a tokenizer?)",
                                   rec.reported_output_tokens()));
  }
  // E2E ends when the response is complete: the [DONE] event (or the last event before the
  // body ended).
  co_return rec.succeed(ctx.seconds(last_event));
}

awaitable<void> sleep_until(BenchClock::time_point t) {
  asio::steady_timer timer(co_await asio::this_coro::executor, t);
  co_await timer.async_wait(kTuple);
}

}  // namespace

Result<ServeRun> run_serve_benchmark(const ServeOptions& opt,
                                     const std::vector<PromptSpec>& prompts) {
  KITE_RETURN_IF_ERROR(validate(opt.request));
  KITE_RETURN_IF_ERROR(validate(opt.arrivals));
  if (prompts.empty()) return invalid_argument("no prompts to send");
  if (opt.max_concurrency < 0) {
    return invalid_argument(
        fmt::format("--max-concurrency must be >= 0, got {}", opt.max_concurrency));
  }
  if (!(opt.request_timeout_s > 0)) {
    return invalid_argument(
        fmt::format("--request-timeout must be > 0, got {}", opt.request_timeout_s));
  }
  KITE_ASSIGN_OR_RETURN(HttpUrl url, parse_http_url(opt.base_url));
  // Build every body first: a bad prompt fails the run before anything is sent.
  std::vector<std::string> bodies;
  bodies.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    KITE_ASSIGN_OR_RETURN(std::string b, build_request_body(opt.request, prompts[i], i));
    bodies.push_back(std::move(b));
  }

  asio::io_context ioc(1);
  HttpClient client(ioc.get_executor(), url, opt.api_key);
  RunContext ctx{opt, client, join_target(url, opt.endpoint), BenchClock::now()};
  ServeRun run;
  run.samples.resize(prompts.size());
  Status setup_error;

  auto main = [&]() -> awaitable<void> {
    // Initial test request (retried while the server is not ready).
    if (opt.initial_test) {
      const auto ready_deadline =
          BenchClock::now() +
          std::chrono::milliseconds(static_cast<int64_t>(opt.ready_timeout_s * 1000));
      while (true) {
        RequestSample s = co_await measure_one(ctx, prompts[0], bodies[0]);
        if (s.success) break;
        if (BenchClock::now() >= ready_deadline) {
          setup_error = unavailable(fmt::format("the initial test request to {}{} failed: {}",
                                                opt.base_url, ctx.target, s.error));
          co_return;
        }
        co_await sleep_until(BenchClock::now() + std::chrono::seconds(1));
      }
    }
    for (int i = 0; i < opt.num_warmups; ++i) {
      co_await measure_one(ctx, prompts[static_cast<size_t>(i) % prompts.size()],
                           bodies[static_cast<size_t>(i) % prompts.size()]);
    }
    const std::vector<double> arrivals =
        arrival_times(static_cast<int64_t>(prompts.size()), opt.arrivals);
    ProgressBar bar(opt.progress_label, static_cast<int64_t>(prompts.size()), opt.progress);
    AsyncSemaphore slots(ioc.get_executor(),
                         opt.max_concurrency > 0 ? opt.max_concurrency : INT32_MAX);
    int64_t failed = 0;
    size_t finished = 0;
    asio::steady_timer all_done(ioc, asio::steady_timer::time_point::max());
    ctx.t0 = BenchClock::now();
    for (size_t i = 0; i < prompts.size(); ++i) {
      const auto when = ctx.t0 + std::chrono::duration_cast<BenchClock::duration>(
                                     std::chrono::duration<double>(arrivals[i]));
      if (when > BenchClock::now()) co_await sleep_until(when);
      co_await slots.acquire();
      asio::co_spawn(
          ioc,
          [&, i]() -> awaitable<void> {
            run.samples[i] = co_await measure_one(ctx, prompts[i], std::move(bodies[i]));
            if (!run.samples[i].success) {
              ++failed;
              bar.set_status(fmt::format("{} failed", failed));
            }
            bar.advance();
            slots.release();
            if (++finished == prompts.size()) all_done.cancel();
          },
          asio::detached);
    }
    if (finished < prompts.size()) co_await all_done.async_wait(kTuple);
    bar.finish();
  };
  asio::co_spawn(ioc, main, asio::detached);
  ioc.run();
  if (!setup_error.ok()) return setup_error;
  double end = 0;
  for (const RequestSample& s : run.samples) end = std::max(end, s.start_s + s.e2e_s);
  run.duration_s = end;
  run.connections_opened = client.num_connections_opened();
  return run;
}

}  // namespace kite::bench
