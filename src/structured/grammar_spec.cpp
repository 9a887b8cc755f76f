#include "structured/grammar_spec.h"

#include <boost/json.hpp>
#include <utility>

#include "core/json_util.h"

namespace kite::structured {

namespace bj = boost::json;

const char* GrammarSpec::kind_name() const {
  switch (kind) {
    case Kind::kJsonSchema:
      return "json";
    case Kind::kJsonObject:
      return "json_object";
    case Kind::kRegex:
      return "regex";
    case Kind::kChoice:
      return "choice";
    case Kind::kEbnf:
      return "grammar";
    case Kind::kToolCalls:
      return "tool_calls";
  }
  return "?";
}

std::string GrammarSpec::cache_key() const {
  bj::object o;
  o["kind"] = kind_name();
  o["ws"] = any_whitespace;
  switch (kind) {
    case Kind::kChoice: {
      bj::array a;
      for (const std::string& c : choices) a.emplace_back(c);
      o["choices"] = std::move(a);
      break;
    }
    case Kind::kToolCalls:
      o["tools"] = tool_call_grammar_to_json(tools);
      break;
    default:
      o["text"] = text;
      break;
  }
  return bj::serialize(o);
}

std::string tool_call_grammar_to_json(const ToolCallGrammar& g) {
  bj::object o;
  o["type"] = "tool_calls";
  o["prefix"] = g.prefix;
  o["separator"] = g.separator;
  o["suffix"] = g.suffix;
  o["parallel"] = g.parallel;
  bj::array calls;
  for (const ToolCallGrammar::Call& c : g.calls) {
    bj::object call;
    call["begin"] = c.begin;
    call["parameters"] = c.parameters;
    call["end"] = c.end;
    calls.emplace_back(std::move(call));
  }
  o["calls"] = std::move(calls);
  return bj::serialize(o);
}

Result<ToolCallGrammar> tool_call_grammar_from_json(const std::string& text) {
  KITE_ASSIGN_OR_RETURN(bj::value v, json::parse(text, "tool-call grammar"));
  const bj::object* o = v.if_object();
  if (o == nullptr) return invalid_argument("tool-call grammar: expected an object");
  ToolCallGrammar g;
  KITE_ASSIGN_OR_RETURN(auto prefix, json::get_string(*o, "prefix"));
  KITE_ASSIGN_OR_RETURN(auto sep, json::get_string(*o, "separator"));
  KITE_ASSIGN_OR_RETURN(auto suffix, json::get_string(*o, "suffix"));
  KITE_ASSIGN_OR_RETURN(auto parallel, json::get_bool(*o, "parallel"));
  g.prefix = prefix.value_or("");
  g.separator = sep.value_or("");
  g.suffix = suffix.value_or("");
  g.parallel = parallel.value_or(true);
  const bj::value* calls = o->if_contains("calls");
  if (calls == nullptr || !calls->is_array() || calls->as_array().empty()) {
    return invalid_argument("tool-call grammar: 'calls' must be a non-empty array");
  }
  for (const bj::value& c : calls->as_array()) {
    if (!c.is_object()) return invalid_argument("tool-call grammar: a call must be an object");
    ToolCallGrammar::Call call;
    KITE_ASSIGN_OR_RETURN(auto begin, json::get_string(c.as_object(), "begin"));
    KITE_ASSIGN_OR_RETURN(auto params, json::get_string(c.as_object(), "parameters"));
    KITE_ASSIGN_OR_RETURN(auto end, json::get_string(c.as_object(), "end"));
    if (!begin || !params || !end) {
      return invalid_argument("tool-call grammar: a call needs begin, parameters and end");
    }
    call.begin = std::move(*begin);
    call.parameters = std::move(*params);
    call.end = std::move(*end);
    g.calls.push_back(std::move(call));
  }
  return g;
}

Result<GrammarSpec> grammar_spec_from(const StructuredOutputs& so) {
  if (so.num_constraints() != 1) {
    return invalid_argument("structured outputs need exactly one constraint");
  }
  GrammarSpec spec;
  spec.any_whitespace = !so.disable_any_whitespace;
  if (so.json) {
    spec.kind = GrammarSpec::Kind::kJsonSchema;
    // Canonical form (and a JSON check with a clear message) before the compiler sees it.
    auto parsed = json::parse(*so.json, "the JSON schema");
    if (!parsed.ok()) return parsed.status();
    if (!parsed->is_object() && !parsed->is_bool()) {
      return invalid_argument("the JSON schema must be an object (or true/false), got " +
                              std::string(json::kind_name(*parsed)));
    }
    spec.text = bj::serialize(*parsed);
  } else if (so.json_object) {
    spec.kind = GrammarSpec::Kind::kJsonObject;
  } else if (so.regex) {
    spec.kind = GrammarSpec::Kind::kRegex;
    spec.text = *so.regex;
  } else if (so.choice) {
    spec.kind = GrammarSpec::Kind::kChoice;
    spec.choices = *so.choice;
  } else if (so.grammar) {
    spec.kind = GrammarSpec::Kind::kEbnf;
    spec.text = *so.grammar;
  } else {
    spec.kind = GrammarSpec::Kind::kToolCalls;
    KITE_ASSIGN_OR_RETURN(spec.tools, tool_call_grammar_from_json(*so.internal_spec));
  }
  return spec;
}

}  // namespace kite::structured
