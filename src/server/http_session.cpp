#include "server/http_session.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <cerrno>
#include <exception>
#include <optional>
#include <tuple>

#include "core/logging.h"
#include "core/version.h"
#include "server/http_policy.h"

namespace kite::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

Exchange::Exchange(ServerState& state, ConnStream& stream, HttpRequest& req, RouteMatch route)
    : state_(state),
      stream_(stream),
      req_(req),
      route_(std::move(route)),
      record_(req["traceparent"], req["x-request-id"]) {
  keep_alive_ = req_.keep_alive() && !state_.draining();
  prep_deadline_ = std::chrono::steady_clock::now() + state_.config().prep_timeout;
}

Exchange::~Exchange() { unwatch(); }

void Exchange::add_common_headers(http::fields& h) {
  h.set(http::field::server, "kite/" KITE_VERSION_STRING);
  if (auto id = req_.find("x-request-id"); id != req_.end()) h.set("X-Request-Id", id->value());
  std::string allow = state_.cors().allow_origin(req_[http::field::origin]);
  if (!allow.empty()) {
    h.set(http::field::access_control_allow_origin, allow);
    if (allow != "*") h.set(http::field::vary, "Origin");
    if (state_.cors().allow_credentials) {
      h.set(http::field::access_control_allow_credentials, "true");
    }
  }
}

awaitable<bool> Exchange::send(HttpResponse& res) {
  unwatch();
  if (state_.draining()) keep_alive_ = false;
  res.version(req_.version());
  res.keep_alive(keep_alive_);
  add_common_headers(res.base());
  res.prepare_payload();
  status_ = res.result_int();
  state_.metrics().observe_http(route_.label, status_);
  beast::error_code ec;
  stream_.expires_after(state_.config().write_timeout);
  if (route_.head) {
    http::response_serializer<http::string_body> sr(res);
    co_await http::async_write_header(stream_, sr, asio::redirect_error(use_awaitable, ec));
  } else {
    co_await http::async_write(stream_, res, asio::redirect_error(use_awaitable, ec));
  }
  stream_.expires_never();
  if (ec) failed_ = true;
  co_return !ec;
}

awaitable<bool> Exchange::send_body(int status, std::string_view content_type, std::string& body) {
  HttpResponse res{static_cast<http::status>(status), req_.version()};
  res.set(http::field::content_type, content_type);
  res.body() = std::move(body);
  co_return co_await send(res);
}

std::string Exchange::error_json(const ApiError& e) const {
  return route_.route == Route::kMessages ? anthropic_error_body(e) : error_body(e);
}

awaitable<bool> Exchange::send_error(const ApiError& e) {
  HttpResponse res{static_cast<http::status>(e.http_status), req_.version()};
  res.set(http::field::content_type, "application/json");
  if (e.http_status == 405 && !route_.allow.empty()) res.set(http::field::allow, route_.allow);
  if (e.http_status == 401) res.set(http::field::www_authenticate, "Bearer");
  // Every 503 is a state that passes (loading, overload, draining): say when to come back.
  if (e.http_status == 503) res.set(http::field::retry_after, "1");
  if (e.http_status >= 500 || e.http_status == 413) keep_alive_ = false;
  res.body() = error_json(e);
  co_return co_await send(res);
}

awaitable<bool> Exchange::begin_events() {
  if (state_.draining()) keep_alive_ = false;
  // HTTP/1.0 has no chunked encoding: the stream ends with the connection.
  if (req_.version() < 11) keep_alive_ = false;
  http::response<http::empty_body> res{http::status::ok, req_.version()};
  res.set(http::field::content_type, "text/event-stream; charset=utf-8");
  res.set(http::field::cache_control, "no-cache");
  res.set("X-Accel-Buffering", "no");
  res.keep_alive(keep_alive_);
  add_common_headers(res.base());
  if (req_.version() >= 11) res.chunked(true);
  status_ = 200;
  streaming_ = true;
  state_.metrics().observe_http(route_.label, status_);
  beast::error_code ec;
  http::response_serializer<http::empty_body> sr(res);
  stream_.expires_after(state_.config().write_timeout);
  co_await http::async_write_header(stream_, sr, asio::redirect_error(use_awaitable, ec));
  stream_.expires_never();
  if (ec) failed_ = true;
  co_return !ec;
}

