// libFuzzer target: any bytes through SafetensorsFile::parse_bytes. Parsing must never crash;
// every accepted tensor must lie inside the input, sized as its dtype and shape say.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "checkpoint/safetensors.h"

namespace {

void require(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = kite::SafetensorsFile::parse_bytes(data, size, "fuzz.safetensors");
  if (!f.ok()) {
    require(!f.status().message().empty(), "error message");
    return 0;
  }
  for (const kite::SafetensorsTensor& t : f->tensors()) {
    require(t.begin <= t.end && t.end <= size, "tensor inside the input");
    auto view = f->view(t);
    if (!view.ok()) continue;
    const auto* p = static_cast<const uint8_t*>(view->data);
    require(p >= data && p + (t.end - t.begin) <= data + size, "view inside the input");
    require(view->nbytes() == static_cast<int64_t>(t.end - t.begin), "view size");
  }
  for (const auto& [k, v] : f->metadata()) (void)f->find(v);
  return 0;
}
