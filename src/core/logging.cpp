#include "core/logging.h"

#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

namespace kite {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};
// Fields of the event being logged by this thread (log_event -> the JSON formatter, which
// spdlog's synchronous logger runs on the logging thread).
thread_local std::string t_fields;

void append_json_string(std::string_view s, spdlog::memory_buf_t& out) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(us / 1000000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    fmt::format_to(std::back_inserter(dest),
                   "{{\"time\":\"{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:06d}Z\",\"level\":\"",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   static_cast<int>(us % 1000000));
    const auto level = spdlog::level::to_string_view(msg.level);
    dest.append(level.data(), level.data() + level.size());
    dest.append(std::string_view("\",\"message\":"));
    append_json_string(std::string_view(msg.payload.data(), msg.payload.size()), dest);
    dest.append(std::string_view(t_fields));
    fmt::format_to(std::back_inserter(dest), ",\"thread\":{}}}\n", msg.thread_id);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

void init_logging(std::string_view level, std::string_view format) {
  static std::once_flag once;
  std::call_once(once, [] {
    auto logger = spdlog::stderr_color_mt("kite");
    spdlog::set_default_logger(logger);
  });
  std::string lvl(level);
  if (lvl.empty()) {
    const char* env = std::getenv("KITE_LOG_LEVEL");
    lvl = env ? env : "info";
  }
  spdlog::set_level(spdlog::level::from_str(lvl));
  std::string fmt_name(format);
  if (fmt_name.empty()) {
    const char* env = std::getenv("KITE_LOG_FORMAT");
    fmt_name = env ? env : "text";
  }
  if (fmt_name == "json") {
    g_format = LogFormat::kJson;
    spdlog::default_logger()->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    g_format = LogFormat::kText;
    spdlog::default_logger()->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
  }
}

LogFormat log_format() { return g_format.load(); }

LogField log_field(std::string_view key, std::string_view value) {
  return LogField{key, std::string(value), true};
}
LogField log_field(std::string_view key, int64_t value) {
  return LogField{key, std::to_string(value), false};
}
LogField log_field(std::string_view key, double value) {
  return LogField{key, fmt::format("{:.6g}", value), false};
}

void log_event(spdlog::level::level_enum level, std::string_view message,
               std::initializer_list<LogField> fields) {
  if (!spdlog::should_log(level)) return;
  if (g_format.load() == LogFormat::kJson) {
    spdlog::memory_buf_t buf;
    for (const LogField& f : fields) {
      buf.push_back(',');
      append_json_string(f.key, buf);
      buf.push_back(':');
      if (f.quoted) {
        append_json_string(f.value, buf);
      } else {
        buf.append(f.value.data(), f.value.data() + f.value.size());
      }
    }
    t_fields.assign(buf.data(), buf.size());
    spdlog::log(level, "{}", message);
    t_fields.clear();
    return;
  }
  std::string text(message);
  for (const LogField& f : fields) {
    text += fmt::format(" {}={}", f.key, f.value);
  }
  spdlog::log(level, "{}", text);
}

}  // namespace kite
