// `kite bench serve`: a load generator against any OpenAI-compatible server. Requests are sent
// at the arrival times of a Poisson/gamma process (or all at once), optionally capped at
// `max_concurrency` in flight, each streaming its answer; every SSE chunk is timestamped on
// arrival. Runs on one thread (an Asio io_context with one coroutine per request).
#pragma once

#include <string>
#include <vector>

#include "bench/arrivals.h"
#include "bench/dataset.h"
#include "bench/openai_stream.h"
#include "bench/request_sample.h"
#include "kite/status.h"

namespace kite::bench {

struct ServeOptions {
  std::string base_url = "http://127.0.0.1:8000";
  std::string endpoint = "/v1/completions";
  std::string api_key;
  RequestOptions request;
  ArrivalConfig arrivals;   // rate inf: all requests at t = 0
  int max_concurrency = 0;  // 0: no cap
  double request_timeout_s = 600;
  // A first request (not measured) checks the endpoint before the run; with ready_timeout_s > 0
  // it is retried every second until it succeeds or the time is up (a server still loading).
  bool initial_test = true;
  double ready_timeout_s = 0;
  int num_warmups = 0;  // measured-run-sized requests sent and discarded first
  bool progress = true;
  std::string progress_label = "serve";
};

struct ServeRun {
  std::vector<RequestSample> samples;  // one per prompt, in prompt order
  double duration_s = 0;               // first send to the end of the last response
  int64_t connections_opened = 0;
};

// Sends every prompt and collects the samples. Errors are for the run as a whole (bad options,
// the initial test request failing); individual request failures are in the samples.
Result<ServeRun> run_serve_benchmark(const ServeOptions& options,
                                     const std::vector<PromptSpec>& prompts);

}  // namespace kite::bench
