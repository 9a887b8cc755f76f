// kite: the command-line entry point. Subcommands live in cmd_*.cpp (see command.h).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/logging.h"
#include "core/version.h"

namespace kite::cli {

std::vector<std::string>& passthrough_args() {
  static std::vector<std::string> args;
  return args;
}

std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

}  // namespace kite::cli

int main(int argc, char** argv) {
  // Never NVLink multicast, in this process (NCCL) and every process it starts (mpirun's ranks,
  // `kite bench`'s servers): it can put a host's shared GPUs out of service.
  setenv("NCCL_NVLS_ENABLE", "0", 0);
  CLI::App app{"kite: LLM inference and serving engine"};
  app.set_version_flag("--version", std::string("kite ") + KITE_VERSION_STRING + " (" +
                                        KITE_GIT_COMMIT + ")");
  std::string log_level;
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off (or KITE_LOG_LEVEL)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  std::string log_format;
  app.add_option("--log-format", log_format,
                 "text|json: json writes one object per line with request ids (or "
                 "KITE_LOG_FORMAT)")
      ->check(CLI::IsMember({"text", "json"}));
  app.require_subcommand(1);
  app.fallthrough();  // `kite serve MODEL --log-format json` reaches the global options

  auto& commands = kite::cli::command_registry();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
  for (auto& cmd : commands) {
    CLI::App* sub = app.add_subcommand(cmd.name, cmd.description);
    runners.emplace_back(sub, cmd.setup(*sub));
  }
  // Everything after the first "--" goes to the command untouched (see passthrough_args()).
  std::vector<std::string> head;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--") {
      kite::cli::passthrough_args().assign(argv + i + 1, argv + argc);
      break;
    }
    head.emplace_back(argv[i]);
  }
  std::reverse(head.begin(), head.end());  // CLI11 takes the arguments in reverse order
  try {
    app.parse(head);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  kite::init_logging(log_level, log_format);
  for (auto& [sub, run] : runners) {
    if (sub->parsed()) {
      if (!kite::cli::passthrough_args().empty() && sub->get_name() != "bench") {
        std::fprintf(stderr, "kite %s: error: arguments after \"--\" are only taken by "
                     "`kite bench startup` and `kite bench sweep serve --launch`\n",
                     sub->get_name().c_str());
        return 2;
      }
      try {
        return run();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "kite %s: error: %s\n", sub->get_name().c_str(), e.what());
        return 1;
      }
    }
  }
  return 2;
}
