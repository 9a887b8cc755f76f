#include "core/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>
#include <mutex>
#include <string>

namespace kite {

void init_logging(std::string_view level) {
  static std::once_flag once;
  std::call_once(once, [] {
    auto logger = spdlog::stderr_color_mt("kite");
    logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
    spdlog::set_default_logger(logger);
  });
  std::string lvl(level);
  if (lvl.empty()) {
    const char* env = std::getenv("KITE_LOG_LEVEL");
    lvl = env ? env : "info";
  }
  spdlog::set_level(spdlog::level::from_str(lvl));
}

}  // namespace kite
