// FrontendTextIo: TextIo over src/frontend (Tokenizer, IncrementalDetokenizer,
// StopStringMatcher) and src/frontend/jinja (ChatTemplate).
#pragma once

#include <memory>
#include <optional>

#include "engine/text_io.h"
#include "frontend/jinja/chat_template.h"
#include "frontend/tokenizer.h"

namespace kite {

// Parses the tokenizer's default chat template when it has one. Errors: the template's parse
// error (kInvalidArgument / kUnimplemented).
Result<std::shared_ptr<const TextIo>> make_frontend_text_io(
    std::shared_ptr<const Tokenizer> tokenizer);

}  // namespace kite
