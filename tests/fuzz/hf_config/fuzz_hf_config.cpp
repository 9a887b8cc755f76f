// libFuzzer target: any text through parse_hf_config and parse_generation_config. A config
// that parses must satisfy ModelConfig::validate() and give a consistent tensor list.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "checkpoint/config.h"
#include "checkpoint/generation_config.h"
#include "checkpoint/weights.h"
#include "models/load.h"

namespace {

void require(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = kite::parse_hf_config(text);
  if (c.ok()) {
    require(c->validate().ok(), "parsed config validates");
    require(c->num_attention_heads % c->num_key_value_heads == 0, "heads divide");
    // The tensor list is linear in the layer count; keep the work per input bounded.
    if (c->num_hidden_layers <= 64) {
      const auto specs = kite::expected_tensors(*c);
      require(!specs.empty(), "tensors expected");
    }
  } else {
    require(!c.status().message().empty(), "error message");
  }
  (void)kite::parse_generation_config(text);
  return 0;
}