awaitable<bool> Exchange::send_events(std::string_view framed) {
  if (failed_) co_return false;
  if (framed.empty()) co_return true;
  beast::error_code ec;
  stream_.expires_after(state_.config().write_timeout);
  if (req_.version() >= 11) {
    co_await asio::async_write(stream_, http::make_chunk(asio::buffer(framed)),
                               asio::redirect_error(use_awaitable, ec));
  } else {
    co_await asio::async_write(stream_, asio::buffer(framed),
                               asio::redirect_error(use_awaitable, ec));
  }
  stream_.expires_never();
  if (ec) failed_ = true;
  co_return !ec;
}

awaitable<bool> Exchange::end_events() {
  unwatch();
  if (failed_) co_return false;
  if (req_.version() < 11) co_return true;
  beast::error_code ec;
  stream_.expires_after(state_.config().write_timeout);
  co_await asio::async_write(stream_, http::make_chunk_last(),
                             asio::redirect_error(use_awaitable, ec));
  stream_.expires_never();
  if (ec) failed_ = true;
  co_return !ec;
}

namespace {

// One wait for the peer's next bytes or its FIN. A completed wait_read is only a hint: Asio may
// report a socket readable that has nothing to read (a readiness edge left over from the
// request already read on this keep-alive connection), so the peek must not block — a blocking
// receive here would stall the connection's strand, and with it the handler it is watching for,
// until the client sent something. Spurious readiness re-arms the wait.
void arm_disconnect_watch(tcp::socket& sock, std::shared_ptr<bool> alive,
                          std::shared_ptr<bool> gone,
                          std::shared_ptr<std::function<void()>> on_gone) {
  sock.async_wait(tcp::socket::wait_read, [&sock, alive, gone, on_gone](beast::error_code ec) {
    if (!*alive) return;  // unwatch() ran (and cancelled this wait)
    if (!ec) {
      char c = 0;
      ssize_t n = ::recv(sock.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) return;  // a pipelined request: the client is still there; stop watching
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        arm_disconnect_watch(sock, alive, gone, on_gone);  // nothing there after all
        return;
      }
      // n == 0: the peer closed its side; n < 0: the connection failed.
    }
    *gone = true;
    (*on_gone)();
  });
}

}  // namespace

void Exchange::watch_disconnect(std::function<void()> on_gone) {
  if (watching_) return;
  watching_ = true;
  alive_ = std::make_shared<bool>(true);
  arm_disconnect_watch(stream_.socket(), alive_, gone_,
                       std::make_shared<std::function<void()>>(std::move(on_gone)));
}

void Exchange::unwatch() {
  *alive_ = false;
  if (watching_) {
    watching_ = false;
    beast::error_code ec;
    stream_.socket().cancel(ec);
  }
}

