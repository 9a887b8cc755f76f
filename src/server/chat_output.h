// What a chat choice's text becomes in the response: reasoning_content (a reasoning parser),
// tool calls (tools with a family parser, tool_choice required, or a named function) and content,
// whole or as it streams (internal to src/server/).
//
// Also builds the grammar that tool_choice required / named holds the model to, so the model
// writes its calls in the format the parser reads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/reasoning_parser.h"
#include "frontend/tool_parser.h"
#include "server/api_error.h"
#include "server/openai_request.h"
#include "server/server.h"

namespace kite::server {

struct ChatOutputPlan {
  bool reasoning = false;                     // split <think>…</think>
  std::optional<ToolCallFormat> tool_format;  // parse calls in this format
  std::string named_function;                 // tool_choice names it: the output is its arguments
  bool calls_finish_with_tool_calls = true;   // finish_reason "tool_calls" when calls were made
};

// Decides the plan and sets the request's grammar (req.params.structured_outputs) for
// tool_choice required / named. Errors (400): tools with a template that does not read them.
ApiResult<ChatOutputPlan> plan_chat_output(const ServerConfig& config, bool template_has_tools,
                                           ChatCompletionRequest& req);

// One choice's text through the plan.
class ChatChoiceOutput {
 public:
  explicit ChatChoiceOutput(const ChatOutputPlan& plan);
  struct Delta {
    std::string reasoning;
    std::string content;
    std::vector<ToolCallDelta> calls;  // consecutive deltas of one call merged
  };
  Delta feed(std::string_view text);
  Delta finish();
  bool made_calls() const { return made_calls_; }

 private:
  void route(std::string_view content, Delta* d, bool final);

  ChatOutputPlan plan_;
  std::optional<ReasoningParser> reasoning_;
  std::optional<ToolCallParser> tools_;
  bool named_announced_ = false;
  std::string named_id_;
  bool made_calls_ = false;
};

}  // namespace kite::server
