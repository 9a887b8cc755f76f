// Internal: what a CompiledGrammar holds (only src/structured includes xgrammar).
#pragma once

#include <xgrammar/xgrammar.h>

#include <cstdint>
#include <string>
#include <utility>

#include "structured/grammar_compiler.h"

namespace kite::structured {

struct CompiledGrammar::Impl {
  explicit Impl(xgrammar::CompiledGrammar g) : grammar(std::move(g)) {}
  xgrammar::CompiledGrammar grammar;
  int64_t memory_bytes = 0;
  int64_t vocab_size = 0;
  std::string kind;
};

}  // namespace kite::structured
