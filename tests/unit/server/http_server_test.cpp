// The HTTP server end to end over loopback, with the real kite::Engine around a weightless
// deterministic model (HashModelRunner; token-id prompts, no tokenizer): routing and errors,
// whole and streamed completions, client disconnects aborting requests, overload, shutdown.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <future>
#include <optional>
#include <thread>

#include "engine/engine_impl.h"
#include "server/server.h"
#include "testing/hash_model_runner.h"

namespace kite::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace bj = boost::json;
using asio::ip::tcp;
using testing::HashModelRunner;

constexpr int64_t kVocab = 64;

struct Reply {
  int status = 0;
  http::fields headers;
  std::string body;
  bj::value json() const { return bj::parse(body); }
};

class Client {
 public:
  explicit Client(uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  Reply request(http::verb verb, const std::string& target, const std::string& body = "",
                std::vector<std::pair<std::string, std::string>> headers = {}) {
    send(verb, target, body, headers);
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 26);
    http::read(socket_, buffer_, parser);
    Reply r;
    r.status = parser.get().result_int();
    r.headers = parser.get().base();
    r.body = parser.get().body();
    return r;
  }
  void send(http::verb verb, const std::string& target, const std::string& body,
            const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "localhost");
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    http::write(socket_, req);
  }
  // Reads a streamed response until `events` SSE events have arrived in all (all of it when
  // -1). Later calls continue the same response.
  Reply read_events(int events = -1) {
    if (!parser_) {
      parser_.emplace();
      parser_->body_limit(1 << 26);
    }
    Reply r;
    beast::error_code ec;
    while (!parser_->is_done()) {
      http::read_some(socket_, buffer_, *parser_, ec);
      if (ec) break;
      if (events >= 0 && count(parser_->get().body(), "\n\n") >= static_cast<size_t>(events)) {
        break;
      }
    }
    r.status = parser_->get().result_int();
    r.headers = parser_->get().base();
    r.body = parser_->get().body();
    if (parser_->is_done() || ec) parser_.reset();
    return r;
  }
  void close() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }
  tcp::socket& socket() { return socket_; }

  static size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
    return n;
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
};

// The JSON payloads of an SSE body, and whether it ended with [DONE].
std::vector<bj::value> events_of(const std::string& body, bool* done) {
  std::vector<bj::value> out;
  *done = false;
  size_t start = 0;
  while (true) {
    size_t end = body.find("\n\n", start);
    if (end == std::string::npos) break;
    std::string event = body.substr(start, end - start);
    start = end + 2;
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    std::string data = event.substr(6);
    if (data == "[DONE]") {
      *done = true;
      continue;
    }
    out.push_back(bj::parse(data));
  }
  return out;
}

