// Logging through spdlog. Use the KITE_LOG_* macros (fmt syntax); the level comes from
// --log-level or KITE_LOG_LEVEL (trace, debug, info, warn, error, off).
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace kite {

// Sets up the default logger (stderr, "[time] [level] message"). Safe to call more than once.
void init_logging(std::string_view level = {});

}  // namespace kite

#define KITE_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define KITE_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define KITE_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define KITE_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define KITE_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
