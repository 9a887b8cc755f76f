// libFuzzer target: any bytes through GgufFile::parse_bytes, then every accessor the tokenizer
// and the loader use. Parsing must never crash or read out of bounds; a parsed file's tensors
// must lie inside the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "checkpoint/dequant.h"
#include "checkpoint/gguf.h"
#include "checkpoint/loaders.h"

namespace {

void require(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = kite::GgufFile::parse_bytes(data, size, "fuzz.gguf");
  if (!f.ok()) {
    require(!f.status().message().empty(), "error message");
    return 0;
  }
  for (const auto& [key, value] : f->metadata()) {
    (void)f->get_string(key);
    (void)f->get_int(key);
    (void)f->get_u32(key);
    (void)f->get_u64(key);
    (void)f->get_float(key);
    (void)f->get_bool(key);
    (void)f->get_array_strings(key);
    (void)f->get_array_f32(key);
    (void)f->get_array_i32(key);
    (void)f->get_array_size(key);
  }
  const uint8_t* end = data + size;
  for (const kite::GgufTensorInfo& t : f->tensors()) {
    const uint8_t* p = f->tensor_data(t);
    require(p >= data && p <= end && t.nbytes <= static_cast<uint64_t>(end - p),
            "tensor inside the input");
    auto view = f->tensor_view(t);
    if (!view.ok()) continue;
    require(view->nbytes() == static_cast<int64_t>(t.nbytes), "view size");
    // Dequantize small tensors (bounds the work per input).
    if (kite::can_dequantize(view->dtype) && view->numel() <= (1 << 16)) {
      auto values = kite::dequantize_to_f32(*view);
      require(values.ok(), "dequantize");
    }
  }
  (void)kite::model_config_from_gguf(*f);
  return 0;
}