std::string completion(std::vector<int> prompt, int max_tokens, bool stream,
                       const std::string& extra = "") {
  std::string ids;
  for (int id : prompt) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  return fmt::format(
      R"({{"prompt": [{}], "max_tokens": {}, "temperature": 0, "ignore_eos": true,
          "stream": {}, "return_token_ids": true{}}})",
      ids, max_tokens, stream ? "true" : "false", extra);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void start(EngineConfig ecfg = {}, ServerConfig scfg = {}, bool publish = true) {
    auto runner = std::make_unique<HashModelRunner>(kVocab, 4096);
    runner_ = runner.get();
    runner_->before_forward = [this](const ForwardBatch&) {
      int ms = step_delay_ms_.load();
      if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      return ok_status();
    };
    EngineParts parts;
    ecfg.model = "hash-model";
    parts.config = ecfg;
    parts.runner = std::move(runner);
    auto e = EngineFactory::create(std::move(parts));
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(*e);
    scfg.host = "127.0.0.1";
    scfg.port = 0;
    scfg.handle_signals = false;
    scfg.num_threads = 2;
    if (scfg.served_model_names.empty()) scfg.served_model_names = {"hash"};
    server_ = std::make_unique<HttpServer>(scfg);
    ASSERT_TRUE(server_->start().ok());
    if (publish) server_->set_engine(engine_);
  }
  void TearDown() override {
    if (server_) {
      server_->request_shutdown();
      server_->wait();
    }
  }
  uint16_t port() const { return server_->port(); }
  Reply get(const std::string& target) { return Client(port()).request(http::verb::get, target); }
  Reply post(const std::string& target, const std::string& body) {
    return Client(port()).request(http::verb::post, target, body);
  }
  // Waits for the engine to have nothing running, waiting or holding KV blocks.
  bool engine_idle(std::chrono::seconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      EngineStats s = engine_->stats();
      if (s.num_running == 0 && s.num_waiting == 0 && s.num_kv_blocks_used == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  std::shared_ptr<Engine> engine_;
  HashModelRunner* runner_ = nullptr;
  std::atomic<int> step_delay_ms_{0};
  std::unique_ptr<HttpServer> server_;
};

void expect_error(const Reply& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  bj::value v = bj::parse(r.body);
  const bj::object& e = v.at("error").as_object();
  EXPECT_EQ(e.size(), 4u);
  EXPECT_TRUE(e.at("message").is_string());
  if (!code.empty()) {
    EXPECT_EQ(e.at("code"), bj::value(code)) << r.body;
  }
}

TEST_F(HttpServerTest, HealthIs503UntilTheModelIsPublished) {
  start({}, {}, /*publish=*/false);
  expect_error(get("/health"), 503, "service_unavailable");
  expect_error(post("/v1/completions", completion({1, 2}, 2, false)), 503, "service_unavailable");
  EXPECT_EQ(get("/version").status, 200);
  EXPECT_EQ(get("/metrics").status, 200);
  server_->set_engine(engine_);
  EXPECT_EQ(get("/health").status, 200);
}

TEST_F(HttpServerTest, RoutingErrors) {
  start();
  expect_error(get("/nope"), 404, "not_found");
  Reply r = get("/v1/completions");
  expect_error(r, 405, "method_not_allowed");
  EXPECT_EQ(r.headers[http::field::allow], "POST, OPTIONS");
  expect_error(post("/v1/completions", "{bad json"), 400, "invalid_json");
  expect_error(post("/v1/completions", R"({"prompt": [1], "model": "x"})"), 404, "model_not_found");
  expect_error(post("/v1/completions", R"({"prompt": [1, 64]})"), 400, "invalid_value");
  expect_error(post("/v1/completions", R"({"prompt": [1], "bogus": 1})"), 400, "unknown_parameter");
  // Text needs a tokenizer this engine lacks: a clear error, not a crash.
  Reply text = post("/v1/completions", R"({"prompt": "hello"})");
  EXPECT_EQ(text.status, 400) << text.body;
  EXPECT_EQ(get("/health").status, 200);
}

TEST_F(HttpServerTest, WholeCompletionMatchesTheEngine) {
  start();
  Reply r = post("/v1/completions", completion({3, 4, 5}, 10, false));
  ASSERT_EQ(r.status, 200) << r.body;
  bj::value v = r.json();
  EXPECT_EQ(v.at("object"), "text_completion");
  EXPECT_EQ(v.at("model"), "hash");
  EXPECT_EQ(v.at("id").as_string().subview().substr(0, 5), "cmpl-");
  const bj::object& choice = v.at("choices").at(0).as_object();
  EXPECT_EQ(choice.at("finish_reason"), "length");
  EXPECT_EQ(choice.at("prompt_token_ids"), (bj::array{3, 4, 5}));
  const bj::array& ids = choice.at("token_ids").as_array();
  EXPECT_EQ(ids.size(), 10u);
  EXPECT_EQ(v.at("usage").at("prompt_tokens"), 3);
  EXPECT_EQ(v.at("usage").at("completion_tokens"), 10);
  EXPECT_EQ(v.at("usage").at("total_tokens"), 13);

  // The same request straight through the engine API gives the same tokens.
  GenerateRequest g;
  g.prompt = std::vector<int32_t>{3, 4, 5};
  g.params.temperature = 0;
  g.params.max_tokens = 10;
  g.params.ignore_eos = true;
  auto stream = engine_->add_request(std::move(g));
  ASSERT_TRUE(stream.ok());
  bj::array direct;
  while (auto out = (*stream)->next()) {
    for (const ChoiceDelta& d : out->choices) {
      for (int32_t t : d.token_ids) direct.emplace_back(t);
    }
  }
  EXPECT_EQ(ids, direct);
}

TEST_F(HttpServerTest, StreamedCompletion) {
  start();
  Client c(port());
  c.send(http::verb::post, "/v1/completions",
         completion({7, 8}, 12, true, R"(, "n": 2, "stream_options": {"include_usage": true})"));
  Reply r = c.read_events();
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers[http::field::content_type], "text/event-stream; charset=utf-8");
  bool done = false;
  std::vector<bj::value> events = events_of(r.body, &done);
  EXPECT_TRUE(done);
  ASSERT_GE(events.size(), 3u);
  size_t tokens[2] = {0, 0};
  int finished = 0;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i].at("object"), "text_completion");
    EXPECT_TRUE(events[i].at("usage").is_null());
    for (const bj::value& ch : events[i].at("choices").as_array()) {
      int64_t index = ch.at("index").as_int64();
      ASSERT_TRUE(index == 0 || index == 1);
      tokens[index] += ch.at("token_ids").as_array().size();
      if (!ch.at("finish_reason").is_null()) {
        EXPECT_EQ(ch.at("finish_reason"), "length");
        ++finished;
      }
    }
  }
  EXPECT_EQ(tokens[0], 12u);
  EXPECT_EQ(tokens[1], 12u);
  EXPECT_EQ(finished, 2);
  const bj::value& last = events.back();
  EXPECT_TRUE(last.at("choices").as_array().empty());
  EXPECT_EQ(last.at("usage").at("completion_tokens"), 24);
  // The connection stays usable (keep-alive).
  Reply again = c.request(http::verb::get, "/health");
  EXPECT_EQ(again.status, 200);
}

