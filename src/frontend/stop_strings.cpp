#include "frontend/stop_strings.h"

#include <algorithm>

namespace kite {

namespace {
const std::string kEmpty;
}  // namespace

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings,
                                     bool include_stop_str_in_output)
    : stops_(std::move(stop_strings)), include_stop_(include_stop_str_in_output) {
  for (const std::string& s : stops_) max_len_ = std::max(max_len_, s.size());
}

const std::string& StopStringMatcher::matched_stop() const {
  return stop_index_ ? stops_[*stop_index_] : kEmpty;
}

StopStringMatcher::Output StopStringMatcher::push(std::string_view text) {
  Output out;
  if (stopped()) return out;
  held_.append(text);
  if (max_len_ == 0) {
    out.text.swap(held_);
    return out;
  }
  // The match that completes first; ties go to the longest (earliest start).
  size_t best_end = std::string::npos;
  size_t best_start = 0;
  size_t best_index = 0;
  for (size_t k = 0; k < stops_.size(); ++k) {
    const std::string& s = stops_[k];
    if (s.empty()) continue;
    size_t pos = held_.find(s);
    if (pos == std::string::npos) continue;
    size_t end = pos + s.size();
    if (end < best_end || (end == best_end && pos < best_start)) {
      best_end = end;
      best_start = pos;
      best_index = k;
    }
  }
  if (best_end != std::string::npos) {
    out.text = held_.substr(0, include_stop_ ? best_end : best_start);
    out.stop_index = best_index;
    stop_index_ = best_index;
    held_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t keep = 0;
  size_t max_keep = std::min(held_.size(), max_len_ - 1);
  for (size_t len = max_keep; len > 0; --len) {
    std::string_view tail = std::string_view(held_).substr(held_.size() - len);
    bool prefix_of_stop = false;
    for (const std::string& s : stops_) {
      if (s.size() > len && std::string_view(s).substr(0, len) == tail) {
        prefix_of_stop = true;
        break;
      }
    }
    if (prefix_of_stop) {
      keep = len;
      break;
    }
  }
  out.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopStringMatcher::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace kite
