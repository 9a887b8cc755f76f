// Server-sent events framing (https://html.spec.whatwg.org/multipage/server-sent-events.html),
// as OpenAI streams: one `data: <json>` event per chunk, then `data: [DONE]`.
#pragma once

#include <string>
#include <string_view>

namespace kite::server {

// One event carrying `data`; every line of `data` becomes its own `data:` field, so a payload
// holding a newline cannot end the event early. Ends with the blank line that dispatches it.
std::string sse_event(std::string_view data);

// One event with an `event:` type line before its data (the Anthropic Messages and OpenAI
// Responses streams name every event: `event: message_start`, `event: response.completed`).
std::string sse_named_event(std::string_view event, std::string_view data);

// The terminator OpenAI clients wait for.
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace kite::server
