// POST /v1/responses (OpenAI's Responses API): its request parsed and validated, then
// translated into the ChatCompletionRequest that the chat path serves.
//
// The translation: `instructions` becomes a system message; `input` is a string (one user
// message) or a list of items: messages (`role` user / system / developer / assistant, content
// a string or input_text / output_text parts), `function_call` items (become the tool_calls of
// an assistant message; consecutive ones join one message), `function_call_output` items
// (become `tool` messages; their `call_id` must name an earlier function_call) and `reasoning`
// items (their text becomes the next assistant message's reasoning_content). `tools` (function
// tools: name, description, parameters) and `tool_choice` (none / auto / required / a named
// function) keep their chat meaning; `text.format` json_schema / json_object constrains the
// text; `max_output_tokens` is max_tokens (default: as many as fit).
//
// `previous_response_id` continues a stored conversation (ResponseStore, response_store.h): its
// messages come after `instructions` (which, as OpenAI's, are not carried over) and before
// `input`.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "server/api_error.h"
#include "server/openai_request.h"

namespace kite::server {

struct ResponsesRequest {
  ChatCompletionRequest chat;  // messages_json: instructions, the previous conversation, input
  std::optional<std::string> instructions;
  std::optional<int64_t> max_output_tokens;
  std::string conversation_json;     // the previous conversation + input (no instructions)
  std::string tools_json = "[]";     // `tools` as given (echoed in the response)
  std::string tool_choice_json;      // `tool_choice` as given ("auto"/"none" when absent)
  std::string text_json;             // `text` as given ({"format": {"type": "text"}} when absent)
  std::string metadata_json = "{}";  // echoed
  std::string previous_response_id;  // "" when absent
  bool store = true;                 // OpenAI's default: the response may be continued
};

// The conversation a stored response ended with (chat messages, a JSON array), or nullopt when
// `id` is not (or no longer) stored.
using PreviousResponseLookup = std::function<std::optional<std::string>(const std::string& id)>;

// `previous`: looks previous_response_id up (404 when it returns nullopt); its conversation goes
// before `input` in chat.messages_json, and its tool calls may be answered by
// function_call_output items.
ApiResult<ResponsesRequest> parse_responses_request(std::string_view body, const ParseContext& ctx,
                                                    const PreviousResponseLookup& previous);

}  // namespace kite::server
