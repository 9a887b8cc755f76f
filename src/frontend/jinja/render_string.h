// Renders a template string with arbitrary top-level variables, in the same environment as chat
// templates. For the interpreter's tests, the fuzzer and debugging tools; the engine uses
// ChatTemplate.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "frontend/jinja/chat_template.h"

namespace kite::jinja {

// `context_json` is a JSON object whose members become template variables ("" = none).
// `date_string` as in ChatTemplateInputs. Errors are mapped exactly as ChatTemplate does.
Result<std::string> render_string(std::string_view source, std::string_view context_json,
                                  const ChatTemplateLimits& limits = {},
                                  std::optional<std::string> date_string = std::nullopt);

}  // namespace kite::jinja
