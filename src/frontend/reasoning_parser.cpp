#include "frontend/reasoning_parser.h"

namespace kite {

namespace {

constexpr std::string_view kStart = "<think>";
constexpr std::string_view kEnd = "</think>";

// Length of the longest suffix of `s` that is a proper prefix of `tag`.
size_t partial_suffix(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n) {
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace

bool ReasoningParser::is_known(std::string_view name) {
  return name == "qwen3" || name == "deepseek_r1";
}

ReasoningParser::Delta ReasoningParser::feed(std::string_view text) {
  Delta d;
  pending_.append(text);
  for (;;) {
    if (state_ == State::kStart) {
      // Leading whitespace, then maybe "<think>".
      size_t i = 0;
      while (i < pending_.size() && (pending_[i] == ' ' || pending_[i] == '\n')) ++i;
      std::string_view rest = std::string_view(pending_).substr(i);
      if (rest.size() < kStart.size() && kStart.substr(0, rest.size()) == rest) return d;
      if (rest.substr(0, kStart.size()) == kStart) pending_.erase(0, i + kStart.size());
      state_ = State::kReasoning;
      continue;
    }
    if (state_ == State::kReasoning) {
      const size_t end = pending_.find(kEnd);
      if (end != std::string::npos) {
        d.reasoning += pending_.substr(0, end);
        pending_.erase(0, end + kEnd.size());
        state_ = State::kContent;
        continue;
      }
      const size_t keep = partial_suffix(pending_, kEnd);
      d.reasoning += pending_.substr(0, pending_.size() - keep);
      pending_.erase(0, pending_.size() - keep);
      return d;
    }
    d.content += pending_;
    pending_.clear();
    return d;
  }
}

ReasoningParser::Delta ReasoningParser::finish() {
  Delta d;
  if (state_ == State::kContent) {
    d.content = std::move(pending_);
  } else {
    d.reasoning = std::move(pending_);
  }
  pending_.clear();
  return d;
}

ReasoningParser::Delta ReasoningParser::split(std::string_view text) {
  ReasoningParser p;
  Delta a = p.feed(text);
  Delta b = p.finish();
  a.reasoning += b.reasoning;
  a.content += b.content;
  return a;
}

}  // namespace kite
