// StopStringMatcher: per-request detection of stop strings in streamed text (OpenAI `stop`).
// Text arrives in arbitrary chunks (one per detokenizer step); a stop string may span chunks.
// The matcher returns the text that is safe to emit: it holds back a tail that could still
// become a stop string, and once a stop string completes it returns the text before it (plus
// the stop string itself with include_stop_str_in_output) and stops.
//
// Which stop wins: the one whose match completes first in the text; among matches completing at
// the same character, the longest. The result does not depend on how the text was chunked.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kite {

class StopStringMatcher {
 public:
  // Empty stop strings are ignored.
  explicit StopStringMatcher(std::vector<std::string> stop_strings,
                             bool include_stop_str_in_output = false);

  struct Output {
    std::string text;                  // safe to emit now
    std::optional<size_t> stop_index;  // set once a stop string matched (index given)
  };

  // Appends newly decoded text. After a match every push returns nothing.
  Output push(std::string_view text);
  // End of generation without a stop: returns the held-back tail.
  std::string flush();

  bool stopped() const { return stop_index_.has_value(); }
  std::optional<size_t> stop_index() const { return stop_index_; }
  // The matched stop string ("" when none).
  const std::string& matched_stop() const;
  const std::vector<std::string>& stop_strings() const { return stops_; }

 private:
  std::vector<std::string> stops_;
  bool include_stop_;
  size_t max_len_ = 0;
  std::string held_;  // not yet emitted
  std::optional<size_t> stop_index_;
};

}  // namespace kite
