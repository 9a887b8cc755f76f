#include "server/chat_output.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "structured/grammar_spec.h"

namespace kite::server {

namespace bj = boost::json;

namespace {

// The grammar of tool_choice required: one or more calls (parallel_tool_calls) of any tool, in
// the format's text.
std::string required_calls_grammar(ToolCallFormat format, const std::vector<ToolFunction>& tools,
                                   bool parallel) {
  const ToolCallText t = tool_call_text(format);
  structured::ToolCallGrammar g;
  g.prefix = t.prefix;
  g.separator = t.separator;
  g.suffix = t.suffix;
  g.parallel = parallel;
  for (const ToolFunction& f : tools) {
    structured::ToolCallGrammar::Call c;
    c.begin = t.call_open + bj::serialize(bj::value(f.name)) + t.args_key;
    c.parameters = f.parameters_json;
    c.end = t.call_close;
    g.calls.push_back(std::move(c));
  }
  return structured::tool_call_grammar_to_json(g);
}

void merge_calls(std::vector<ToolCallDelta>& from, std::vector<ToolCallDelta>* into) {
  for (ToolCallDelta& c : from) {
    if (!into->empty() && into->back().index == c.index && !c.first) {
      into->back().arguments += c.arguments;
    } else {
      into->push_back(std::move(c));
    }
  }
}

}  // namespace

ApiResult<ChatOutputPlan> plan_chat_output(const ServerConfig& config, bool template_has_tools,
                                           ChatCompletionRequest& req) {
  ChatOutputPlan plan;
  plan.reasoning = !config.reasoning_parser.empty() && !req.thinking_disabled;
  std::optional<ToolCallFormat> parser = tool_call_format_from_name(config.tool_call_parser);
  const ToolChoice& tc = req.tool_choice;
  if (!req.tools.empty() && tc.kind != ToolChoice::Kind::kNone && !template_has_tools) {
    return invalid_value("tools",
                         "the model's chat template does not support tools (it never reads "
                         "'tools'): pass a tool-capable chat_template or leave 'tools' out");
  }
  switch (tc.kind) {
    case ToolChoice::Kind::kNone:
      break;
    case ToolChoice::Kind::kAuto:
      // Without --enable-auto-tool-choice the tools reach the template and the text stays text.
      if (config.enable_auto_tool_choice && parser) plan.tool_format = parser;
      break;
    case ToolChoice::Kind::kRequired: {
      const ToolCallFormat f = parser.value_or(ToolCallFormat::kJsonArray);
      plan.tool_format = f;
      StructuredOutputs so;
      so.internal_spec = required_calls_grammar(f, req.tools, req.parallel_tool_calls);
      req.params.structured_outputs = std::move(so);
      break;
    }
    case ToolChoice::Kind::kNamed: {
      plan.named_function = tc.name;
      plan.calls_finish_with_tool_calls = false;  // OpenAI: a forced function ends with "stop"
      StructuredOutputs so;
      for (const ToolFunction& f : req.tools) {
        if (f.name == tc.name) so.json = f.parameters_json;
      }
      req.params.structured_outputs = std::move(so);
      break;
    }
  }
  // Mistral's [TOOL_CALLS] is a special token: keep it in the text the parser reads.
  if (plan.tool_format == ToolCallFormat::kMistral) req.params.skip_special_tokens = false;
  return plan;
}

ChatChoiceOutput::ChatChoiceOutput(const ChatOutputPlan& plan) : plan_(plan) {
  if (plan_.reasoning) reasoning_.emplace();
  if (plan_.tool_format) tools_.emplace(*plan_.tool_format);
}

void ChatChoiceOutput::route(std::string_view content, Delta* d, bool final) {
  if (!plan_.named_function.empty()) {
    if (!named_announced_ && (!content.empty() || final)) {
      ToolCallDelta first;
      first.first = true;
      first.index = 0;
      first.id = ToolCallParser::make_call_id();
      first.name = plan_.named_function;
      d->calls.push_back(std::move(first));
      named_announced_ = true;
      made_calls_ = true;
    }
    if (!content.empty()) {
      ToolCallDelta frag;
      frag.index = 0;
      frag.arguments = std::string(content);
      std::vector<ToolCallDelta> one{std::move(frag)};
      merge_calls(one, &d->calls);
    }
    return;
  }
  if (tools_) {
    ToolCallParser::Delta t = tools_->feed(content);
    if (final) {
      ToolCallParser::Delta end = tools_->finish();
      t.content += end.content;
      t.calls.insert(t.calls.end(), end.calls.begin(), end.calls.end());
    }
    d->content += t.content;
    if (!t.calls.empty()) made_calls_ = true;
    merge_calls(t.calls, &d->calls);
    return;
  }
  d->content += content;
}

ChatChoiceOutput::Delta ChatChoiceOutput::feed(std::string_view text) {
  Delta d;
  if (reasoning_) {
    ReasoningParser::Delta r = reasoning_->feed(text);
    d.reasoning = std::move(r.reasoning);
    route(r.content, &d, false);
  } else {
    route(text, &d, false);
  }
  return d;
}

ChatChoiceOutput::Delta ChatChoiceOutput::finish() {
  Delta d;
  if (reasoning_) {
    ReasoningParser::Delta r = reasoning_->finish();
    d.reasoning = std::move(r.reasoning);
    route(r.content, &d, true);
  } else {
    route("", &d, true);
  }
  return d;
}

}  // namespace kite::server
