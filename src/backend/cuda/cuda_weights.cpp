#include "backend/cuda/cuda_weights.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "backend/cuda/cuda_check.h"
#include "checkpoint/dequant.h"
#include "core/dtype.h"
#include "core/logging.h"
#include "core/thread_pool.h"

namespace kite::cuda {

namespace {

constexpr size_t kAlign = 256;
constexpr size_t kStagingBytes = 64u << 20;

// One destination region of the arena and the host tensors that fill it, in row order.
struct Region {
  std::string what;
  std::vector<TensorView> parts;  // rows are concatenated
  size_t offset = 0;
  size_t bytes = 0;  // bytes on the device
};

// Converts `n` values of `src` starting at element `first` into f32. For block-quantized dtypes
// `first` and `n` are whole blocks (the caller chunks in multiples of 256 values).
void to_f32(const TensorView& src, int64_t first, int64_t n, float* dst) {
  switch (src.dtype) {
    case DType::kF32:
      std::memcpy(dst, static_cast<const float*>(src.data) + first, n * 4);
      return;
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src.data) + first;
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(bf16_t{s[i]});
      return;
    }
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src.data) + first;
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(f16_t{s[i]});
      return;
    }
    default: {
      const char* at = static_cast<const char*>(src.data) + dtype_bytes(src.dtype, first);
      dequantize_row(src.dtype, at, dst, n);
      return;
    }
  }
}

// Converts `n` values of `src` starting at element `first` into bf16 (block rules as to_f32).
void to_bf16(const TensorView& src, int64_t first, int64_t n, uint16_t* dst) {
  switch (src.dtype) {
    case DType::kBF16:
      std::memcpy(dst, static_cast<const uint16_t*>(src.data) + first, n * 2);
      return;
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src.data) + first;
      for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(f16_to_f32(f16_t{s[i]})).bits;
      return;
    }
    case DType::kF32: {
      const float* s = static_cast<const float*>(src.data) + first;
      for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(s[i]).bits;
      return;
    }
    default: {
      constexpr int64_t kPiece = 1 << 16;  // values per dequantized piece (whole blocks)
      thread_local std::vector<float> tmp(kPiece);
      for (int64_t done = 0; done < n; done += kPiece) {
        const int64_t m = std::min(kPiece, n - done);
        const char* at = static_cast<const char*>(src.data) + dtype_bytes(src.dtype, first + done);
        dequantize_row(src.dtype, at, tmp.data(), m);
        for (int64_t i = 0; i < m; ++i) dst[done + i] = f32_to_bf16(tmp[i]).bits;
      }
      return;
    }
  }
}

// Streams every region into the arena: host conversion into one pinned buffer while the other
// is being copied to the device. The conversion (for BF16 checkpoints a copy out of the page
// cache, whose page faults dominate) runs on a thread pool: one thread reaches ~2-4 GB/s, the
// copy engine ~25 GB/s.
Status upload(const std::vector<Region>& regions, char* arena, DType dtype, cudaStream_t stream) {
  const size_t es = dtype == DType::kF32 ? 4 : 2;
  ThreadPool pool(static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 16u)));
  auto convert = [&](const TensorView& part, int64_t first, int64_t n, char* staged) {
    // Pieces of whole 256-value groups keep quantization blocks intact.
    const int64_t groups = (n + 255) / 256;
    pool.parallel_for(
        groups,
        [&](int64_t b, int64_t e) {
          const int64_t lo = b * 256, hi = std::min(e * 256, n);
          if (dtype == DType::kF32) {
            to_f32(part, first + lo, hi - lo, reinterpret_cast<float*>(staged) + lo);
          } else {
            to_bf16(part, first + lo, hi - lo, reinterpret_cast<uint16_t*>(staged) + lo);
          }
        },
        /*min_chunk=*/4096);  // 1M values
  };
  KITE_ASSIGN_OR_RETURN(PinnedBuffer a, PinnedBuffer::allocate(kStagingBytes, "weight staging"));
  KITE_ASSIGN_OR_RETURN(PinnedBuffer b, PinnedBuffer::allocate(kStagingBytes, "weight staging"));
  cudaEvent_t done[2];
  KITE_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&done[0], cudaEventDisableTiming));
  KITE_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&done[1], cudaEventDisableTiming));
  PinnedBuffer* bufs[2] = {&a, &b};
  bool pending[2] = {false, false};
  int cur = 0;
  size_t fill = 0;       // bytes staged in bufs[cur]
  size_t dst_start = 0;  // arena offset of bufs[cur][0]
  Status st;
  auto flush = [&]() -> Status {
    if (fill == 0) return ok_status();
    KITE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(arena + dst_start, bufs[cur]->data(), fill,
                                              cudaMemcpyHostToDevice, stream));
    KITE_CUDA_RETURN_IF_ERROR(cudaEventRecord(done[cur], stream));
    pending[cur] = true;
    cur ^= 1;
    if (pending[cur]) KITE_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(done[cur]));
    pending[cur] = false;
    fill = 0;
    return ok_status();
  };
  for (const Region& r : regions) {
    size_t dst = r.offset;
    for (const TensorView& part : r.parts) {
      const int64_t n = part.numel();
      int64_t done_elems = 0;
      while (done_elems < n) {
        if (fill > 0 && dst_start + fill != dst) {
          st = flush();
          if (!st.ok()) break;
        }
        if (fill == 0) dst_start = dst;
        // Whole 256-value pieces keep quantization blocks intact (every GGUF block divides 256).
        const int64_t room = static_cast<int64_t>((kStagingBytes - fill) / es) / 256 * 256;
        const int64_t take = std::min(room, n - done_elems);
        convert(part, done_elems, take, static_cast<char*>(bufs[cur]->data()) + fill);
        fill += static_cast<size_t>(take) * es;
        dst += static_cast<size_t>(take) * es;
        done_elems += take;
        if (fill == kStagingBytes) {
          st = flush();
          if (!st.ok()) break;
        }
      }
      if (!st.ok()) break;
    }
    if (!st.ok()) break;
  }
  if (st.ok()) st = flush();
  const Status sync = cuda_status(cudaStreamSynchronize(stream), "weight upload");
  KITE_CUDA_WARN(cudaEventDestroy(done[0]));
  KITE_CUDA_WARN(cudaEventDestroy(done[1]));
  KITE_RETURN_IF_ERROR(st);
  return sync;
}

}  // namespace

