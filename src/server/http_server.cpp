#include <fmt/format.h>
#include <openssl/ssl.h>
#include <sys/resource.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <exception>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_set>

#include "core/logging.h"
#include "server/http_session.h"
#include "server/openai_response.h"
#include "server/server.h"
#include "server/server_state.h"

namespace kite::server {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

// Many concurrent streams need many descriptors: raise the soft limit to the hard one.
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// What the drain may take past --shutdown-timeout (the handlers' last writes, closing the
// connections) before the process owner's watchdog ends the process.
constexpr std::chrono::milliseconds kShutdownGrace{3000};

}  // namespace

struct HttpServer::Impl {
  // Declared first so it is destroyed last: pending coroutine frames that the io_context
  // destroys still reach the state (and the engine it holds).
  ServerState state;
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  tcp::acceptor acceptor{ioc};
  std::optional<asio::ssl::context> tls;  // with --ssl-keyfile/--ssl-certfile
  // Signals are handled on a thread of their own: an I/O thread busy in a long request must
  // not delay SIGTERM (or the shutdown deadline it starts).
  asio::io_context signal_ioc;
  std::optional<asio::signal_set> signals;
  std::thread signal_thread;
  std::vector<std::thread> threads;
  std::thread shutdown_thread;
  std::thread watchdog_thread;  // with handle_signals: enforces the shutdown deadline
  std::atomic<bool> shutdown_requested{false};
  bool started = false;
  bool joined = false;
  uint16_t port = 0;

  std::mutex conns_mu;
  std::unordered_set<std::shared_ptr<ConnectionHandle>> conns;

  std::mutex done_mu;
  std::condition_variable done_cv;
  bool drained = false;
  bool stopped = false;                            // wait() has joined every thread
  std::chrono::steady_clock::time_point deadline;  // of the shutdown, set when it begins

  explicit Impl(ServerConfig config) : state(std::move(config)) {}

  awaitable<void> accept_loop();
  void arm_signals();
  void begin_shutdown();
  void drain();
  void watchdog();
  // Closes connections on their strands: idle ones only, or all.
  void close_connections(bool idle_only);
  size_t num_connections() {
    std::lock_guard<std::mutex> lock(conns_mu);
    return conns.size();
  }
};

awaitable<void> HttpServer::Impl::accept_loop() {
  asio::steady_timer backoff(ioc);
  // Accept errors come in storms (out of descriptors): one log line a second, with a count.
  std::chrono::steady_clock::time_point last_log{};
  int64_t num_unlogged = 0;
  while (acceptor.is_open()) {
    auto [ec, socket] =
        co_await acceptor.async_accept(asio::make_strand(ioc), asio::as_tuple(use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
      // Out of descriptors or a transient error: back off briefly instead of spinning.
      const auto now = std::chrono::steady_clock::now();
      if (now - last_log >= std::chrono::seconds(1)) {
        KITE_LOG_WARN("accept failed: {} ({} more since the last report)", ec.message(),
                      num_unlogged);
        last_log = now;
        num_unlogged = 0;
      } else {
        ++num_unlogged;
      }
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::as_tuple(use_awaitable));
      continue;
    }
    boost::system::error_code opt_ec;
    if (num_connections() >= state.config().max_connections) {
      // Over --max-connections: a short 503 written into the fresh (empty) send buffer without
      // blocking, then close; the descriptor is back at once.
      static constexpr std::string_view kFull =
          "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
          "Content-Type: application/json\r\nContent-Length: 113\r\n\r\n"
          "{\"error\":{\"message\":\"too many open connections\",\"type\":\"server_error\","
          "\"param\":null,\"code\":\"service_unavailable\"}}";
      socket.non_blocking(true, opt_ec);
      socket.send(asio::buffer(kFull.data(), kFull.size()), 0, opt_ec);
      socket.shutdown(tcp::socket::shutdown_both, opt_ec);
      socket.close(opt_ec);
      state.metrics().observe_http("other", 503);
      continue;
    }
    socket.set_option(tcp::no_delay(true), opt_ec);
    auto handle = std::make_shared<ConnectionHandle>();
    handle->executor = socket.get_executor();
    {
      std::lock_guard<std::mutex> lock(conns_mu);
      conns.insert(handle);
    }
    asio::co_spawn(handle->executor,
                   run_connection(state, std::move(socket), handle, tls ? &*tls : nullptr),
                   [this, handle](std::exception_ptr e) {
                     if (e) {
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& ex) {
                         KITE_LOG_ERROR("connection ended by an exception: {}", ex.what());
                       } catch (...) {
                         KITE_LOG_ERROR("connection ended by an unknown exception");
                       }
                     }
                     std::lock_guard<std::mutex> lock(conns_mu);
                     conns.erase(handle);
                   });
  }
}

