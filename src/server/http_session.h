// One HTTP connection (a coroutine on its own strand) and the Exchange a handler uses to answer
// one request on it: whole responses, or an SSE stream of events; plus a watch that reports the
// client going away while the handler waits on the engine. Internal to src/server/.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "server/api_error.h"
#include "server/conn_stream.h"
#include "server/request_telemetry.h"
#include "server/router.h"
#include "server/server_state.h"

namespace kite::server {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

// What the server keeps of a live connection, so a shutdown can close the idle ones. Touched
// only on the connection's strand (except `executor`, fixed at creation).
struct ConnectionHandle {
  boost::asio::any_io_executor executor;
  ConnStream* stream = nullptr;  // null once the connection has ended
  bool idle = true;              // waiting for the next request (nothing would be lost by closing)
};

class Exchange {
 public:
  Exchange(ServerState& state, ConnStream& stream, HttpRequest& req, RouteMatch route);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  const HttpRequest& request() const { return req_; }
  const RouteMatch& route() const { return route_; }
  ServerState& state() { return state_; }
  // Request id, trace context and engine requests of this exchange (logs, traces).
  ExchangeRecord& record() { return record_; }
  // When this request's preparation must have ended (arrival + ServerConfig::prep_timeout).
  std::chrono::steady_clock::time_point prep_deadline() const { return prep_deadline_; }
  // Keep the connection open after this exchange?
  bool keep_alive() const { return keep_alive_ && !failed_; }
  // The status sent (0 before anything was sent).
  int status() const { return status_; }

  // Sends a whole response; adds Server, CORS and Connection headers. False: the write failed
  // (the client is gone).
  //
  // Coroutine parameters of class type are references throughout this server: GCC 12 destroys
  // a by-value coroutine parameter built from a temporary twice (PR c++/99576). Non-const
  // references make the compiler refuse temporaries; `body` is moved from.
  boost::asio::awaitable<bool> send(HttpResponse& res);
  boost::asio::awaitable<bool> send_body(int status, std::string_view content_type,
                                         std::string& body);
  boost::asio::awaitable<bool> send_error(const ApiError& e);
  // An error's JSON body in the style of the exchange's API: Anthropic's for /v1/messages,
  // OpenAI's everywhere else.
  std::string error_json(const ApiError& e) const;

  // SSE: the 200 header (text/event-stream, chunked), then framed events, then the end.
  boost::asio::awaitable<bool> begin_events();
  boost::asio::awaitable<bool> send_events(std::string_view framed);  // one or more events
  boost::asio::awaitable<bool> end_events();
  bool streaming() const { return streaming_; }

  // Calls `on_gone` (on this strand) if the client closes the connection while the handler
  // waits; at most one watch at a time, ended by the exchange's end.
  void watch_disconnect(std::function<void()> on_gone);
  bool client_gone() const { return *gone_; }
  // Ends the watch: `on_gone` will not be called after this returns.
  void unwatch();

 private:
  void add_common_headers(http::fields& h);

  ServerState& state_;
  ConnStream& stream_;
  HttpRequest& req_;
  RouteMatch route_;
  ExchangeRecord record_;
  bool keep_alive_ = false;
  bool failed_ = false;
  bool streaming_ = false;
  int status_ = 0;
  bool watching_ = false;
  std::chrono::steady_clock::time_point prep_deadline_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::shared_ptr<bool> gone_ = std::make_shared<bool>(false);
};

// Serves one accepted connection until it closes (or the server drains); with `tls`, after a
// TLS handshake (bounded by the read timeout), and a client that speaks plain HTTP gets a 400.
boost::asio::awaitable<void> run_connection(ServerState& state, boost::asio::ip::tcp::socket socket,
                                            std::shared_ptr<ConnectionHandle> handle,
                                            boost::asio::ssl::context* tls);

// Dispatches one routed request to its handler (defined with the handlers).
boost::asio::awaitable<void> dispatch(Exchange& ex);

}  // namespace kite::server
