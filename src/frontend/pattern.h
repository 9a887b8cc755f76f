// Pattern: what `Split`, `Replace` (normalizer and decoder) match — a literal string or a
// regular expression. Regexes run on PCRE2 (JIT, UTF + UCP) with the match iteration rules of
// Oniguruma as Hugging Face `tokenizers` drives it, so splits come out the same.
#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kite/status.h"

namespace kite {

// Rewrites an Oniguruma (Ruby syntax) pattern into PCRE2 syntax with the same meaning for the
// escapes whose Unicode definitions differ: \s/\S (White_Space; PCRE2 adds U+180E), \w/\W
// (Oniguruma counts marks as word characters), \h/\H (hex digits in Ruby syntax).
std::string onig_to_pcre2(std::string_view pattern);

// A byte range [begin, end) of a string.
struct Span {
  size_t begin = 0;
  size_t end = 0;
};

class Regex {
 public:
  // Compiles `pattern` (Oniguruma/Ruby syntax as used by tokenizer.json; the common subset is
  // the same in PCRE2). kInvalidArgument with PCRE2's message and offset on a bad pattern.
  static Result<std::shared_ptr<const Regex>> compile(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends every match in `text` (valid UTF-8) to `out`, in order, non-overlapping. An empty
  // match right after the previous match is skipped (Oniguruma's find_iter rule).
  void find_all(std::string_view text, std::vector<Span>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  Regex() = default;
  // Returns false when there is no match at or after `from`.
  bool search(std::string_view text, size_t from, Span* match) const;

  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

class Pattern {
 public:
  static Pattern literal(std::string s) {
    Pattern p;
    p.literal_ = std::move(s);
    return p;
  }
  static Result<Pattern> regex(std::string_view re) {
    KITE_ASSIGN_OR_RETURN(auto compiled, Regex::compile(re));
    Pattern p;
    p.regex_ = std::move(compiled);
    return p;
  }
  Pattern() = default;

  // Appends the matches in `text` to `out` (see Regex::find_all). A literal matches its
  // non-overlapping occurrences, leftmost first; an empty literal matches nothing.
  void find_all(std::string_view text, std::vector<Span>& out) const;

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;
};

// Reads a tokenizer.json pattern object, {"String": "..."} or {"Regex": "..."}.
Result<Pattern> pattern_from_json(const boost::json::value& v, const std::string& path);

}  // namespace kite
