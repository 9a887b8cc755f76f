#include "frontend/incremental_detokenizer.h"

#include <algorithm>

#include "frontend/tokenizer.h"
#include "frontend/tokenizer_impl.h"
#include "frontend/utf8.h"

namespace kite {

namespace {

// Prompt ids used as context: vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET, extended (up to
// kMaxPromptContext) until the window does not start inside a character.
constexpr size_t kInitialContext = 5;
constexpr size_t kMaxPromptContext = 24;
// The window is compacted once this many ids precede it.
constexpr size_t kCompactAfter = 256;
// Context ids kept before the new ones once the context grows past kMaxContext.
constexpr size_t kMaxContext = 32;
// Ids held back at most while the text does not settle, and how many stay held when forcing.
constexpr size_t kMaxPending = 16;
constexpr size_t kKeepPending = 4;

bool ends_with_replacement(std::string_view s) {
  return s.size() >= utf8::kReplacementUtf8.size() &&
         s.substr(s.size() - utf8::kReplacementUtf8.size()) == utf8::kReplacementUtf8;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Length of the common prefix of a and b, backed off to a character boundary of a.
size_t common_prefix(std::string_view a, std::string_view b) {
  if (starts_with(a, b)) return b.size();
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  while (n > 0 && n < a.size() && (static_cast<unsigned char>(a[n]) & 0xC0) == 0x80) --n;
  return n;
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
      if (!starts_inside_char || n >= std::min(prompt_ids.size(), kMaxPromptContext)) break;
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
  ++num_generated_;
  // A special token that decode() would skip contributes nothing: leave it out of the window.
  if (skip_special_tokens_ && tokenizer_.impl().skipped_by_decode(id)) return {};
  ids_.push_back(id);
  const size_t end = ids_.size();
  std::string text = decode_range(prefix_offset_, end);
  if (starts_with(text, prefix_text_) && !ends_with_replacement(text)) {
    if (text.size() == prefix_text_.size()) {
      // The id added no text (e.g. a repeat that CTC collapses): nothing to emit or wait for.
      read_offset_ = end;
      prefix_text_ = std::move(text);
      trim_context();
      return {};
    }
    std::string out = text.substr(prefix_text_.size());
    advance(end);
    return out;
  }
  // Held back: the text ends inside a character, or does not extend the context yet.
  if (end - read_offset_ < kMaxPending) return {};
  // A run that never settles (a model producing invalid UTF-8): emit all but the last few ids,
  // which may still be an incomplete character.
  const size_t cut = end - kKeepPending;
  std::string part = decode_range(prefix_offset_, cut);
  std::string out = part.substr(common_prefix(part, prefix_text_));
  advance(cut);
  return out;
}

void IncrementalDetokenizer::advance(size_t new_read_offset) {
  prefix_offset_ = read_offset_;
  read_offset_ = new_read_offset;
  prefix_text_ = decode_range(prefix_offset_, read_offset_);
  trim_context();
  if (prefix_offset_ >= kCompactAfter) {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<ptrdiff_t>(prefix_offset_));
    read_offset_ -= prefix_offset_;
    prefix_offset_ = 0;
  }
}

void IncrementalDetokenizer::trim_context() {
  if (read_offset_ - prefix_offset_ <= kMaxContext) return;
  prefix_offset_ = read_offset_ - kInitialContext;
  prefix_text_ = decode_range(prefix_offset_, read_offset_);
}

std::string IncrementalDetokenizer::step(std::span<const int32_t> ids) {
  std::string out;
  for (int32_t id : ids) out += step(id);
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::string text = decode_range(prefix_offset_, ids_.size());
  // Normally the window extends its context; otherwise emit what follows the common part.
  std::string out = text.substr(common_prefix(text, prefix_text_));
  prefix_text_.clear();
  ids_.clear();
  prefix_offset_ = read_offset_ = 0;
  return out;
}

}  // namespace kite