// Many generations in a row on one keep-alive connection, as the openai client sends them. The
// disconnect watch once did a blocking peek after a spurious readiness of the socket, which
// stalled the connection's strand (and the answer) until the client sent more bytes.
TEST_F(HttpServerTest, KeepAliveConnectionNeverStalls) {
  start();
  auto run = std::async(std::launch::async, [this] {
    Client c(port());
    // The stall needed an unlucky interleaving of Asio threads: one in a few hundred requests.
    for (int i = 0; i < 2000; ++i) {
      const bool stream = i % 2 == 1;
      c.send(http::verb::post, "/v1/completions", completion({1, 2, i % 50}, 8, stream));
      Reply r = c.read_events();
      EXPECT_EQ(r.status, 200) << "request " << i;
      if (stream) {
        EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos) << "request " << i;
      } else {
        EXPECT_EQ(r.json().at("usage").at("completion_tokens"), 8) << "request " << i;
      }
    }
  });
  ASSERT_EQ(run.wait_for(std::chrono::seconds(60)), std::future_status::ready)
      << "a request on a keep-alive connection stalled";
  run.get();
}

TEST_F(HttpServerTest, StreamingDisconnectAbortsTheRequest) {
  start();
  step_delay_ms_ = 5;  // a long generation: ~2000 steps would take 10 s
  EngineStats before = engine_->stats();
  {
    Client c(port());
    c.send(http::verb::post, "/v1/completions", completion({1, 2, 3}, 2000, true));
    Reply r = c.read_events(2);
    EXPECT_EQ(r.status, 200);
    c.close();
  }
  EXPECT_TRUE(engine_idle()) << "the request kept running after its client left";
  EngineStats after = engine_->stats();
  EXPECT_EQ(after.requests_aborted_total - before.requests_aborted_total, 1);
  EXPECT_LT(after.generation_tokens_total - before.generation_tokens_total, 1000);
}

