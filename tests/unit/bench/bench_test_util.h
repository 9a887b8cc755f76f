// Helpers for the bench tests: temporary directories, running a command (the venv's Python
// oracles, the kite binary) and exact hex-float exchange with Python.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace kite::bench::testing {

// Servers that the tests start (through pick_free_port, also in child kite processes) listen on
// ports 20000-20999, a range kept for tests on shared machines.
inline constexpr int kTestPortLo = 20000;
inline constexpr int kTestPortHi = 20999;
inline const bool kTestPortRangeSet =
    ::setenv("KITE_BENCH_PORT_RANGE", "20000-20999", /*overwrite=*/0) == 0;

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base ? base : "/tmp") + "/kite-bench-test-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `command` through /bin/sh, capturing stdout+stderr.
inline CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string python_executable() { return KITE_PYTHON_EXECUTABLE; }
inline bool python_available() { return ::access(KITE_PYTHON_EXECUTABLE, X_OK) == 0; }

inline std::string source_path(const std::string& rel) {
  return std::string(KITE_SOURCE_DIR) + "/" + rel;
}

// Exact double <-> text exchange: C's %a hex floats, which Python reads with float.fromhex.
inline std::string hex_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}
inline double parse_hex_double(const std::string& s) { return std::strtod(s.c_str(), nullptr); }

}  // namespace kite::bench::testing
