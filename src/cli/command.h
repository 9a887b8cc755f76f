// Subcommands of the `kite` binary. Each cmd_*.cpp registers itself with KITE_REGISTER_COMMAND;
// main.cpp builds the CLI11 app from the registry.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace kite::cli {

struct Command {
  std::string name;
  std::string description;
  // Adds options to `sub`; returns the function that runs the command (exit code). The options
  // must bind to state the returned function owns (capture a shared_ptr).
  std::function<std::function<int()>(CLI::App& sub)> setup;
};

std::vector<Command>& command_registry();

// The arguments after the first standalone "--" on the command line (kite bench startup and
// sweep pass them to the `kite serve` they launch). main.cpp takes them off before CLI11 parses
// the rest: CLI11 2.1 mis-parses "--opt VALUE -- --flags" when --opt is repeatable.
std::vector<std::string>& passthrough_args();

struct CommandRegistrar {
  explicit CommandRegistrar(Command c) { command_registry().push_back(std::move(c)); }
};

}  // namespace kite::cli

#define KITE_REGISTER_COMMAND(var, ...) \
  static const ::kite::cli::CommandRegistrar kite_cmd_##var{::kite::cli::Command{__VA_ARGS__}}
