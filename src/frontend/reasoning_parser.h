// ReasoningParser: splits a reasoning model's output into the thinking and the answer
// (`reasoning_content` and `content` of the chat API), whole or as it streams.
//
// Both supported families write "<think> … </think> answer" (Qwen3, DeepSeek-R1; the template
// may already have put "<think>" in the prompt): a leading "<think>" is dropped, the text before
// "</think>" is the reasoning, the text after it the answer; an output that never closes its
// thinking (cut by max_tokens) is all reasoning. With thinking switched off
// (chat_template_kwargs enable_thinking=false) the parser is not used: everything is content.
#pragma once

#include <string>
#include <string_view>

namespace kite {

class ReasoningParser {
 public:
  // name: "qwen3" or "deepseek_r1" (false from is_known otherwise).
  static bool is_known(std::string_view name);

  struct Delta {
    std::string reasoning;
    std::string content;
  };
  // Feeds the next piece of output text; returns what became final. Text that may be the start
  // of "<think>" / "</think>" is held back until it is decided.
  Delta feed(std::string_view text);
  // End of output: releases what was held back.
  Delta finish();

  // Whole output at once (the same split as feed + finish).
  static Delta split(std::string_view text);

 private:
  enum class State { kStart, kReasoning, kContent };
  State state_ = State::kStart;
  std::string pending_;  // undecided text
};

}  // namespace kite
