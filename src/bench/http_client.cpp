#include "bench/http_client.h"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "core/version.h"

namespace kite::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kErrorBodyLimit = 64 * 1024;

HttpResponse failed(FailureKind kind, std::string what) {
  HttpResponse r;
  r.failure = kind;
  r.error = std::move(what);
  return r;
}

// Maps a transport error to why the request failed.
FailureKind failure_of(const boost::system::error_code& ec) {
  if (ec == beast::error::timeout) return FailureKind::kTimeout;
  if (ec.category() == http::make_error_code(http::error::bad_version).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message) {
    return FailureKind::kProtocol;
  }
  return FailureKind::kConnect;
}

// Errors that mean a reused keep-alive connection had been closed by the server.
bool stale_connection(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

}  // namespace

Result<HttpUrl> parse_http_url(std::string_view url) {
  constexpr std::string_view kHttp = "http://";
  if (url.starts_with("https://")) {
    return unimplemented(fmt::format(
        "{}: https is not supported by kite bench; use http:// or a TLS-terminating proxy", url));
  }
  if (!url.starts_with(kHttp)) {
    return invalid_argument(fmt::format("'{}' is not an http:// URL", url));
  }
  std::string_view rest = url.substr(kHttp.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  HttpUrl u;
  if (authority.empty()) return invalid_argument(fmt::format("'{}' has no host", url));
  if (authority.front() == '[') {  // [v6]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return invalid_argument(fmt::format("bad host in '{}'", url));
    u.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') return invalid_argument(fmt::format("bad port in '{}'", url));
      u.port = std::string(authority.substr(1));
    }
  } else {
    size_t colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty()) return invalid_argument(fmt::format("'{}' has no host", url));
  if (u.port.empty() || u.port.find_first_not_of("0123456789") != std::string::npos ||
      u.port.size() > 5 || std::stoi(u.port) == 0 || std::stoi(u.port) > 65535) {
    return invalid_argument(fmt::format("bad port '{}' in '{}'", u.port, url));
  }
  u.path_prefix = std::string(path);
  return u;
}

std::string join_target(const HttpUrl& url, std::string_view endpoint) {
  std::string ep(endpoint);
  if (ep.empty() || ep.front() != '/') ep.insert(ep.begin(), '/');
  std::string_view prefix = url.path_prefix;
  if (prefix.ends_with("/v1") && ep.starts_with("/v1/")) prefix.remove_suffix(3);
  return std::string(prefix) + ep;
}

struct HttpClient::Impl {
  asio::any_io_executor executor;
  HttpUrl url;
  std::string api_key;
  std::vector<std::unique_ptr<beast::tcp_stream>> idle;  // keep-alive connections
  std::optional<tcp::resolver::results_type> resolved;
  int64_t opened = 0;

  awaitable<std::unique_ptr<beast::tcp_stream>> connect(BenchClock::time_point deadline,
                                                        HttpResponse& err) {
    if (!resolved) {
      tcp::resolver resolver(executor);
      auto [ec, results] = co_await resolver.async_resolve(url.host, url.port, kTuple);
      if (ec) {
        err = failed(FailureKind::kConnect,
                     fmt::format("resolve {}:{}: {}", url.host, url.port, ec.message()));
        co_return nullptr;
      }
      resolved = results;
    }
    auto s = std::make_unique<beast::tcp_stream>(executor);
    s->expires_at(deadline);
    auto [ec, ep] = co_await s->async_connect(*resolved, kTuple);
    if (ec) {
      err = failed(failure_of(ec),
                   fmt::format("connect {}:{}: {}", url.host, url.port, ec.message()));
      co_return nullptr;
    }
    s->socket().set_option(tcp::no_delay(true));
    ++opened;
    co_return s;
  }

