// libFuzzer target: any bytes as a chat template, parsed and rendered over a fixed
// conversation. Every outcome must be a Status (never a crash, hang, leak or sanitizer report).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "frontend/jinja/chat_template.h"

namespace {

const kite::ChatTemplateInputs& inputs() {
  static const kite::ChatTemplateInputs in = [] {
    kite::ChatTemplateInputs x;
    x.messages_json = R"([
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "Hi <b> & “ü” 😀"},
      {"role": "assistant", "content": "<think>\nhm\n</think>\n\nHello", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"type": "function", "function": {"name": "f", "arguments": "{\"x\": [1, 2.5, null]}"}}]},
      {"role": "tool", "content": {"temp": 18}},
      {"role": "user", "content": [{"type": "text", "text": "part"}, {"type": "image"}]}])";
    x.tools_json = R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Weather.", "parameters": {"type": "object", "properties": {
      "city": {"type": "string", "description": "City"},
      "days": {"type": ["integer", "null"]}, "tags": {"type": "array", "items": {"type": "string"}}},
      "required": ["city"]}}}])";
    x.add_generation_prompt = true;
    x.bos_token = "<s>";
    x.eos_token = "</s>";
    x.extra_kwargs_json = R"({"enable_thinking": false, "custom": [1, {"a": "b"}]})";
    x.date_string = "2024-07-26T10:30:00";
    return x;
  }();
  return in;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  kite::Result<kite::ChatTemplate> tmpl = kite::ChatTemplate::parse(source);
  if (!tmpl.ok()) return 0;
  kite::ChatTemplateLimits limits;  // small, so each input runs in milliseconds
  limits.max_output_bytes = 1 << 20;
  limits.max_steps = 200000;
  limits.max_depth = 200;
  (void)tmpl->render(inputs(), limits);
  return 0;
}
