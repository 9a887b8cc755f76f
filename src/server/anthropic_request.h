// POST /v1/messages (the Anthropic Messages API): its request parsed and validated, then
// translated into the ChatCompletionRequest that the chat path serves, so both share the chat
// template, tool-call grammars and parsers, sampling and the generation skeleton.
//
// The translation: `system` becomes a system message; a user message's text blocks become its
// content and its tool_result blocks become `tool` messages (before the text, since they answer
// the previous turn's calls); an assistant message's text becomes its content, its tool_use
// blocks its tool_calls (arguments as the `input` object) and its thinking blocks its
// reasoning_content. A final assistant message is a prefill that the model continues. `tools`
// ({name, description, input_schema}) become function tools; `tool_choice` auto / any / tool /
// none becomes auto / required / named / none, `disable_parallel_tool_use` parallel_tool_calls.
// `stop_sequences` are stop strings; `thinking: {"type": "disabled"}` turns a template's
// thinking off (`budget_tokens` is accepted and not enforced); `output_config.format`
// ({type: json_schema, schema}) constrains the text. kite also takes vLLM's sampling extensions
// seed, logit_bias, min_p, repetition_penalty, min_tokens, stop_token_ids and ignore_eos.
//
// Errors are ApiErrors (the handler answers them in Anthropic's shape), naming the field by its
// path ("messages[1].content[0].tool_use_id").
#pragma once

#include <string_view>

#include "server/api_error.h"
#include "server/openai_request.h"

namespace kite::server {

ApiResult<ChatCompletionRequest> parse_messages_request(std::string_view body,
                                                        const ParseContext& ctx);

}  // namespace kite::server
