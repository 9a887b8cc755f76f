// IncrementalDetokenizer: per-request streaming decode. Ids go in one at a time; text comes out
// as soon as it is final. It decodes a small window of recent ids (context already emitted, then
// the new ids) and emits what the new ids add, so leading spaces, byte-fallback runs and
// decoder rules come out as in the full decode (the approach of Hugging Face's DecodeStream and
// vLLM). It holds back text ending in an incomplete UTF-8 character (U+FFFD so far) and text
// that does not yet extend the context consistently, until later ids settle it. Concatenating
// every step() and the final flush() gives decode(all ids): tested for every corpus string of
// every shipped tokenizer. Work per id is bounded: the window keeps a few ids of context, and a
// run of ids that never settles (invalid UTF-8 from a model) is emitted after 16 ids, as the
// U+FFFD characters the full decode also shows.
//
// Not thread-safe; one per request. The Tokenizer must outlive it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kite {

class Tokenizer;

class IncrementalDetokenizer {
 public:
  // prompt_ids: the request's prompt. Its last few ids seed the window (never emitted) so the
  // first generated tokens decode with the spacing they have after the prompt. May be empty.
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens,
                         std::span<const int32_t> prompt_ids = {});

  // Feeds one generated id; returns the newly final text (often empty).
  std::string step(int32_t id);
  // Feeds several ids; returns the concatenated final text.
  std::string step(std::span<const int32_t> ids);
  // Returns the text still held back (an incomplete character decodes as U+FFFD). Call once after
  // the last id; later steps start a fresh window.
  std::string flush();

  // Number of generated ids fed so far.
  size_t num_ids() const { return num_generated_; }

 private:
  std::string decode_range(size_t begin, size_t end) const;
  // Marks ids_[.., new_read_offset) emitted; the previous new ids become the context.
  void advance(size_t new_read_offset);
  // Keeps the context window short (a few ids) so each step costs O(1) decodes of small windows.
  void trim_context();

  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;  // window: context ids from prefix_offset_ on
  size_t prefix_offset_ = 0;  // start of the decoded window in ids_
  size_t read_offset_ = 0;    // ids_ before this are emitted (or prompt context)
  std::string prefix_text_;   // decode(ids_[prefix_offset_, read_offset_))
  size_t num_generated_ = 0;
};

}  // namespace kite
