// Spawning and stopping a server process, health polling, and the W6 startup measurement, on a
// small Python server (tests/unit/bench/fake_server.py) standing in for `kite serve`.
#include <gtest/gtest.h>

#include "bench/server_process.h"
#include "bench/startup_bench.h"
#include "bench_test_util.h"

namespace kite::bench {
namespace {

TEST(ServerProcess, MissingBinaryIsAnError) {
  Result<std::unique_ptr<ServerProcess>> p = ServerProcess::spawn({"/nonexistent/kite"}, "");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("/nonexistent/kite"), std::string::npos);
  EXPECT_FALSE(ServerProcess::spawn({}, "").ok());
}

TEST(ServerProcess, ExitBeforeHealthyReportsTheLog) {
  testing::TempDir dir;
  Result<std::unique_ptr<ServerProcess>> p =
      ServerProcess::spawn({"/bin/sh", "-c", "echo boom-from-server; exit 3"}, dir / "log.txt");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  Result<int> port = pick_free_port();
  ASSERT_TRUE(port.ok());
  Result<double> r = (*p)->wait_healthy({"127.0.0.1", std::to_string(*port), ""}, "/health",
                                        std::chrono::seconds(30));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("boom-from-server"), std::string::npos)
      << r.status().to_string();
  EXPECT_NE(r.status().message().find("code 3"), std::string::npos) << r.status().to_string();
}

TEST(ServerProcess, StopEndsALongRunningProcess) {
  Result<std::unique_ptr<ServerProcess>> p = ServerProcess::spawn({"/bin/sleep", "60"}, "");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE((*p)->running());
  ExitInfo e = (*p)->stop(std::chrono::seconds(10));
  EXPECT_TRUE(e.exited);
  EXPECT_EQ(e.signal, SIGTERM);
  EXPECT_FALSE((*p)->running());
}

TEST(Startup, MeasuresAServerProcessEndToEnd) {
  if (!testing::python_available()) GTEST_SKIP() << "no Python venv at " KITE_PYTHON_EXECUTABLE;
  testing::TempDir dir;
  StartupOptions o;
  o.argv = {testing::python_executable(), testing::source_path("tests/unit/bench/fake_server.py"),
            "{PORT}", "0.2"};  // listens after 0.2 s
  o.model_name = "m";
  o.max_tokens = 4;
  o.timeout_s = 60;
  o.log_path = dir / "server.log";
  Result<StartupResult> r = run_startup_benchmark(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string() << testing::read_text(dir / "server.log");
  EXPECT_GE(r->time_to_health_s, 0.2);  // the server sleeps 0.2 s before listening
  EXPECT_GE(r->time_to_first_token_s, r->time_to_health_s);
  EXPECT_GT(r->first_request_ttft_ms, 0.0);
  EXPECT_GT(r->binary_size_bytes, 0);
  EXPECT_GT(r->peak_rss_bytes, 1 << 20);  // a Python interpreter
  EXPECT_GT(r->port, 0);
}

TEST(Startup, ServerThatNeverAnswersTimesOut) {
  testing::TempDir dir;
  StartupOptions o;
  o.argv = {"/bin/sleep", "30"};
  o.timeout_s = 0.5;
  Result<StartupResult> r = run_startup_benchmark(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("did not answer"), std::string::npos)
      << r.status().to_string();
}

TEST(Startup, KiteServeCommandLine) {
  std::vector<std::string> argv = kite_serve_command("/bin/kite", "m", {"--dtype", "bfloat16"}, "n");
  EXPECT_EQ(argv, (std::vector<std::string>{"/bin/kite", "serve", "m", "--host", "127.0.0.1",
                                            "--port", "{PORT}", "--served-model-name", "n",
                                            "--dtype", "bfloat16"}));
}

}  // namespace
}  // namespace kite::bench