namespace {

// Reads and drops what the client still sends (up to a bound), so it finishes writing and reads
// our error response instead of seeing a reset.
awaitable<void> linger(ConnStream& stream) {
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(std::chrono::seconds(5));
  std::vector<char> sink(64 * 1024);
  size_t total = 0;
  while (total < (size_t{256} << 20)) {
    auto [rec, n] =
        co_await stream.async_read_some(asio::buffer(sink), asio::as_tuple(use_awaitable));
    if (rec) break;
    total += n;
  }
  stream.expires_never();
}

awaitable<void> handle_request(Exchange& ex) {
  const RouteMatch& route = ex.route();
  const HttpRequest& req = ex.request();
  ServerState& state = ex.state();
  if (route.route == Route::kPreflight) {
    HttpResponse res{http::status::no_content, req.version()};
    res.set(http::field::allow, route.allow);
    if (!state.cors().allow_origin(req[http::field::origin]).empty()) {
      res.set(http::field::access_control_allow_methods, kCorsAllowMethods);
      auto asked = req[http::field::access_control_request_headers];
      res.set(http::field::access_control_allow_headers,
              asked.empty() ? std::string(kCorsAllowHeaders) : std::string(asked));
      res.set(http::field::access_control_max_age, kCorsMaxAge);
    }
    co_await ex.send(res);
    co_return;
  }
  const std::string& key = state.config().api_key;
  if (!key.empty() && path_requires_auth(route.path) &&
      !api_key_matches(req[http::field::authorization], req["x-api-key"], key)) {
    co_await ex.send_error(unauthorized());
    co_return;
  }
  if (route.route == Route::kNone) {
    if (route.status == 405) {
      co_await ex.send_error(method_not_allowed(req.method_string(), route.path));
    } else {
      co_await ex.send_error(not_found_path(route.path));
    }
    co_return;
  }
  co_await dispatch(ex);
}

// A response to a request that could not be read whole (no handler ran).
awaitable<void> reject_unread(ServerState& state, ConnStream& stream,
                              const http::request_parser<http::string_body>& parser,
                              const ApiError& error) {
  HttpRequest req;
  req.version(11);
  req.keep_alive(false);
  RouteMatch route;
  route.label = "other";
  if (parser.is_header_done()) {
    req.base() = parser.get().base();
    req.keep_alive(false);
    route.label = match_route(req.method_string(), req.target()).label;
  }
  Exchange ex(state, stream, req, route);
  co_await ex.send_error(error);
}

// The TLS handshake, within `timeout` (a client that stalls it holds a connection no longer
// than one that stalls its request). The first bytes decide: a TLS record starts with 22
// (handshake); anything else is a client speaking plain HTTP to the HTTPS port, which gets a
// plain 400 saying so. False: the connection is done.
awaitable<bool> tls_handshake(ConnStream& stream, asio::ssl::context& ctx,
                              std::chrono::milliseconds timeout) {
  stream.expires_after(timeout);
  // The first TLS record (the ClientHello; at most 2^14 bytes) is read whole before OpenSSL's
  // state and Asio's record buffers (about 90 KiB) exist: a client that stalls in it holds only
  // what it sent.
  std::string first;
  size_t want = 5;  // the record header: type, version (2), length (2)
  std::array<char, 4096> chunk{};
  while (first.size() < want) {
    auto [ec, n] =
        co_await stream.tcp().async_read_some(asio::buffer(chunk), asio::as_tuple(use_awaitable));
    if (ec || n == 0) co_return false;
    first.append(chunk.data(), n);
    if (first[0] != 0x16) {
      static constexpr std::string_view kPlain =
          "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: application/json\r\n"
          "Content-Length: 138\r\n\r\n"
          "{\"error\":{\"message\":\"This port serves HTTPS: send the request over TLS\","
          "\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"bad_request\"}}";
      co_await asio::async_write(stream.tcp(), asio::buffer(kPlain.data(), kPlain.size()),
                                 asio::as_tuple(use_awaitable));
      stream.expires_never();
      beast::error_code sec;
      stream.socket().shutdown(tcp::socket::shutdown_send, sec);
      co_return false;
    }
    if (want == 5 && first.size() >= 5) {
      const size_t len = (static_cast<size_t>(static_cast<unsigned char>(first[3])) << 8) |
                         static_cast<unsigned char>(first[4]);
      if (len == 0 || len > (size_t{1} << 14)) co_return false;  // not a TLS record
      want = 5 + len;
    }
  }
  auto [hec, used] = co_await stream.start_tls(ctx).async_handshake(
      asio::ssl::stream_base::server, asio::buffer(first), asio::as_tuple(use_awaitable));
  stream.expires_never();
  co_return !hec;
}

}  // namespace

