#include "bench/environment.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>

namespace kite::bench {

namespace bj = boost::json;

namespace {

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n\"");
  size_t e = s.find_last_not_of(" \t\r\n\"");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// The value of the first "key<sep>value" line of a text file, or "".
std::string file_field(const char* path, std::string_view key, char sep) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    size_t pos = line.find(sep);
    if (pos == std::string::npos) continue;
    if (trim(line.substr(0, pos)) != key) continue;
    return trim(line.substr(pos + 1));
  }
  return {};
}

bool on_path(const std::string& exe) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (!dir.empty() && ::access((dir + "/" + exe).c_str(), X_OK) == 0) return true;
  }
  return false;
}

}  // namespace

std::vector<GpuInfo> query_gpus() {
  std::vector<GpuInfo> gpus;
  if (!on_path("nvidia-smi")) return gpus;
  FILE* pipe = ::popen(
      "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits "
      "2>/dev/null",
      "r");
  if (pipe == nullptr) return gpus;
  std::string out;
  char buf[1024];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  if (::pclose(pipe) != 0) return {};
  std::stringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::stringstream fields(line);
    std::string name, mem, driver;
    if (!std::getline(fields, name, ',') || !std::getline(fields, mem, ',')) continue;
    std::getline(fields, driver, ',');
    GpuInfo g;
    g.name = trim(name);
    g.memory_bytes = std::atoll(trim(mem).c_str()) * 1024 * 1024;  // MiB
    g.driver_version = trim(driver);
    gpus.push_back(std::move(g));
  }
  return gpus;
}

bj::object environment_json() {
  bj::object env;
  struct utsname u {};
  if (::uname(&u) == 0) {
    env["kernel"] = std::string(u.sysname) + " " + u.release;
    env["arch"] = u.machine;
  }
  std::string os = file_field("/etc/os-release", "PRETTY_NAME", '=');
  if (!os.empty()) env["os"] = os;
  std::string cpu = file_field("/proc/cpuinfo", "model name", ':');
  if (!cpu.empty()) env["cpu"] = cpu;
  env["num_cpus"] = static_cast<int64_t>(::sysconf(_SC_NPROCESSORS_ONLN));
  std::string mem = file_field("/proc/meminfo", "MemTotal", ':');  // "123456 kB"
  if (!mem.empty()) env["memory_bytes"] = std::atoll(mem.c_str()) * 1024;
  bj::array gpus;
  for (const GpuInfo& g : query_gpus()) {
    bj::object o;
    o["name"] = g.name;
    o["memory_bytes"] = g.memory_bytes;
    o["driver_version"] = g.driver_version;
    gpus.push_back(std::move(o));
  }
  env["gpus"] = std::move(gpus);
  return env;
}

int64_t peak_rss_bytes() {
  std::string hwm = file_field("/proc/self/status", "VmHWM", ':');  // "1234 kB"
  return hwm.empty() ? 0 : std::atoll(hwm.c_str()) * 1024;
}

}  // namespace kite::bench
