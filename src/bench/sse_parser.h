// Incremental parser of a Server-Sent Events stream (the WHATWG event-stream format that
// OpenAI-compatible servers stream with): bytes in, in whatever pieces the network delivers;
// one callback per complete event with its data (data lines joined by '\n').
// Lines end with LF, CRLF or CR (also when the CR and LF arrive in different pieces); comment
// lines (":...") and fields other than "data" are ignored; an event without data is not
// reported.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace kite::bench {

class SseParser {
 public:
  using EventFn = std::function<void(std::string_view data)>;

  void feed(std::string_view bytes, const EventFn& on_event);
  // Bytes of an unfinished event are pending (the stream ended mid-event when this is true).
  bool has_pending() const { return !line_.empty() || has_data_; }
  size_t num_events() const { return num_events_; }

 private:
  void end_line(const EventFn& on_event);

  std::string line_;  // the current, unterminated line
  std::string data_;  // data of the current event
  bool has_data_ = false;
  bool last_was_cr_ = false;
  size_t num_events_ = 0;
};

}  // namespace kite::bench
