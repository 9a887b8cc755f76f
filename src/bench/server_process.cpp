#include "bench/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace kite::bench {

namespace {

// Binds 127.0.0.1:port (0: any), returns the bound port or -1 with errno set.
int try_bind(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

}  // namespace

Result<int> pick_free_port() {
  const char* range = std::getenv("KITE_BENCH_PORT_RANGE");
  if (range == nullptr || *range == '\0') {
    const int port = try_bind(0);
    if (port < 0) {
      return unavailable(fmt::format("cannot find a free port: {}", std::strerror(errno)));
    }
    return port;
  }
  int lo = 0, hi = 0;
  if (std::sscanf(range, "%d-%d", &lo, &hi) != 2 || lo < 1 || hi > 65535 || lo > hi) {
    return invalid_argument(
        fmt::format("KITE_BENCH_PORT_RANGE must be LO-HI within 1-65535, got '{}'", range));
  }
  // Start at a point that differs between processes, so that parallel tests rarely collide.
  const int n = hi - lo + 1;
  const int start = static_cast<int>(
      (static_cast<uint64_t>(::getpid()) * 7919u +
       static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())) %
      static_cast<uint64_t>(n));
  for (int i = 0; i < n; ++i) {
    const int port = lo + (start + i) % n;
    if (try_bind(port) == port) return port;
  }
  return unavailable(fmt::format("no free port in KITE_BENCH_PORT_RANGE {}", range));
}

std::string self_executable() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "kite";
  return std::string(buf, static_cast<size_t>(n));
}

ServerProcess::ServerProcess(pid_t pid, std::string log_path)
    : pid_(pid), log_path_(std::move(log_path)), started_(BenchClock::now()) {}

Result<std::unique_ptr<ServerProcess>> ServerProcess::spawn(const std::vector<std::string>& argv,
                                                            const std::string& log_path) {
  if (argv.empty()) return invalid_argument("no command to spawn");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::string out = log_path.empty() ? "/dev/null" : log_path;
  // Open the log before forking so that errors are reported here.
  int log_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0)
    return invalid_argument(fmt::format("cannot open {}: {}", out, std::strerror(errno)));
  // Exec failure is reported through a close-on-exec pipe.
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    ::close(log_fd);
    return unavailable(fmt::format("pipe: {}", std::strerror(errno)));
  }
  const auto started = BenchClock::now();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return unavailable(fmt::format("fork: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::execv(args[0], args.data());
    const int err = errno;
    [[maybe_unused]] ssize_t w = ::write(pipe_fds[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(pipe_fds[1]);
  int err = 0;
  ssize_t n = ::read(pipe_fds[0], &err, sizeof err);
  ::close(pipe_fds[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    ::waitpid(pid, nullptr, 0);
    return invalid_argument(fmt::format("cannot run {}: {}", argv[0], std::strerror(err)));
  }
  auto p = std::unique_ptr<ServerProcess>(new ServerProcess(pid, log_path));
  p->started_ = started;
  return p;
}

ServerProcess::~ServerProcess() {
  if (!reaped_) stop(std::chrono::seconds(5));
}

bool ServerProcess::running() {
  if (reaped_) return false;
  int status = 0;
  rusage ru{};
  pid_t r = ::wait4(pid_, &status, WNOHANG, &ru);
  if (r == pid_) {
    reaped_ = true;
    exit_.exited = true;
    exit_.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    exit_.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    exit_.peak_rss_bytes = static_cast<int64_t>(ru.ru_maxrss) * 1024;
    return false;
  }
  return true;
}

namespace {

// VmHWM of /proc/<pid>/status in bytes, -1 when the process is gone.
int64_t process_peak_rss(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return -1;
}

// The parent of every process in /proc (field 4 of /proc/<pid>/stat, after the parenthesised
// command name, which may itself hold spaces and parentheses).
std::multimap<pid_t, pid_t> children_by_parent() {
  std::multimap<pid_t, pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    long ppid = 0;
    if (rest >> state >> ppid) out.emplace(static_cast<pid_t>(ppid), std::stoi(name));
  }
  return out;
}

}  // namespace

int64_t ServerProcess::peak_rss_bytes() const {
  // The server and its descendants: a `kite serve` of several ranks replaces itself with mpirun,
  // whose children are the ranks, so the footprint is the tree's (the sum of each process's
  // peak: an upper bound of the peak of the sum, equal to it when the peaks coincide, as at
  // the end of loading).
  const int64_t own = process_peak_rss(pid_);
  if (own < 0) return exit_.peak_rss_bytes;
  int64_t total = own;
  const std::multimap<pid_t, pid_t> kids = children_by_parent();
  std::vector<pid_t> todo{pid_};
  while (!todo.empty()) {
    const pid_t p = todo.back();
    todo.pop_back();
    for (auto [it, end] = kids.equal_range(p); it != end; ++it) {
      if (it->second != pid_) total += std::max<int64_t>(0, process_peak_rss(it->second));
      todo.push_back(it->second);
    }
  }
  return total;
}

Result<double> ServerProcess::wait_healthy(const HttpUrl& url, const std::string& target,
                                           std::chrono::milliseconds timeout) {
  const auto deadline = BenchClock::now() + timeout;
  while (true) {
    if (!running()) {
      return unavailable(
          fmt::format("the server exited (code {}, signal {}) before {} answered; "
                      "its log ends with:\n{}",
                      exit_.exit_code, exit_.signal, target, log_tail()));
    }
    HttpResponse r = http_request_sync(url, false, target, "", std::chrono::milliseconds(2000));
    if (r.ok()) return std::chrono::duration<double>(BenchClock::now() - started_).count();
    if (BenchClock::now() >= deadline) {
      return unavailable(
          fmt::format("the server did not answer GET {} within {} s; its log "
                      "ends with:\n{}",
                      target, timeout.count() / 1000.0, log_tail()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

ExitInfo ServerProcess::stop(std::chrono::milliseconds grace) {
  if (reaped_) return exit_;
  ::kill(pid_, SIGTERM);
  const auto deadline = BenchClock::now() + grace;
  while (running()) {
    if (BenchClock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      rusage ru{};
      if (::wait4(pid_, &status, 0, &ru) == pid_) {
        reaped_ = true;
        exit_.exited = true;
        exit_.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        exit_.peak_rss_bytes = static_cast<int64_t>(ru.ru_maxrss) * 1024;
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return exit_;
}

std::string ServerProcess::log_tail(size_t max_bytes) const {
  if (log_path_.empty()) return "(no log)";
  std::ifstream in(log_path_, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max_bytes ? s.substr(s.size() - max_bytes) : s;
}

}  // namespace kite::bench
