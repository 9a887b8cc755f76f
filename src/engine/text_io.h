// TextIo: the engine's view of the model's tokenizer and chat template (implemented on top of
// src/frontend). Everything here is immutable and thread-safe except ChoiceDecoder, which one
// choice of one request owns on the engine thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kite/engine.h"
#include "kite/status.h"
#include "scheduler/request_info.h"

namespace kite {

class TextIo {
 public:
  virtual ~TextIo() = default;

  virtual Result<std::vector<int32_t>> tokenize(std::string_view text,
                                                bool add_special_tokens) const = 0;
  virtual Result<std::string> detokenize(const std::vector<int32_t>& ids,
                                         bool skip_special_tokens) const = 0;
  virtual bool has_chat_template() const = 0;
  virtual Result<std::string> apply_chat_template(std::string_view messages_json,
                                                  const ChatTemplateOptions& options) const = 0;

  // Incremental text of one choice, with the request's stop strings.
  class ChoiceDecoder {
   public:
    virtual ~ChoiceDecoder() = default;
    // Appends generated tokens and returns the text that became final. Text that may still
    // change (an incomplete UTF-8 sequence, a possible start of a stop string) is held back.
    // When a stop string matched, *stop is set to it; the returned text ends where the stop
    // string starts (or after it, with include_stop_str_in_output) and the choice is over.
    virtual std::string append(std::span<const int32_t> token_ids,
                               std::optional<std::string>* stop) = 0;
    // The held-back text, when the choice ends for another reason. It may still complete a
    // stop string (*stop is set then, and the text ends before it).
    virtual std::string flush(std::optional<std::string>* stop) = 0;
  };
  // A decoder for one choice of `request` (its prompt is the decoding context).
  virtual std::unique_ptr<ChoiceDecoder> new_decoder(const RequestInfo& request) const = 0;
  // Whether new_decoder can match stop strings (false: requests with `stop` are rejected).
  virtual bool supports_stop_strings() const = 0;
};

}  // namespace kite
