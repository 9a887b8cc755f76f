// GenerationConfig: the sampling defaults a Hugging Face model ships in
// generation_config.json (the engine uses them where a request leaves a parameter unset).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "kite/status.h"

namespace kite {

struct GenerationConfig {
  std::optional<bool> do_sample;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
  std::optional<int64_t> max_new_tokens;
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;  // an int or a list in the file
  std::optional<int32_t> pad_token_id;
};

// Parses generation_config.json. Unknown keys are ignored; mistyped known keys are
// kInvalidArgument naming the key; malformed JSON is kInvalidArgument.
Result<GenerationConfig> parse_generation_config(std::string_view json_text);

}  // namespace kite