awaitable<void> run_connection(ServerState& state, tcp::socket socket,
                               std::shared_ptr<ConnectionHandle> handle, asio::ssl::context* tls) {
  ConnStream stream(std::move(socket));
  handle->stream = &stream;
  state.metrics().add_connections(1);
  struct Closing {
    ServerState& state;
    ConnectionHandle& handle;
    ~Closing() {
      handle.stream = nullptr;
      state.metrics().add_connections(-1);
    }
  } closing{state, *handle};

  const ServerConfig& cfg = state.config();
  if (tls != nullptr && !co_await tls_handshake(stream, *tls, cfg.read_timeout)) co_return;
  beast::flat_buffer buffer;
  bool first = true;
  while (!state.draining()) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(cfg.max_body_bytes);
    parser.header_limit(static_cast<uint32_t>(cfg.max_header_bytes));
    handle->idle = true;
    // A connection between requests gets the (short) keep-alive time to start the next one.
    stream.expires_after(first || buffer.size() > 0 ? cfg.read_timeout : cfg.keep_alive_timeout);
    first = false;
    auto [ec, n] =
        co_await http::async_read_header(stream, buffer, parser, asio::as_tuple(use_awaitable));
    handle->idle = false;
    if (!ec) {
      // The framing is checked before any body byte is read (RFC 9112 section 6).
      const auto& head = parser.get();
      const int bad = framing_error_status(head[http::field::transfer_encoding],
                                           head.count(http::field::transfer_encoding) > 0,
                                           head.count(http::field::content_length) > 0);
      if (bad != 0) {
        // A named error: GCC mis-destroys a conditional temporary inside co_await.
        ApiError error{400,
                       "Bad request framing: Transfer-Encoding must end with one chunked and "
                       "cannot come with Content-Length",
                       "invalid_request_error", "", "bad_request"};
        if (bad == 501) {
          error = ApiError{501, "Transfer-Encoding other than chunked is not supported",
                           "server_error", "", "not_implemented"};
        }
        co_await reject_unread(state, stream, parser, error);
        break;
      }
      if (head.version() >= 11 && beast::iequals(head[http::field::expect], "100-continue") &&
          !parser.is_done()) {
        http::response<http::empty_body> cont{http::status::continue_, 11};
        stream.expires_after(cfg.write_timeout);
        auto [wec, wn] = co_await http::async_write(stream, cont, asio::as_tuple(use_awaitable));
        if (wec) break;
      }
      stream.expires_after(cfg.read_timeout);
      std::tie(ec, n) =
          co_await http::async_read(stream, buffer, parser, asio::as_tuple(use_awaitable));
    }
    stream.expires_never();
    if (ec) {
      std::optional<ApiError> reply;
      if (ec == http::error::body_limit) {
        reply = body_too_large(cfg.max_body_bytes);
      } else if (ec == http::error::header_limit) {
        reply = ApiError{431, "Request header fields are too large", "invalid_request_error", "",
                         "request_header_fields_too_large"};
      } else if (ec != http::error::end_of_stream && ec != asio::error::eof &&
                 ec != asio::error::operation_aborted && ec != beast::error::timeout &&
                 ec != asio::error::connection_reset && ec != asio::error::bad_descriptor &&
                 ec != http::error::partial_message) {
        reply = ApiError{400, fmt::format("Malformed HTTP request: {}", ec.message()),
                         "invalid_request_error", "", "bad_request"};
      }
      if (reply) co_await reject_unread(state, stream, parser, *reply);
      if (ec == http::error::body_limit) co_await linger(stream);
      break;
    }
    HttpRequest req = parser.release();
    Exchange ex(state, stream, req, match_route(req.method_string(), req.target()));
    std::string failure;
    try {
      co_await handle_request(ex);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      KITE_LOG_ERROR("{} {}: internal error: {}", std::string(req.method_string()),
                     std::string(req.target()), failure);
      if (ex.status() == 0) {
        ApiError error = internal_error_api(fmt::format("internal error: {}", failure));
        co_await ex.send_error(error);
      }
      break;
    }
    if (ex.status() == 0 && ex.client_gone()) {
      // The client left before the answer (nginx's "client closed request").
      state.metrics().observe_http(ex.route().label, 499);
    }
    state.telemetry().finish(ex.record(), req.method_string(), ex.route().label,
                             ex.client_gone() && ex.status() == 0 ? 499 : ex.status());
    if (!ex.keep_alive() || ex.client_gone()) break;
  }
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace kite::server
