// --load-format dummy: random weights of the configured shape, in the checkpoint's dtype (an 8B
// BF16 config takes 16 GB, never an F32 copy). Values are a deterministic function of the seed,
// the tensor name and the element index, whatever the thread count.
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <functional>

#include "checkpoint/loaders.h"
#include "core/thread_pool.h"

namespace kite {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t name_hash(std::string_view s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char ch : s) h = (h ^ static_cast<uint8_t>(ch)) * 1099511628211ull;
  return h;
}

void store_value(DType dtype, void* data, int64_t i, float v) {
  switch (dtype) {
    case DType::kF32:
      static_cast<float*>(data)[i] = v;
      break;
    case DType::kF16:
      static_cast<f16_t*>(data)[i] = f32_to_f16(v);
      break;
    default:
      static_cast<bf16_t*>(data)[i] = f32_to_bf16(v);
      break;
  }
}

// Fills n values: center + uniform(-scale, scale).
void fill(DType dtype, void* data, int64_t n, uint64_t key, float center, float scale,
          ThreadPool* pool) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  pool->parallel_for(chunks, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t end = std::min(n, (c + 1) * kChunk);
      for (int64_t i = c * kChunk; i < end; i += 2) {
        const uint64_t r = splitmix64(key ^ static_cast<uint64_t>(i) * 0x2545f4914f6cdd1dull);
        // Two 24-bit uniforms in [0, 1) per 64 random bits.
        const float u0 = static_cast<float>(r >> 40) * (1.0f / 16777216.0f);
        const float u1 = static_cast<float>((r >> 8) & 0xffffff) * (1.0f / 16777216.0f);
        store_value(dtype, data, i, center + scale * (2 * u0 - 1));
        if (i + 1 < end) store_value(dtype, data, i + 1, center + scale * (2 * u1 - 1));
      }
    }
  });
}

// MemAvailable from /proc/meminfo in bytes, or -1 when unknown.
int64_t available_memory_bytes() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (f == nullptr) return -1;
  char line[256];
  int64_t kb = -1;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::sscanf(line, "MemAvailable: %ld kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

}  // namespace

Status make_dummy_weights(const std::vector<TensorSpec>& specs, const LoadOptions& options,
                          WeightStore* store) {
  const ModelConfig& c = store->config();
  const DType dtype = c.torch_dtype;
  if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16) {
    return unimplemented(fmt::format("dummy weights in {} are not supported", dtype_name(dtype)));
  }
  int64_t total = 0;
  for (const TensorSpec& spec : specs) {
    int64_t numel = 1;
    for (int64_t d : spec.shape) numel *= d;
    total += dtype_bytes(dtype, numel);
  }
  // Fail cleanly instead of being killed by the OOM killer half way through.
  const int64_t available = available_memory_bytes();
  if (available >= 0 && total > available) {
    return resource_exhausted(fmt::format(
        "dummy weights of this config need {:.2f} GiB ({}), only {:.2f} GiB of memory is "
        "available",
        static_cast<double>(total) / (1 << 30), dtype_name(dtype),
        static_cast<double>(available) / (1 << 30)));
  }
  ThreadPool pool(options.num_threads);
  for (const TensorSpec& spec : specs) {
    int64_t numel = 1;
    for (int64_t d : spec.shape) numel *= d;
    const int64_t bytes = dtype_bytes(dtype, numel);
    HostBuffer buf;
    try {
      buf = HostBuffer(static_cast<size_t>(bytes));
    } catch (const std::bad_alloc&) {
      return resource_exhausted(
          fmt::format("cannot allocate {} bytes for dummy tensor '{}'", bytes, spec.name));
    }
    // Matrices: uniform with variance 1/in_features, so activations keep their scale through
    // a layer; embeddings uniform(-1, 1); norm weights 1 +- 0.1; biases +- 0.1.
    float center = 0.0f, scale = 0.1f;
    switch (spec.init) {
      case TensorSpec::Init::kEmbedding:
        scale = 1.0f;
        break;
      case TensorSpec::Init::kMatrix:
        scale = std::sqrt(3.0f / static_cast<float>(spec.shape[1]));
        break;
      case TensorSpec::Init::kNorm:
        center = 1.0f;
        break;
      case TensorSpec::Init::kBias:
        break;
    }
    fill(dtype, buf.data(), numel, splitmix64(options.seed) ^ name_hash(spec.name), center, scale,
         &pool);
    const TensorView view = TensorView::contiguous(nullptr, dtype, spec.shape.data(),
                                                   static_cast<int>(spec.shape.size()));
    TensorView t = view;
    t.data = store->own(std::move(buf));
    store->put(spec.name, t);
  }
  return ok_status();
}

}  // namespace kite
