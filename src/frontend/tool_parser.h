// ToolCallParser: finds the tool calls in a model's output, per family format, whole or as the
// text streams (OpenAI's streamed `tool_calls` deltas: a call's first delta carries its index,
// id and name, later ones argument fragments whose concatenation is the arguments JSON).
//
// Formats (what `--tool-call-parser` names and what the grammar of tool_choice "required" /
// a named function makes the model write, see tool_call_format()):
//   hermes       Qwen2.5/Qwen3/Hermes: <tool_call>\n{"name": N, "arguments": {..}}\n</tool_call>
//   llama3_json  Llama 3.1+: {"name": N, "parameters": {..}} (calls separated by "; ", optional
//                leading <|python_tag|>); only an output that starts with it is a call
//   mistral      [TOOL_CALLS][{"name": N, "arguments": {..}}, ...]
//   json_array   kite's parser-less format for tool_choice "required" (vLLM's):
//                [{"name": N, "parameters": {..}}, ...]
// Text outside the calls is content. An output whose tool section holds no complete call is
// content as a whole.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kite {

enum class ToolCallFormat { kHermes, kLlama3Json, kMistral, kJsonArray };

// "hermes" | "llama3_json" | "mistral" (nullopt otherwise).
std::optional<ToolCallFormat> tool_call_format_from_name(std::string_view name);

// The text the grammar puts around calls of `format` (see structured::ToolCallGrammar).
struct ToolCallText {
  std::string prefix;      // before the first call
  std::string call_open;   // before the name: {"name":
  std::string args_key;    // between the name and the arguments: , "arguments":
  std::string call_close;  // after the arguments
  std::string separator;   // between calls
  std::string suffix;      // after the last call
};
ToolCallText tool_call_text(ToolCallFormat format);

struct ToolCallDelta {
  int index = 0;          // the call's position in the output, from 0
  std::string id;         // first delta of a call only
  std::string name;       // first delta of a call only
  std::string arguments;  // a fragment
  bool first = false;     // the call's first delta (id and name set)
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text
};

class ToolCallParser {
 public:
  explicit ToolCallParser(ToolCallFormat format);

  struct Delta {
    std::string content;
    std::vector<ToolCallDelta> calls;
  };
  Delta feed(std::string_view text);
  Delta finish();

  // The whole output: content (may be empty) and the calls (ids freshly made).
  struct Result {
    std::string content;
    std::vector<ToolCall> calls;
  };
  static Result parse(ToolCallFormat format, std::string_view text);

  // An OpenAI-style call id ("call_" + 24 alphanumerics).
  static std::string make_call_id();

 private:
  enum class Mode { kStart, kContent, kTools };
  struct Call {
    std::string text;  // the call object so far, from '{'
    std::string id;
    std::string name;
    bool announced = false;  // first delta sent
    size_t args_sent = 0;    // bytes of the arguments value sent
    bool done = false;
  };
  void scan_tools(Delta* d, bool at_end);
  void update_call(Call& c, Delta* d, bool complete);

  ToolCallFormat format_;
  Mode mode_ = Mode::kStart;
  std::string pending_;       // undecided text (a possible marker start)
  std::string tool_text_;     // everything since the tool section began (for fallbacks)
  std::string content_sent_;  // content emitted so far
  size_t scan_ = 0;           // position in tool_text_ of the scanner
  std::vector<Call> calls_;
  bool in_call_ = false;
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  bool format_locked_content_ = false;  // llama3_json / json_array output without a call
};

}  // namespace kite
