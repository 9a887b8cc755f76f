// `kite serve MODEL`: the OpenAI-compatible HTTP server (src/server). Engine flags are the
// shared vLLM-named ones (cli/engine_args.h); see docs/serving.md.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/command.h"
#include "cli/engine_args.h"
#include "core/logging.h"
#include "engine/runner_factory.h"
#include "kite/engine.h"
#include "parallel/launch.h"
#include "parallel/mpi_communicator.h"
#include "parallel/world.h"
#include "server/server.h"

namespace kite::cli {
namespace {

struct ServeOptions {
  EngineArgs engine;
  server::ServerConfig server;
  std::vector<std::string> served_model_names;
  std::vector<std::string> allowed_origins;
  double shutdown_timeout_s = 30.0;
  double read_timeout_s = 60.0;
  double keep_alive_timeout_s = 5.0;
  double write_timeout_s = 60.0;
  double prep_timeout_s = 60.0;
};

// --allowed-origins takes "a,b", repeated flags, or vLLM's JSON list '["*"]'.
std::vector<std::string> parse_origins(const std::vector<std::string>& raw) {
  std::vector<std::string> out;
  for (std::string s : raw) {
    for (char& c : s) {
      if (c == '[' || c == ']' || c == '"' || c == '\'') c = ' ';
    }
    size_t start = 0;
    while (true) {
      size_t comma = s.find(',', start);
      std::string item = s.substr(start, comma == std::string::npos ? comma : comma - start);
      size_t b = item.find_first_not_of(' ');
      size_t e = item.find_last_not_of(' ');
      if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

int run_serve(ServeOptions& o) {
  if (Status s = finish_engine_args(&o.engine); !s.ok()) {
    std::fprintf(stderr, "kite serve: %s\n", s.message().c_str());
    return 2;
  }
  EngineConfig& ecfg = o.engine.config;
  const int pp = o.engine.pipeline_parallel_size;
  const int tp = ecfg.tensor_parallel_size;
  if (tp >= 1 && pp >= 1 && tp * pp > 1 && !parallel::launched_by_mpi()) {
    // One node, no launcher: start the ranks under mpirun (returns only on error).
    const Status s = parallel::relaunch_under_mpirun(tp * pp);
    std::fprintf(stderr, "kite serve: error: %s\n", s.to_string().c_str());
    return 1;
  }
  if (ecfg.tensor_parallel_size != 1 || pp != 1 || parallel::launched_by_mpi()) {
    // Every rank loads its shard; rank 0 serves HTTP, the others run its steps (docs/parallel.md).
    auto world =
        parallel::init_world({ecfg.tensor_parallel_size, pp, o.engine.pipeline_micro_batches});
    if (!world.ok()) {
      std::fprintf(stderr, "kite serve: error: %s\n", world.status().to_string().c_str());
      return 1;
    }
    if ((*world)->rank() != 0) {
      Status s = run_model_worker(ecfg);
      if (!s.ok()) {
        std::fprintf(stderr, "kite serve: error: rank %d of %d: %s\n", (*world)->rank(),
                     (*world)->world_size(), s.to_string().c_str());
        return 1;
      }
      return 0;
    }
  }
  if (o.server.api_key.empty()) {
    if (const char* key = std::getenv("KITE_API_KEY")) o.server.api_key = key;
  }
  if (o.server.otlp_traces_endpoint.empty()) {
    if (const char* e = std::getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
      o.server.otlp_traces_endpoint = e;
    }
  }
  o.server.allowed_origins = parse_origins(o.allowed_origins);
  o.server.served_model_names = o.served_model_names;
  if (!o.served_model_names.empty()) ecfg.served_model_name = o.served_model_names[0];
  o.server.model_path = ecfg.model;
  o.server.shutdown_timeout = to_ms(o.shutdown_timeout_s);
  o.server.read_timeout = to_ms(o.read_timeout_s);
  o.server.keep_alive_timeout = to_ms(o.keep_alive_timeout_s);
  o.server.write_timeout = to_ms(o.write_timeout_s);
  o.server.prep_timeout = to_ms(o.prep_timeout_s);
  if (o.server.enable_auto_tool_choice && o.server.tool_call_parser.empty()) {
    std::fprintf(stderr, "kite serve: --enable-auto-tool-choice needs --tool-call-parser\n");
    return 2;
  }
  ecfg.reasoning_parser = o.server.reasoning_parser;

  // A peer or a log reader that goes away makes writes fail with EPIPE, never kills the
  // process (a dead stdout pipe used to end the server with no drain).
  std::signal(SIGPIPE, SIG_IGN);
  server::HttpServer srv(o.server);
  if (Status s = srv.start(); !s.ok()) {
    std::fprintf(stderr, "kite serve: %s\n", s.to_string().c_str());
    return 1;
  }
  // The model loads on its own thread; /health answers 503 meanwhile.
  std::atomic<bool> load_done{false};
  std::atomic<bool> load_failed{false};
  std::thread loader([&] {
    KITE_LOG_INFO("loading model {}", ecfg.model);
    Result<std::unique_ptr<Engine>> engine = Engine::create(ecfg);
    if (!engine.ok()) {
      KITE_LOG_ERROR("cannot load the model: {}", engine.status().to_string());
      // Both before the shutdown: wait() may return before this thread runs again.
      load_failed = true;
      load_done = true;
      srv.request_shutdown();
      return;
    } else {
      std::shared_ptr<Engine> shared = std::move(*engine);
      const ModelInfo& info = shared->model_info();
      KITE_LOG_INFO(
          "serving {} ({}, {} backend, max_model_len {}, {} KV blocks of {} tokens, {} KV cache "
          "of {:.1f} MiB)",
          info.served_model_name, info.architecture, info.backend, info.max_model_len,
          info.num_kv_blocks, info.block_size, info.kv_cache_dtype,
          static_cast<double>(info.kv_cache_bytes) / (1 << 20));
      srv.set_engine(std::move(shared));
    }
    load_done = true;
  });
  srv.wait();
  if (!load_done.load()) {
    // Engine::create cannot be interrupted: leave without waiting for it.
    KITE_LOG_WARN("shut down while the model was loading");
    std::fflush(nullptr);
    std::_Exit(0);
  }
  loader.join();
  return load_failed ? 1 : 0;
}

std::function<int()> setup_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  server::ServerConfig& s = o->server;
  app.add_option("model", o->engine.config.model,
                 "HF model directory, .gguf file or Hugging Face Hub id (org/name[:QUANT])")
      ->required();
  // Admission control is on by default for a server (the library and `kite generate` keep
  // everything they are given): --max-waiting-requests, --max-queued-tokens.
  o->engine.config.max_waiting_requests = 1024;
  o->engine.config.max_queued_tokens = -1;
  add_engine_args(app, &o->engine);
  // The API answers to several names (as vLLM): replace the shared single-name flag.
  app.remove_option(app.get_option("--served-model-name"));
  app.add_option("--served-model-name", o->served_model_names,
                 "name(s) the API answers to; the first is reported (default: the model path's "
                 "last component)");
  app.add_option("--host", s.host, "address to listen on")->capture_default_str();
  app.add_option("--port", s.port, "port to listen on (0: any free port)")->capture_default_str();
  app.add_option("--api-key", s.api_key,
                 "require 'Authorization: Bearer KEY' on /v1/* (or set KITE_API_KEY)");
  app.add_option("--allowed-origins", o->allowed_origins,
                 "CORS origins allowed to call the API ('*': any; comma-separated or a JSON list)");
  app.add_flag("--allow-credentials", s.allow_credentials, "CORS: allow credentials");
  app.add_option("--shutdown-timeout", o->shutdown_timeout_s,
                 "seconds running requests get to finish after SIGTERM/SIGINT before they are "
                 "aborted")
      ->capture_default_str();
  app.add_option("--http-threads", s.num_threads, "Asio threads serving HTTP")
      ->capture_default_str();
  app.add_option("--max-request-body-bytes", s.max_body_bytes,
                 "largest request body accepted (413 beyond)")
      ->capture_default_str();
  app.add_option("--read-timeout", o->read_timeout_s, "seconds to read one request")
      ->capture_default_str();
  app.add_option("--keep-alive-timeout", o->keep_alive_timeout_s,
                 "seconds an idle keep-alive connection may wait before its next request")
      ->capture_default_str();
  app.add_option("--max-connections", s.max_connections,
                 "open connections; a new one beyond gets 503 and is closed")
      ->capture_default_str();
  app.add_option("--otlp-traces-endpoint", s.otlp_traces_endpoint,
                 "send request traces (spans: request, queue, prefill, decode) to this OTLP/HTTP "
                 "collector, e.g. http://localhost:4318 (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)");
  app.add_option("--write-timeout", o->write_timeout_s,
                 "seconds one write may wait on a client that does not read")
      ->capture_default_str();
  app.add_option("--tool-call-parser", s.tool_call_parser,
                 "how the model writes tool calls: parsed into message.tool_calls and the format "
                 "tool_choice required/named is held to")
      ->check(CLI::IsMember({"llama3_json", "hermes", "mistral"}));
  app.add_flag("--enable-auto-tool-choice", s.enable_auto_tool_choice,
               "parse tool calls the model chooses to make (tool_choice auto; needs "
               "--tool-call-parser)");
  app.add_option("--reasoning-parser", s.reasoning_parser,
                 "split <think>...</think> into reasoning_content; grammars (response_format, "
                 "tools) apply to the answer after it")
      ->check(CLI::IsMember({"qwen3", "deepseek_r1"}));
  app.add_option("--max-choices-per-request", s.max_choices_per_request,
                 "most engine sequences one request may start, prompts × n (0: unbounded; "
                 "beyond it: 400)")
      ->capture_default_str();
  app.add_flag_function(
      "--metrics-aggregate-only",
      [&s](int64_t) { s.metrics_prefix_cache_group = server::kMetricsAggregateGroup; },
      "publish /metrics' prefix-cache counters only in aggregates of at least 64 requests, so "
      "that no client can read one request's cache hits from two scrapes (docs/serving.md)");
  app.add_flag("--trust-request-chat-template", s.trust_request_chat_template,
               "accept a chat_template in requests (chat endpoints, /tokenize); without it such "
               "requests get 400, since a template is a program the server runs");
  app.add_option("--grammar-compile-timeout", o->engine.config.grammar_compile_timeout_ms,
                 "milliseconds one structured-output grammar may take to compile (a slower "
                 "schema is refused with 400)")
      ->capture_default_str();
  app.add_option("--prep-workers", s.prep_workers,
                 "threads that prepare requests (parse, chat template, tokenize, grammar) off the "
                 "HTTP threads (0: the hardware's concurrency, 2 to 8)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--prep-queue", s.prep_queue,
                 "requests that may wait for a preparation worker; beyond it: 503")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--prep-timeout-s", o->prep_timeout_s,
                 "seconds from a request's arrival within which its preparation must end (else "
                 "503)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--ssl-keyfile", s.ssl_keyfile, "serve HTTPS: the private key (PEM)");
  app.add_option("--ssl-certfile", s.ssl_certfile,
                 "serve HTTPS: the certificate chain (PEM), with --ssl-keyfile");
  app.add_option("--ssl-ca-certs", s.ssl_ca_certs,
                 "CA certificates (PEM) that client certificates are verified against");
  app.add_option("--ssl-cert-reqs", s.ssl_cert_reqs,
                 "client certificates: 0 not asked for, 1 verified when sent, 2 required "
                 "(Python's ssl.CERT_*, as uvicorn)")
      ->capture_default_str()
      ->check(CLI::Range(0, 2));
  return [o] { return parallel::finish_world(run_serve(*o)); };
}

}  // namespace

KITE_REGISTER_COMMAND(serve, "serve", "Serve a model over an OpenAI-compatible HTTP API",
                      setup_serve);

}  // namespace kite::cli
