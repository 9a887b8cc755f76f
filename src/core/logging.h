// Logging through spdlog. Use the KITE_LOG_* macros (fmt syntax); the level comes from
// --log-level or KITE_LOG_LEVEL (trace, debug, info, warn, error, off), the format from
// --log-format or KITE_LOG_FORMAT:
//   text: [2025-01-01 12:00:00.123] [info] message key=value ...
//   json: one object per line, {"time": "2025-01-01T12:00:00.123456Z", "level": "info",
//         "message": "...", <fields>} (fields: request_id, ... from log_event).
#pragma once

#include <spdlog/spdlog.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace kite {

enum class LogFormat { kText, kJson };

// Sets up the default logger (stderr). Safe to call more than once; the last format wins.
void init_logging(std::string_view level = {}, std::string_view format = {});
LogFormat log_format();

// A structured field of a log event: a JSON string, or a number / bool written as is.
struct LogField {
  std::string_view key;
  std::string value;
  bool quoted = true;
};
LogField log_field(std::string_view key, std::string_view value);
LogField log_field(std::string_view key, int64_t value);
LogField log_field(std::string_view key, double value);

// One event with fields: in JSON they are keys of the line's object; in text they follow the
// message as key=value.
void log_event(spdlog::level::level_enum level, std::string_view message,
               std::initializer_list<LogField> fields);

}  // namespace kite

#define KITE_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define KITE_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define KITE_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define KITE_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define KITE_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