  awaitable<HttpResponse> exchange(http::verb verb, std::string target, std::string body,
                                   BenchClock::time_point deadline, const BodyFn* on_body) {
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<beast::tcp_stream> s;
      const bool reused = !idle.empty() && attempt == 0;
      if (reused) {
        s = std::move(idle.back());
        idle.pop_back();
      } else {
        HttpResponse err;
        s = co_await connect(deadline, err);
        if (!s) co_return err;
      }
      s->expires_at(deadline);
      http::request<http::string_body> req{verb, target, 11};
      req.set(http::field::host, url.host + ":" + url.port);
      req.set(http::field::user_agent, std::string("kite-bench/") + KITE_VERSION_STRING);
      if (!api_key.empty()) req.set(http::field::authorization, "Bearer " + api_key);
      if (on_body != nullptr) req.set(http::field::accept, "text/event-stream");
      if (verb == http::verb::post) {
        req.set(http::field::content_type, "application/json");
        req.body() = body;
      }
      req.keep_alive(true);
      req.prepare_payload();
      auto [wec, wn] = co_await http::async_write(*s, req, kTuple);
      if (wec) {
        if (reused && stale_connection(wec)) continue;
        co_return failed(failure_of(wec), fmt::format("sending the request: {}", wec.message()));
      }
      beast::flat_buffer buf;
      http::response_parser<http::buffer_body> parser;
      parser.body_limit(boost::none);
      auto [hec, hn] = co_await http::async_read_header(*s, buf, parser, kTuple);
      if (hec) {
        if (reused && stale_connection(hec)) continue;
        co_return failed(failure_of(hec),
                         fmt::format("reading the response head: {}", hec.message()));
      }
      HttpResponse resp;
      resp.status = static_cast<int>(parser.get().result_int());
      const bool stream = on_body != nullptr && resp.status >= 200 && resp.status < 300;
      char chunk[16384];
      while (!parser.is_done()) {
        parser.get().body().data = chunk;
        parser.get().body().size = sizeof chunk;
        auto [ec, n] = co_await http::async_read_some(*s, buf, parser, kTuple);
        const auto arrival = BenchClock::now();
        if (ec == http::error::need_buffer) ec = {};
        const size_t got = sizeof chunk - parser.get().body().size;
        if (got > 0) {
          if (stream) {
            (*on_body)(std::string_view(chunk, got), arrival);
          } else if (resp.body.size() < kErrorBodyLimit) {
            resp.body.append(chunk, std::min(got, kErrorBodyLimit - resp.body.size()));
          }
        }
        if (ec) {
          HttpResponse f =
              failed(failure_of(ec), fmt::format("reading the response body: {}", ec.message()));
          f.status = resp.status;
          co_return f;
        }
      }
      if (parser.keep_alive()) {
        s->expires_never();
        idle.push_back(std::move(s));
      } else {
        beast::error_code ignored;
        s->socket().shutdown(tcp::socket::shutdown_both, ignored);
      }
      co_return resp;
    }
  }
};

HttpClient::HttpClient(asio::any_io_executor executor, HttpUrl url, std::string api_key)
    : impl_(std::make_unique<Impl>()) {
  impl_->executor = std::move(executor);
  impl_->url = std::move(url);
  impl_->api_key = std::move(api_key);
}

HttpClient::~HttpClient() = default;

awaitable<HttpResponse> HttpClient::post_stream(std::string target, std::string body,
                                                BenchClock::time_point deadline, BodyFn on_body) {
  co_return co_await impl_->exchange(http::verb::post, std::move(target), std::move(body), deadline,
                                     &on_body);
}

awaitable<HttpResponse> HttpClient::request(bool post, std::string target, std::string body,
                                            BenchClock::time_point deadline) {
  co_return co_await impl_->exchange(post ? http::verb::post : http::verb::get, std::move(target),
                                     std::move(body), deadline, nullptr);
}

int64_t HttpClient::num_connections_opened() const { return impl_->opened; }

HttpResponse http_request_sync(const HttpUrl& url, bool post, std::string_view target,
                               std::string_view body, std::chrono::milliseconds timeout,
                               const std::string& api_key) {
  asio::io_context ioc;
  HttpClient client(ioc.get_executor(), url, api_key);
  HttpResponse out;
  asio::co_spawn(
      ioc,
      [&]() -> awaitable<void> {
        out = co_await client.request(post, std::string(target), std::string(body),
                                      BenchClock::now() + timeout);
      },
      asio::detached);
  ioc.run();
  return out;
}

}  // namespace kite::bench
