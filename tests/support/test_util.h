// Helpers shared by kite's C++ tests: temporary directories, files, and running the Python
// oracles of the pinned venv (KITE_PYTHON_EXECUTABLE).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace kite::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = base ? base : "/tmp";
    tmpl += "/kite-test-XXXXXX";
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
  std::string operator/(const std::string& name) const {
    std::string p = path_;
    p += '/';
    p += name;
    return p;
  }

 private:
  std::string path_;
};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  const std::string s = read_text(path);
  return std::vector<uint8_t>(s.begin(), s.end());
}

inline void write_bytes(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
}
inline void write_text(const std::string& path, const std::string& text) {
  write_bytes(path, text.data(), text.size());
}

// "1,2,3".
inline std::string join_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(ids[i]);
  }
  return s;
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

#ifdef KITE_PYTHON_EXECUTABLE
inline bool have_python() { return ::access(KITE_PYTHON_EXECUTABLE, X_OK) == 0; }

// Runs `python script args...` (single-threaded numpy); returns the exit status and appends
// stdout+stderr to *output.
inline int run_python(const std::string& script, const std::vector<std::string>& args,
                      std::string* output = nullptr) {
  // Appends rather than operator+ chains: GCC 12 warns falsely (-Wrestrict) on the latter.
  std::string cmd = "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 ";
  cmd += shell_quote(KITE_PYTHON_EXECUTABLE);
  cmd += ' ';
  cmd += shell_quote(script);
  for (const std::string& a : args) {
    cmd += ' ';
    cmd += shell_quote(a);
  }
  cmd += " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  std::string out;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  if (output) *output += out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
#endif

}  // namespace kite::testing