Result<DeviceWeights> load_device_weights(const ModelGraph& graph, const ModelWeights& weights,
                                          DType dtype, cudaStream_t stream) {
  if (dtype != DType::kBF16 && dtype != DType::kF32) {
    return unimplemented("device weights are BF16 or F32, not " + std::string(dtype_name(dtype)));
  }
  const size_t es = dtype == DType::kF32 ? 4 : 2;
  std::vector<Region> regions;
  size_t total = 0;
  auto add = [&](std::string what, std::vector<TensorView> parts) -> size_t {
    Region r;
    r.what = std::move(what);
    r.parts = std::move(parts);
    for (const TensorView& p : r.parts) r.bytes += static_cast<size_t>(p.numel()) * es;
    r.offset = total;
    total = align_up(total + r.bytes, kAlign);
    regions.push_back(std::move(r));
    return regions.back().offset;
  };
  constexpr size_t kNone = SIZE_MAX;
  struct Offsets {
    size_t data = kNone, bias = kNone;
  };
  std::vector<Offsets> offsets(graph.weights.size());
  std::map<const void*, size_t> uploaded;  // host tensor -> arena offset (tied embeddings)
  DeviceWeights w;
  for (size_t i = 0; i < graph.weights.size(); ++i) {
    const Weight& b = weights.weights[i];
    const WeightDecl& d = graph.weights[i];
    if (!b.present()) continue;
    if (static_cast<WeightId>(i) == graph.rope_freqs) {
      // RoPE frequency factors feed the host's inverse-frequency table only.
      w.rope_freq_factors.assign(b.parts[0].as<float>(), b.parts[0].as<float>() + d.rows);
      continue;
    }
    if (b.quantized()) {
      return unimplemented(d.name + ": " + std::string(quant_scheme_name(b.scales.scheme)) +
                           " weights are not supported by the CUDA backend yet");
    }
    for (const TensorView& p : b.parts) {
      if (!can_dequantize(p.dtype)) {
        return unimplemented("weight " + d.name + " has dtype " + std::string(dtype_name(p.dtype)) +
                             ", which the CUDA backend cannot convert to BF16");
      }
    }
    const void* key = b.parts.size() == 1 ? b.parts[0].data : nullptr;
    if (auto it = key != nullptr ? uploaded.find(key) : uploaded.end(); it != uploaded.end()) {
      offsets[i].data = it->second;
    } else {
      offsets[i].data = add(d.name, b.parts);
      if (key != nullptr) uploaded.emplace(key, offsets[i].data);
    }
    if (!b.bias.empty()) offsets[i].bias = add(d.name + ".bias", b.bias);
  }
  const auto t0 = std::chrono::steady_clock::now();
  KITE_ASSIGN_OR_RETURN(w.arena, DeviceBuffer::allocate(total, "model weights"));
  w.bytes = total;
  w.dtype = dtype;
  char* base = w.arena.as<char>();
  KITE_RETURN_IF_ERROR(upload(regions, base, dtype, stream).with_context("uploading weights"));
  auto at = [&](size_t off) -> const void* { return off == kNone ? nullptr : base + off; };
  w.weights.resize(graph.weights.size());
  for (size_t i = 0; i < graph.weights.size(); ++i) {
    DeviceWeight& dw = w.weights[i];
    dw.data = at(offsets[i].data);
    dw.bias = at(offsets[i].bias);
    dw.rows = graph.weights[i].rows;
    dw.cols = graph.weights[i].cols;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  KITE_LOG_INFO("cuda: loaded {} weight tensors, {:.2f} GiB of {} in {:.2f} s ({:.1f} GB/s)",
                regions.size(), static_cast<double>(total) / (1u << 30), dtype_name(dtype), secs,
                static_cast<double>(total) / 1e9 / std::max(secs, 1e-9));
  return w;
}

}  // namespace kite::cuda