TEST_F(HttpServerTest, NonStreamingDisconnectAbortsTheRequest) {
  start();
  step_delay_ms_ = 5;
  EngineStats before = engine_->stats();
  {
    Client c(port());
    c.send(http::verb::post, "/v1/completions", completion({1, 2, 3}, 2000, false));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (engine_->stats().num_running == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    c.close();
  }
  EXPECT_TRUE(engine_idle());
  EXPECT_EQ(engine_->stats().requests_aborted_total - before.requests_aborted_total, 1);
  std::string metrics = get("/metrics").body;
  EXPECT_NE(metrics.find("kite:http_requests_total{code=\"499\",handler=\"/v1/completions\"} 1"),
            std::string::npos)
      << metrics;
}

TEST_F(HttpServerTest, OverloadIs503) {
  EngineConfig ecfg;
  ecfg.max_num_seqs = 1;
  ecfg.max_waiting_requests = 1;
  start(ecfg);
  step_delay_ms_ = 2;
  // One runs, one waits; the third is refused at once.
  Client a(port()), b(port());
  a.send(http::verb::post, "/v1/completions", completion({1}, 300, true));
  a.read_events(1);
  b.send(http::verb::post, "/v1/completions", completion({2}, 300, true));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (engine_->stats().num_waiting < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  Reply r = post("/v1/completions", completion({3}, 5, false));
  expect_error(r, 503, "service_unavailable");
  EXPECT_NE(r.body.find("waiting"), std::string::npos) << r.body;
  step_delay_ms_ = 0;
  bool done = false;
  events_of(a.read_events().body, &done);
  EXPECT_TRUE(done);
  events_of(b.read_events().body, &done);
  EXPECT_TRUE(done);
}

TEST_F(HttpServerTest, BodyAndHeaderLimits) {
  ServerConfig scfg;
  scfg.max_body_bytes = 1024;
  start({}, scfg);
  std::string big = R"({"prompt": [1], "user": ")" + std::string(4000, 'x') + "\"}";
  Reply r = post("/v1/completions", big);
  expect_error(r, 413, "request_too_large");
  Reply h = Client(port()).request(
      http::verb::get, "/health", "",
      {{"X-Big-1", std::string(40000, 'a')}, {"X-Big-2", std::string(40000, 'b')}});
  expect_error(h, 431, "");
  EXPECT_EQ(get("/health").status, 200);
}

TEST_F(HttpServerTest, ApiKeyAndCors) {
  ServerConfig scfg;
  scfg.api_key = "sk-1";
  scfg.allowed_origins = {"http://ok.example"};
  start({}, scfg);
  Client c(port());
  expect_error(c.request(http::verb::get, "/v1/models"), 401, "invalid_api_key");
  Reply ok = c.request(http::verb::get, "/v1/models", "",
                       {{"Authorization", "Bearer sk-1"}, {"Origin", "http://ok.example"}});
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.headers[http::field::access_control_allow_origin], "http://ok.example");
  EXPECT_EQ(ok.json().at("data").at(0).at("id"), "hash");
  // Anthropic's header carries the key too; /v1/messages answers in Anthropic's shape.
  EXPECT_EQ(c.request(http::verb::get, "/v1/models", "", {{"x-api-key", "sk-1"}}).status, 200);
  Reply denied = c.request(http::verb::post, "/v1/messages", "{}", {{"x-api-key", "sk-2"}});
  EXPECT_EQ(denied.status, 401);
  EXPECT_EQ(denied.json().at("type"), "error");
  EXPECT_EQ(denied.json().at("error").at("type"), "authentication_error");
  Reply pre =
      c.request(http::verb::options, "/v1/completions", "",
                {{"Origin", "http://ok.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.headers[http::field::access_control_allow_origin], "http://ok.example");
  EXPECT_EQ(c.request(http::verb::get, "/health").status, 200);  // open without the key
}

TEST_F(HttpServerTest, ShutdownLetsRunningStreamsFinish) {
  ServerConfig scfg;
  scfg.shutdown_timeout = std::chrono::milliseconds(30000);
  start({}, scfg);
  step_delay_ms_ = 2;
  Client c(port());
  c.send(http::verb::post, "/v1/completions", completion({4, 5}, 100, true));
  c.read_events(2);
  Client idle(port());  // an idle keep-alive connection must not hold the shutdown up
  server_->request_shutdown();
  Reply r = c.read_events();
  bool done = false;
  std::vector<bj::value> events = events_of(r.body, &done);
  EXPECT_TRUE(done);
  size_t tokens = 0;
  std::string last_finish;
  for (const auto& e : events) {
    for (const bj::value& ch : e.at("choices").as_array()) {
      tokens += ch.at("token_ids").as_array().size();
      if (!ch.at("finish_reason").is_null()) last_finish = ch.at("finish_reason").as_string();
    }
  }
  EXPECT_EQ(last_finish, "length");
  server_->wait();
  char byte;
  beast::error_code ec;
  idle.socket().read_some(asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec) << "the idle connection should have been closed";
  server_.reset();
}

TEST_F(HttpServerTest, ShutdownTimeoutAbortsWhatIsLeft) {
  ServerConfig scfg;
  scfg.shutdown_timeout = std::chrono::milliseconds(200);
  start({}, scfg);
  step_delay_ms_ = 5;
  Client c(port());
  c.send(http::verb::post, "/v1/completions", completion({4, 5}, 3000, true));
  c.read_events(2);
  auto t0 = std::chrono::steady_clock::now();
  server_->request_shutdown();
  Reply r = c.read_events();
  server_->wait();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  bool done = false;
  std::vector<bj::value> events = events_of(r.body, &done);
  EXPECT_TRUE(done);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().at("choices").at(0).at("finish_reason"), "abort");
  server_.reset();
}

}  // namespace
}  // namespace kite::server
