// HttpServer: the OpenAI-compatible HTTP server of `kite serve` (Boost.Beast/Asio, C++20
// coroutines on a few Asio threads; each connection runs on its own strand).
//
//   HttpServer server(config);
//   KITE_RETURN_IF_ERROR(server.start());      // listening; /health is 503 until set_engine
//   server.set_engine(std::move(engine));     // from the thread that loaded the model
//   server.wait();                            // until SIGINT/SIGTERM or request_shutdown()
//
// Threads: Asio threads run every connection and never block on the engine (requests go in
// through Engine::add_request; outputs come back through RequestStream notifiers that post to
// the connection's strand). Engine::shutdown, which blocks, runs on a dedicated thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kite/engine.h"
#include "kite/status.h"

namespace kite::server {

struct ServerConfig {
  std::string host = "0.0.0.0";
  uint16_t port = 8000;  // 0: any free port (see HttpServer::port)
  int num_threads = 4;   // Asio threads
  std::string api_key;   // non-empty: /v1/* needs "Authorization: Bearer <api_key>"
  std::vector<std::string> allowed_origins;  // CORS; "*" for any
  bool allow_credentials = false;
  // Names the model answers to (the first is reported); empty: the engine's served name.
  std::vector<std::string> served_model_names;
  std::string model_path;  // reported as "root" by /v1/models
  size_t max_body_bytes = size_t{32} << 20;
  size_t max_header_bytes = size_t{64} << 10;
  // Reading one request (and the first one of a new connection) ends after this.
  std::chrono::milliseconds read_timeout{60'000};
  // A keep-alive connection that starts no next request within this is closed.
  std::chrono::milliseconds keep_alive_timeout{5'000};
  // Open connections; beyond it a new one gets 503 (Retry-After) and is closed.
  size_t max_connections = 4096;
  // One write to a client that does not read ends the connection after this (and aborts its
  // request).
  std::chrono::milliseconds write_timeout{60'000};
  // SIGTERM/SIGINT: running requests get this long to finish; then they are aborted.
  std::chrono::milliseconds shutdown_timeout{30'000};
  // The process owner's mode: SIGINT/SIGTERM handled on a thread of their own (a second one
  // during the drain _Exits with 128 + signal), and a watchdog that _Exits(1) when the drain
  // outlives shutdown_timeout + 3 s. Off for servers embedded in tests.
  bool handle_signals = true;
  // Tool calling: the family format of the model's tool calls ("hermes", "llama3_json",
  // "mistral"; "" = none). tool_choice "auto" parses calls only with enable_auto_tool_choice.
  std::string tool_call_parser;
  bool enable_auto_tool_choice = false;
  // "qwen3" | "deepseek_r1": chat responses split <think>…</think> into reasoning_content.
  std::string reasoning_parser;
  // OTLP/HTTP collector for request traces ("http://host:4318"); empty: no tracing.
  std::string otlp_traces_endpoint;
  // A request's own `chat_template` (chat endpoints, /tokenize) is refused unless this is set:
  // a template is a program the server runs (as vLLM's --trust-request-chat-template).
  bool trust_request_chat_template = false;
  // /metrics publishes the prefix-cache counters only in aggregates of at least this many
  // engine requests (--metrics-aggregate-only; 0: live), so no scrape pair isolates one request's
  // cache hits.
  int64_t metrics_prefix_cache_group = 0;  // kMetricsAggregateGroup with the flag
  // Admission: engine sequences one request may start (prompts × n; 0: unbounded).
  int64_t max_choices_per_request = 256;
  // Request preparation (parsing, chat templates, tokenization, grammars) runs on a pool of
  // this many threads (0: default_prep_workers()), never on the Asio threads. At most
  // prep_queue requests wait for a worker (beyond: 503); a request's preparation must end
  // within prep_timeout of its arrival (else 503).
  int prep_workers = 0;
  int prep_queue = 1024;
  std::chrono::milliseconds prep_timeout{60'000};
  // HTTPS (both set): the PEM private key and certificate chain; plain HTTP when both are
  // empty. ssl_ca_certs: the CAs client certificates are checked against; ssl_cert_reqs as
  // Python's ssl.CERT_*: 0 none asked, 1 verified when sent, 2 required.
  std::string ssl_keyfile;
  std::string ssl_certfile;
  std::string ssl_ca_certs;
  int ssl_cert_reqs = 0;
};

// The request count of one prefix-cache aggregate with --metrics-aggregate-only.
inline constexpr int64_t kMetricsAggregateGroup = 64;

class HttpServer {
 public:
  explicit HttpServer(ServerConfig config);
  // Shuts down (if not yet) and joins every thread.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the Asio threads. Errors: bad host, port in use.
  Status start();
  // The bound port (after start()).
  uint16_t port() const;

  // Publishes the loaded engine: /health turns 200 and the API opens. Thread-safe.
  void set_engine(std::shared_ptr<Engine> engine);

  // Starts a graceful shutdown (as SIGTERM): stop accepting, close idle connections, let
  // running requests finish within shutdown_timeout, abort the rest. Thread-safe, idempotent.
  void request_shutdown();
  bool shutdown_requested() const;

  // Blocks until the shutdown has completed and every thread has been joined.
  void wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kite::server