void HttpServer::Impl::arm_signals() {
  signals->async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (!shutdown_requested.load()) {
      KITE_LOG_INFO("received signal {}: shutting down (running requests get {} ms)", signo,
                    state.config().shutdown_timeout.count());
      begin_shutdown();
    } else {
      // The operator asked twice: stop now, as 128 + signal (the shell's convention).
      KITE_LOG_WARN("received signal {} during the shutdown: exiting now", signo);
      spdlog::default_logger()->flush();
      std::fflush(nullptr);
      std::_Exit(128 + signo);
    }
    arm_signals();
  });
}

void HttpServer::Impl::begin_shutdown() {
  if (shutdown_requested.exchange(true)) return;
  deadline = std::chrono::steady_clock::now() + state.config().shutdown_timeout + kShutdownGrace;
  state.set_phase(ServerPhase::kDraining);
  // Under done_mu: the drain can only report done (and wait() look at these threads) once
  // they are stored; a fast drain used to let wait() miss a thread still being assigned.
  std::lock_guard<std::mutex> lock(done_mu);
  // The process owner (handle_signals) gets a hard deadline: whatever still runs then (a step
  // that hangs, an HTTP thread busy in a long tokenization) cannot keep the process alive.
  if (state.config().handle_signals) watchdog_thread = std::thread([this] { watchdog(); });
  shutdown_thread = std::thread([this] { drain(); });
}

void HttpServer::Impl::watchdog() {
  std::unique_lock<std::mutex> lock(done_mu);
  if (done_cv.wait_until(lock, deadline, [this] { return stopped; })) return;
  KITE_LOG_ERROR("shutdown deadline passed (--shutdown-timeout {} ms + {} ms): exiting now",
                 state.config().shutdown_timeout.count(), kShutdownGrace.count());
  spdlog::default_logger()->flush();
  std::fflush(nullptr);
  std::_Exit(1);
}

void HttpServer::Impl::close_connections(bool idle_only) {
  std::vector<std::shared_ptr<ConnectionHandle>> snapshot;
  {
    std::lock_guard<std::mutex> lock(conns_mu);
    snapshot.assign(conns.begin(), conns.end());
  }
  for (auto& h : snapshot) {
    asio::post(h->executor, [h, idle_only] {
      if (h->stream && (h->idle || !idle_only)) {
        boost::system::error_code ec;
        h->stream->socket().close(ec);
      }
    });
  }
}

