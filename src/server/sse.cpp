#include "server/sse.h"

namespace kite::server {

std::string sse_event(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 8);
  size_t start = 0;
  while (true) {
    size_t nl = data.find_first_of("\r\n", start);
    out += "data: ";
    out.append(data.substr(start, nl == std::string_view::npos ? nl : nl - start));
    out += '\n';
    if (nl == std::string_view::npos) break;
    // "\r\n" is one line break.
    start = (data[nl] == '\r' && nl + 1 < data.size() && data[nl + 1] == '\n') ? nl + 2 : nl + 1;
  }
  out += '\n';
  return out;
}

std::string sse_named_event(std::string_view event, std::string_view data) {
  std::string out = "event: ";
  out.append(event);
  out += '\n';
  out += sse_event(data);
  return out;
}

}  // namespace kite::server
