#include "frontend/incremental_detokenizer.h"

#include <algorithm>

#include "frontend/tokenizer.h"
#include "frontend/utf8.h"

namespace kite {

namespace {

// Prompt ids used as context: vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET, extended (up to
// kMaxContext) until the window does not start inside a character.
constexpr size_t kInitialContext = 5;
constexpr size_t kMaxContext = 24;
// The window is compacted once this many ids precede it.
constexpr size_t kCompactAfter = 256;

bool ends_with_replacement(std::string_view s) {
  return s.size() >= utf8::kReplacementUtf8.size() &&
         s.substr(s.size() - utf8::kReplacementUtf8.size()) == utf8::kReplacementUtf8;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens,
                                               std::span<const int32_t> prompt_ids)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {
  if (!prompt_ids.empty()) {
    size_t n = std::min(prompt_ids.size(), kInitialContext);
    std::string text;
    while (true) {
      std::span<const int32_t> suffix = prompt_ids.subspan(prompt_ids.size() - n);
      text = tokenizer.decode(suffix, skip_special_tokens);
      bool starts_inside_char = starts_with(text, utf8::kReplacementUtf8);
      if (!starts_inside_char || n >= std::min(prompt_ids.size(), kMaxContext)) break;
      ++n;
    }
    ids_.assign(prompt_ids.end() - static_cast<ptrdiff_t>(n), prompt_ids.end());
    read_offset_ = ids_.size();
    prefix_text_ = std::move(text);
  }
}

std::string IncrementalDetokenizer::decode_range(size_t begin, size_t end) const {
  return tokenizer_.decode(std::span<const int32_t>(ids_.data() + begin, end - begin),
                           skip_special_tokens_);
}

std::string IncrementalDetokenizer::step(int32_t id) {
  ids_.push_back(id);
  ++num_generated_;
  size_t end = ids_.size();
  std::string text = decode_range(prefix_offset_, end);
  // Hold back while the text ends inside a character, adds nothing (a skipped special token), or
  // does not extend the context (then the next ids decide).
  if (text.size() <= prefix_text_.size() || ends_with_replacement(text) ||
      !starts_with(text, prefix_text_)) {
    return {};
  }
  std::string out = text.substr(prefix_text_.size());
  prefix_offset_ = read_offset_;
  read_offset_ = end;
  prefix_text_ = decode_range(prefix_offset_, read_offset_);
  if (prefix_offset_ >= kCompactAfter) {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<ptrdiff_t>(prefix_offset_));
    read_offset_ -= prefix_offset_;
    prefix_offset_ = 0;
  }
  return out;
}

std::string IncrementalDetokenizer::step(std::span<const int32_t> ids) {
  std::string out;
  for (int32_t id : ids) out += step(id);
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::string text = decode_range(prefix_offset_, ids_.size());
  std::string out;
  if (starts_with(text, prefix_text_)) {
    out = text.substr(prefix_text_.size());
  } else {
    // The decoder rewrote context text; emit what follows the part both agree on.
    size_t common = 0;
    while (common < text.size() && common < prefix_text_.size() &&
           text[common] == prefix_text_[common]) {
      ++common;
    }
    while (common > 0 && common < text.size() &&
           (static_cast<unsigned char>(text[common]) & 0xC0) == 0x80) {
      --common;
    }
    out = text.substr(common);
  }
  prefix_offset_ = ids_.size();
  read_offset_ = ids_.size();
  prefix_text_.clear();
  ids_.clear();
  prefix_offset_ = read_offset_ = 0;
  return out;
}

}  // namespace kite
