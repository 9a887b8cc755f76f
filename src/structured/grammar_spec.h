// GrammarSpec: what one request's output must match, in the form the grammar compiler takes.
// Built from kite::StructuredOutputs (include/kite/sampling_params.h); its canonical text is the
// compiled-grammar cache key, so two requests with the same schema share one compilation.
#pragma once

#include <string>
#include <vector>

#include "kite/sampling_params.h"
#include "kite/status.h"

namespace kite::structured {

// One tool-call format: the text around each call, so the grammar makes the model write calls
// the way its family's parser (src/frontend/tool_parsers) reads them. A call is
// `begin` + arguments (JSON, the tool's parameters schema) + `end`.
// Most calls one output may hold when parallel (the grammar unrolls them).
inline constexpr int kMaxParallelToolCalls = 4;

struct ToolCallGrammar {
  struct Call {
    std::string begin;       // e.g. "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
    std::string parameters;  // JSON schema text of the arguments
    std::string end;         // e.g. "}\n</tool_call>"
  };
  std::string prefix;       // before the first call (mistral: "[TOOL_CALLS][")
  std::string separator;    // between calls
  std::string suffix;       // after the last call
  bool parallel = true;     // one or more calls; false: exactly one
  std::vector<Call> calls;  // alternatives (one per tool); not empty
};

struct GrammarSpec {
  enum class Kind { kJsonSchema, kJsonObject, kRegex, kChoice, kEbnf, kToolCalls };
  Kind kind = Kind::kJsonObject;
  std::string text;                  // schema / regex / EBNF
  std::vector<std::string> choices;  // kChoice
  ToolCallGrammar tools;             // kToolCalls
  bool any_whitespace = true;        // JSON kinds

  // Canonical text: equal specs give equal keys.
  std::string cache_key() const;
  const char* kind_name() const;
};

// Reads the request's constraint. kInvalidArgument when a field is malformed (a schema that is
// not JSON, an internal spec that does not parse); semantic checks happen at compile time.
Result<GrammarSpec> grammar_spec_from(const StructuredOutputs& so);

// ToolCallGrammar <-> the JSON object StructuredOutputs::internal_spec carries:
// {"type":"tool_calls","prefix":..,"separator":..,"suffix":..,"parallel":..,
//  "calls":[{"begin":..,"parameters":{schema},"end":..}]}
std::string tool_call_grammar_to_json(const ToolCallGrammar& g);
Result<ToolCallGrammar> tool_call_grammar_from_json(const std::string& json);

}  // namespace kite::structured
