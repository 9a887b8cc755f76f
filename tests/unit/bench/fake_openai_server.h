// A scripted OpenAI-compatible streaming server for the load-generator tests (its own thread
// and io_context, 127.0.0.1, a free port in the tests' range 20000-20999). The behaviour of each
// request is picked by its prompt: a token-id prompt streams max_tokens one-token chunks then usage
// and [DONE]; a text prompt names a scenario ("ok", "503", "slow", "stream_error", "no_done",
// "close", "bad_usage", "malformed", "crlf", "multi_token", "empty_text"). Chunked transfer
// encoding, keep-alive.
#pragma once

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_test_util.h"

namespace kite::bench::testing {

class FakeOpenAiServer {
 public:
  FakeOpenAiServer() : acceptor_(ioc_) {
    const auto loopback = boost::asio::ip::make_address("127.0.0.1");
    const int n = kTestPortHi - kTestPortLo + 1;
    const int start = static_cast<int>(
        (static_cast<uintptr_t>(::getpid()) * 7919u + reinterpret_cast<uintptr_t>(this) / 64) %
        static_cast<uintptr_t>(n));
    for (int i = 0; i < n && !acceptor_.is_open(); ++i) {
      boost::system::error_code ec;
      acceptor_.open(tcp::v4(), ec);
      const auto port = static_cast<unsigned short>(kTestPortLo + (start + i) % n);
      if (!ec) acceptor_.bind({loopback, port}, ec);
      if (!ec) acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
      if (ec) acceptor_.close();
    }
    if (!acceptor_.is_open()) throw std::runtime_error("no free port in 20000-20999");
    boost::asio::co_spawn(ioc_, accept_loop(), boost::asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~FakeOpenAiServer() {
    ioc_.stop();
    thread_.join();
  }

  int port() const { return acceptor_.local_endpoint().port(); }
  std::string base_url() const { return fmt::format("http://127.0.0.1:{}", port()); }
  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> l(mu_);
    return bodies_;
  }
  std::vector<std::string> auth_headers() {
    std::lock_guard<std::mutex> l(mu_);
    return auth_;
  }
  int connections() {
    std::lock_guard<std::mutex> l(mu_);
    return connections_;
  }

 private:
  using tcp = boost::asio::ip::tcp;
  template <typename T>
  using awaitable = boost::asio::awaitable<T>;

  awaitable<void> accept_loop() {
    while (true) {
      auto [ec, sock] =
          co_await acceptor_.async_accept(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return;
      {
        std::lock_guard<std::mutex> l(mu_);
        ++connections_;
      }
      boost::asio::co_spawn(ioc_, session(std::move(sock)), boost::asio::detached);
    }
  }

  static awaitable<void> sleep_ms(int ms) {
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor,
                                std::chrono::milliseconds(ms));
    co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }

  static awaitable<bool> write(tcp::socket& s, const std::string& bytes) {
    auto [ec, n] = co_await boost::asio::async_write(
        s, boost::asio::buffer(bytes), boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return !ec;
  }
  static std::string chunk(const std::string& data) {
    return fmt::format("{:x}\r\n{}\r\n", data.size(), data);
  }
  static std::string event(const std::string& json) { return chunk("data: " + json + "\n\n"); }

  awaitable<void> session(tcp::socket sock) {
    namespace http = boost::beast::http;
    namespace bj = boost::json;
    boost::beast::flat_buffer buf;
    while (true) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(sock, buf, req,
                                               boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return;
      {
        std::lock_guard<std::mutex> l(mu_);
        bodies_.push_back(req.body());
        auth_.push_back(std::string(req[http::field::authorization]));
      }
      const bool chat = req.target() == "/v1/chat/completions";
      if (!chat && req.target() != "/v1/completions") {
        const std::string body = R"({"error":{"message":"no such route"}})";
        co_await write(sock, fmt::format("HTTP/1.1 404 Not Found\r\nContent-Type: "
                                         "application/json\r\nContent-Length: {}\r\n\r\n{}",
                                         body.size(), body));
        continue;
      }
      bj::object o = bj::parse(req.body()).as_object();
      const int64_t max_tokens = o.at("max_tokens").as_int64();
      std::string scenario = "ok";
      int64_t prompt_tokens = 7;
      if (chat) {
        scenario = std::string(o.at("messages").as_array()[0].at("content").as_string());
      } else if (o.at("prompt").is_array()) {
        prompt_tokens = static_cast<int64_t>(o.at("prompt").as_array().size());
      } else {
        scenario = std::string(o.at("prompt").as_string());
      }
      const bool usage = o.contains("stream_options");
      if (scenario == "close") co_return;
      if (scenario == "503") {
        const std::string body = R"({"error":{"message":"server overloaded"}})";
        co_await write(sock, fmt::format("HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                                         "application/json\r\nContent-Length: {}\r\n\r\n{}",
                                         body.size(), body));
        continue;
      }
      if (scenario == "slow") {
        co_await sleep_ms(60000);
        co_return;
      }
      if (!co_await write(sock,
                          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n")) {
        co_return;
      }
      co_await sleep_ms(20);  // "prefill"
      auto token_event = [&](const std::string& text) {
        return chat ? event(R"({"choices":[{"index":0,"delta":{"content":")" + text + R"("}}]})")
                    : event(R"({"choices":[{"index":0,"text":")" + text + R"("}]})");
      };
      if (chat)
        co_await write(sock, event(R"({"choices":[{"index":0,"delta":{"role":"assistant"}}]})"));
      int64_t produced = 0;
      std::string tail;
      if (scenario == "stream_error") {
        co_await write(sock, token_event("a"));
        tail = event(R"({"error":{"message":"engine died","code":500}})") + event("[DONE]");
      } else if (scenario == "no_done") {
        co_await write(sock, token_event("a"));
        co_await write(sock, token_event("b"));
      } else if (scenario == "malformed") {
        co_await write(sock, chunk("data: {not json}\n\n"));
        tail = event("[DONE]");
      } else if (scenario == "crlf") {
        // CRLF line endings, each event split mid-line across two HTTP chunks.
        for (int64_t k = 0; k < max_tokens; ++k, ++produced) {
          const std::string e = "data: {\"choices\":[{\"text\":\"x\"}]}\r\n\r\n";
          co_await write(sock, chunk(e.substr(0, 10)));
          co_await write(sock, chunk(e.substr(10)));
          co_await sleep_ms(2);
        }
      } else if (scenario == "multi_token") {
        // Two tokens per chunk: half as many chunks as tokens.
        for (int64_t k = 0; k < max_tokens; k += 2, produced += 2) {
          co_await write(sock, token_event("xy"));
          co_await sleep_ms(2);
        }
      } else if (scenario == "empty_text") {
        // What a server sends for a model without a tokenizer: chunks with empty text.
        for (int64_t k = 0; k < max_tokens; ++k, ++produced) co_await write(sock, token_event(""));
      } else {
        for (int64_t k = 0; k < max_tokens; ++k, ++produced) {
          co_await write(sock, token_event("t"));
          co_await sleep_ms(2);
        }
      }
      if (scenario == "bad_usage") produced = max_tokens - 1;
      if (scenario == "ok" || scenario == "crlf" || scenario == "bad_usage" ||
          scenario == "multi_token" || scenario == "empty_text") {
        if (usage) {
          tail += event(fmt::format(
              R"({{"choices":[],"usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}}})",
              prompt_tokens, produced, prompt_tokens + produced));
        }
        tail += event("[DONE]");
      }
      tail += "0\r\n\r\n";
      if (!co_await write(sock, tail)) co_return;
    }
  }

  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> bodies_;
  std::vector<std::string> auth_;
  int connections_ = 0;
};

}  // namespace kite::bench::testing
