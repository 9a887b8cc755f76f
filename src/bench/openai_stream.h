// The OpenAI-compatible request a benchmark sends and how it reads each streamed chunk, for
// /v1/completions and /v1/chat/completions (vLLM, TGI, TensorRT-LLM, SGLang, kite).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bench/dataset.h"
#include "kite/status.h"

namespace kite::bench {

enum class ApiKind { kCompletions, kChatCompletions };

struct RequestOptions {
  std::string model;
  ApiKind api = ApiKind::kCompletions;
  bool ignore_eos = false;  // adds "ignore_eos": true (a vLLM extension) only when set
  std::optional<double> temperature = 0.0;  // greedy by default; nullopt: the server's default
  std::optional<double> top_p;
  std::optional<int> top_k;     // a vLLM/SGLang extension; sent only when set
  bool include_usage = true;    // stream_options.include_usage
  std::string extra_body_json;  // a JSON object merged into every request ("" = none)
  // response_format objects (JSON text); request i carries response_formats[i % size()]
  // (structured outputs: JSON schemas, json_object). Empty: none.
  std::vector<std::string> response_formats;
};

// Reads --response-format-file: a JSON array of response_format objects, or a JSONL file with one
// per line. A bare JSON schema (an object without "type") becomes
// {"type": "json_schema", "json_schema": {"name": "schema_<i>", "schema": ...}}.
Result<std::vector<std::string>> read_response_formats(const std::string& path);

// Checks extra_body_json (an object) and that chat requests have text prompts' support.
Status validate(const RequestOptions& options);

// The JSON body of one streaming request for `prompt`. Token-id prompts go to /v1/completions
// as a list of ids; chat requests need text prompts (kInvalidArgument otherwise).
// `index`: the request's position in the run (picks its response_format).
Result<std::string> build_request_body(const RequestOptions& options, const PromptSpec& prompt,
                                       size_t index = 0);

// What one SSE event of the stream says.
struct StreamChunk {
  bool done = false;         // the "[DONE]" sentinel
  bool has_content = false;  // a choice carries output (text, delta content or reasoning, ids)
  bool has_usage = false;
  int64_t prompt_tokens = 0;         // usage.prompt_tokens
  int64_t completion_tokens = 0;     // usage.completion_tokens
  std::string finish_reason;         // of the first choice that has one
  std::optional<std::string> error;  // the server streamed an error object
};

// Parses one event's data. Malformed JSON is kInvalidArgument (a protocol failure).
Result<StreamChunk> parse_stream_chunk(std::string_view data, ApiKind api);

}  // namespace kite::bench
