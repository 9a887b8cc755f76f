// Pre-tokenizers of tokenizer.json ("pre_tokenizer"): split normalized text into the words the
// model tokenizes, with the semantics of Hugging Face `tokenizers`. Supported types: ByteLevel,
// Split, Digits, Metaspace, Whitespace, WhitespaceSplit, BertPreTokenizer, Punctuation,
// CharDelimiterSplit, FixedLength, UnicodeScripts, Sequence.
#pragma once

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/pattern.h"
#include "kite/status.h"

namespace kite {

// One piece of text in PreTokenizedString::buffer.
struct PreToken {
  size_t begin = 0;
  size_t end = 0;
  // The piece starts at offset 0 of the original input (Metaspace's prepend_scheme "first").
  bool at_origin = false;
};

struct PreTokenizedString {
  std::string buffer;
  std::vector<PreToken> pieces;  // in text order; never empty pieces

  std::string_view text(const PreToken& t) const {
    return std::string_view(buffer).substr(t.begin, t.end - t.begin);
  }
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Turns the matches of a pattern in a text of `len` bytes into the pieces to keep, following
// tokenizers' NormalizedString::split: `matches` are sorted and non-overlapping; with `invert`,
// matches and the gaps between them swap roles. Appends non-empty spans to `out`.
void split_spans(size_t len, const std::vector<Span>& matches, SplitBehavior behavior, bool invert,
                 std::vector<Span>& out);

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(PreTokenizedString& pts) const = 0;

  // True when this pre-tokenizer (or the last step of a Sequence) is ByteLevel, whose final
  // byte -> GPT-2 character mapping can be left to a model that consumes raw bytes.
  virtual bool can_defer_byte_mapping() const { return false; }
  // Stops that ByteLevel step from mapping bytes. REQUIRES: can_defer_byte_mapping().
  virtual void defer_byte_mapping() {}

  static Result<std::unique_ptr<PreTokenizer>> from_json(const boost::json::value& v,
                                                         const std::string& path);
};

}  // namespace kite
