// A small HTTP/1.1 client for load generation, on Boost.Beast/Asio with C++20 coroutines: many
// concurrent streaming requests on one io_context (one thread), keep-alive connection reuse,
// one deadline per request, and the body handed over as it arrives with its arrival time.
// Plain http:// only (put a TLS-terminating proxy in front of an https endpoint).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/request_sample.h"
#include "kite/status.h"

namespace kite::bench {

using BenchClock = std::chrono::steady_clock;

struct HttpUrl {
  std::string host;
  std::string port = "80";
  std::string path_prefix;  // "" or "/something" (no trailing slash)
};

// "http://host[:port][/prefix]". https and other schemes are kInvalidArgument / kUnimplemented.
Result<HttpUrl> parse_http_url(std::string_view url);
// The request target for an endpoint under the URL's prefix; a prefix ending in "/v1" is not
// repeated for endpoints starting with "/v1/" ("http://h/v1" + "/v1/completions").
std::string join_target(const HttpUrl& url, std::string_view endpoint);

struct HttpResponse {
  int status = 0;  // 0 when no response head arrived
  FailureKind failure = FailureKind::kNone;
  std::string error;  // set when failure != kNone
  std::string body;   // non-streamed bodies (get/post), or the start of an error body
  bool ok() const { return failure == FailureKind::kNone && status >= 200 && status < 300; }
};

class HttpClient {
 public:
  HttpClient(boost::asio::any_io_executor executor, HttpUrl url, std::string api_key);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs a JSON body and hands each piece of a 2xx response body to `on_body` with the time it
  // arrived. Non-2xx responses are read whole (up to 64 KiB) into HttpResponse::body and not
  // passed to on_body. Fails with kTimeout past `deadline`, kConnect when the connection cannot
  // be made or breaks, kProtocol on malformed HTTP. A reused keep-alive connection that the
  // server had closed is retried once on a new one.
  using BodyFn = std::function<void(std::string_view bytes, BenchClock::time_point arrival)>;
  boost::asio::awaitable<HttpResponse> post_stream(std::string target, std::string body,
                                                   BenchClock::time_point deadline, BodyFn on_body);
  // GET or POST with the whole body returned.
  boost::asio::awaitable<HttpResponse> request(bool post, std::string target, std::string body,
                                               BenchClock::time_point deadline);

  // Connections opened so far (for tests: keep-alive reuse keeps this small).
  int64_t num_connections_opened() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One blocking request on a private io_context (health checks, the startup benchmark).
HttpResponse http_request_sync(const HttpUrl& url, bool post, std::string_view target,
                               std::string_view body, std::chrono::milliseconds timeout,
                               const std::string& api_key = "");

}  // namespace kite::bench
