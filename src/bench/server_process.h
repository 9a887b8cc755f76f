// Starting and stopping a server process for a benchmark (`kite serve` for the W3 rate sweep
// and the W6 startup measurement): spawn with output to a log file, poll an HTTP health
// endpoint, stop with SIGTERM (then SIGKILL), and read its peak resident memory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "bench/http_client.h"
#include "kite/status.h"

namespace kite::bench {

// A TCP port on 127.0.0.1 that was free a moment ago (bound, read, closed): one within
// $KITE_BENCH_PORT_RANGE ("LO-HI", e.g. 20000-20999; for machines that reserve port ranges)
// when that is set, else any ephemeral port.
Result<int> pick_free_port();

// The running kite binary (/proc/self/exe).
std::string self_executable();

struct ExitInfo {
  bool exited = false;         // false: it did not end even after SIGKILL (should not happen)
  int exit_code = -1;          // when it exited normally
  int signal = 0;              // when a signal ended it
  int64_t peak_rss_bytes = 0;  // getrusage of the child (ru_maxrss)
};

class ServerProcess {
 public:
  // Spawns argv[0] with argv (stdout and stderr appended to `log_path`, "" = /dev/null).
  static Result<std::unique_ptr<ServerProcess>> spawn(const std::vector<std::string>& argv,
                                                      const std::string& log_path);
  ~ServerProcess();  // stop() if still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  pid_t pid() const { return pid_; }
  BenchClock::time_point started() const { return started_; }
  bool running();
  // Peak resident set so far of the server and its descendants (the sum of VmHWM of
  // /proc/<pid>/status over the tree: mpirun and its ranks for a server of several ranks),
  // bytes; after exit, the child's own ru_maxrss; 0 if unknown.
  int64_t peak_rss_bytes() const;

  // Polls GET `target` every 50 ms until a 2xx answer (returns the time since spawn, seconds),
  // the process exits (kUnavailable, with the log's tail), or `timeout` passes.
  Result<double> wait_healthy(const HttpUrl& url, const std::string& target,
                              std::chrono::milliseconds timeout);

  // SIGTERM, wait up to `grace`, then SIGKILL.
  ExitInfo stop(std::chrono::milliseconds grace = std::chrono::seconds(20));

  // The last `max_bytes` of the log file.
  std::string log_tail(size_t max_bytes = 2000) const;

 private:
  ServerProcess(pid_t pid, std::string log_path);
  pid_t pid_;
  std::string log_path_;
  BenchClock::time_point started_;
  bool reaped_ = false;
  ExitInfo exit_;
};

}  // namespace kite::bench