// Runs on its own thread: Engine::shutdown blocks.
void HttpServer::Impl::drain() {
  asio::post(ioc, [this] {
    boost::system::error_code ec;
    acceptor.close(ec);
  });
  close_connections(/*idle_only=*/true);
  if (std::shared_ptr<const LoadedModel> model = state.model()) {
    model->engine->shutdown(state.config().shutdown_timeout.count());
  }
  // Every request has ended in the engine; give the handlers a moment to write their last
  // events, then close whatever is left; both within the shutdown's grace.
  const auto close_by = deadline - std::chrono::milliseconds(500);
  auto until = std::min(std::chrono::steady_clock::now() + state.config().write_timeout,
                        close_by - std::chrono::milliseconds(1000));
  while (state.generations_in_flight.load() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  close_connections(/*idle_only=*/false);
  until = std::max(close_by, std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
  while (num_connections() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (signals) {
    asio::post(signal_ioc, [this] {
      boost::system::error_code ec;
      signals->cancel(ec);
    });
  }
  work.reset();
  ioc.stop();
  {
    std::lock_guard<std::mutex> lock(done_mu);
    drained = true;
  }
  done_cv.notify_all();
  KITE_LOG_INFO("server stopped");
}

HttpServer::HttpServer(ServerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

HttpServer::~HttpServer() {
  if (impl_->started) {
    request_shutdown();
    wait();
  }
}

namespace {

// The server's TLS context from the PEM files of the config; errors name the file and say why.
Result<asio::ssl::context> make_tls_context(const ServerConfig& cfg) {
  if (cfg.ssl_keyfile.empty() != cfg.ssl_certfile.empty()) {
    return invalid_argument("HTTPS needs both --ssl-keyfile and --ssl-certfile");
  }
  if (cfg.ssl_cert_reqs < 0 || cfg.ssl_cert_reqs > 2) {
    return invalid_argument(
        fmt::format("--ssl-cert-reqs must be 0, 1 or 2, got {}", cfg.ssl_cert_reqs));
  }
  if (cfg.ssl_cert_reqs > 0 && cfg.ssl_ca_certs.empty()) {
    return invalid_argument(
        "--ssl-cert-reqs 1 or 2 needs --ssl-ca-certs (the CAs to check "
        "client certificates against)");
  }
  asio::ssl::context ctx(asio::ssl::context::tls_server);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                  asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  boost::system::error_code ec;
  auto why = [&ec] {
    return ec.message() + (ec.category() == asio::error::get_ssl_category() ? " (OpenSSL)" : "");
  };
  ctx.use_certificate_chain_file(cfg.ssl_certfile, ec);
  if (ec) {
    return invalid_argument(
        fmt::format("cannot use --ssl-certfile {}: {}", cfg.ssl_certfile, why()));
  }
  ctx.use_private_key_file(cfg.ssl_keyfile, asio::ssl::context::pem, ec);
  if (ec) {
    return invalid_argument(fmt::format("cannot use --ssl-keyfile {}: {}", cfg.ssl_keyfile, why()));
  }
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    return invalid_argument(fmt::format("--ssl-keyfile {} is not the key of --ssl-certfile {}",
                                        cfg.ssl_keyfile, cfg.ssl_certfile));
  }
  if (!cfg.ssl_ca_certs.empty()) {
    ctx.load_verify_file(cfg.ssl_ca_certs, ec);
    if (ec) {
      return invalid_argument(
          fmt::format("cannot use --ssl-ca-certs {}: {}", cfg.ssl_ca_certs, why()));
    }
  }
  if (cfg.ssl_cert_reqs == 1) ctx.set_verify_mode(asio::ssl::verify_peer);
  if (cfg.ssl_cert_reqs == 2) {
    ctx.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  }
  return ctx;
}

}  // namespace

Status HttpServer::start() {
  Impl& s = *impl_;
  const ServerConfig& cfg = s.state.config();
  if (!cfg.ssl_keyfile.empty() || !cfg.ssl_certfile.empty()) {
    Result<asio::ssl::context> ctx = make_tls_context(cfg);
    if (!ctx.ok()) return ctx.status();
    s.tls.emplace(std::move(*ctx));
  }
  raise_fd_limit();
  boost::system::error_code ec;
  tcp::resolver resolver(s.ioc);
  auto endpoints = resolver.resolve(cfg.host, std::to_string(cfg.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return invalid_argument(fmt::format("cannot resolve --host {}: {}", cfg.host, ec.message()));
  }
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return unavailable(fmt::format("cannot listen on {}:{}: {}", cfg.host, cfg.port, ec.message()));
  }
  s.port = s.acceptor.local_endpoint().port();
  asio::co_spawn(s.ioc, s.accept_loop(), asio::detached);
  if (cfg.handle_signals) {
    s.signals.emplace(s.signal_ioc, SIGINT, SIGTERM);
    s.arm_signals();
    s.signal_thread = std::thread([&s] { s.signal_ioc.run(); });
  }
  int n = std::max(1, cfg.num_threads);
  for (int i = 0; i < n; ++i) {
    s.threads.emplace_back([&s] {
      while (true) {
        try {
          s.ioc.run();
          break;
        } catch (const std::exception& e) {
          KITE_LOG_ERROR("Asio thread: unhandled exception: {}", e.what());
        }
      }
    });
  }
  s.started = true;
  KITE_LOG_INFO("listening on {}://{}:{} ({} HTTP threads)", s.tls ? "https" : "http", cfg.host,
                s.port, n);
  return ok_status();
}

uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::set_engine(std::shared_ptr<Engine> engine) {
  Impl& s = *impl_;
  if (s.state.draining()) return;  // shutting down already: the caller drops the engine
  auto model = std::make_shared<LoadedModel>();
  model->info = engine->model_info();
  model->engine = std::move(engine);
  model->served_model_names = s.state.config().served_model_names;
  if (model->served_model_names.empty()) {
    model->served_model_names.push_back(model->info.served_model_name);
  }
  model->parse_context.served_model_names = model->served_model_names;
  model->parse_context.vocab_size = model->info.vocab_size;
  model->parse_context.max_model_len = model->info.max_model_len;
  model->parse_context.default_sampling = model->info.default_sampling;
  model->parse_context.max_choices_per_request = s.state.config().max_choices_per_request;
  model->created = unix_time_now();
  // Published even if a shutdown races with it: handlers check the phase first, and the
  // engine's destructor (with the server's) aborts whatever it still holds.
  s.state.set_model(std::move(model));
  s.state.start_serving();
}

void HttpServer::request_shutdown() { impl_->begin_shutdown(); }

bool HttpServer::shutdown_requested() const { return impl_->shutdown_requested.load(); }

void HttpServer::wait() {
  Impl& s = *impl_;
  if (!s.started || s.joined) return;
  {
    std::unique_lock<std::mutex> lock(s.done_mu);
    s.done_cv.wait(lock, [&s] { return s.drained; });
  }
  if (s.shutdown_thread.joinable()) s.shutdown_thread.join();
  if (s.signal_thread.joinable()) s.signal_thread.join();  // its one wait was cancelled
  for (std::thread& t : s.threads) t.join();
  // Preparations still running work on coroutine frames the io_context owns: they end (and
  // what waits is dropped) before those frames can be destroyed.
  s.state.prep_pool().stop();
  {
    std::lock_guard<std::mutex> lock(s.done_mu);
    s.stopped = true;
  }
  s.done_cv.notify_all();
  if (s.watchdog_thread.joinable()) s.watchdog_thread.join();
  s.joined = true;
}

}  // namespace kite::server
