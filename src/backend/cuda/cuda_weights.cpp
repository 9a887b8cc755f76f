#include "backend/cuda/cuda_weights.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8_quant.h"
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
  DType dtype = DType::kBF16;     // on the device: bf16/f32 (converted) or F8E4M3 (copied)
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
Status upload(const std::vector<Region>& regions, char* arena, cudaStream_t stream) {
  ThreadPool pool(static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 16u)));
  auto convert = [&](const TensorView& part, DType dtype, int64_t first, int64_t n,
                     char* staged) {
    if (dtype == DType::kF8E4M3) {  // FP8 weights travel as they are
      std::memcpy(staged, static_cast<const uint8_t*>(part.data) + first, static_cast<size_t>(n));
      return;
    }
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
    const size_t es = static_cast<size_t>(dtype_bytes(r.dtype, 1));
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
        convert(part, r.dtype, done_elems, take, static_cast<char*>(bufs[cur]->data()) + fill);
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
                                          DType dtype, bool fp8_online, const DeviceContext& dev,
                                          cudaStream_t stream) {
  if (dtype != DType::kBF16 && dtype != DType::kF32) {
    return unimplemented("device weights are BF16 or F32, not " + std::string(dtype_name(dtype)));
  }
  struct Arena {
    std::vector<Region> regions;
    size_t total = 0;
    size_t add(std::string what, std::vector<TensorView> parts, DType d) {
      Region r;
      r.what = std::move(what);
      r.parts = std::move(parts);
      r.dtype = d;
      for (const TensorView& p : r.parts) r.bytes += static_cast<size_t>(dtype_bytes(d, p.numel()));
      r.offset = total;
      total = align_up(total + r.bytes, kAlign);
      regions.push_back(std::move(r));
      return regions.back().offset;
    }
    // Space for a device-made tensor (online FP8 weights and their scales).
    size_t reserve(size_t bytes) {
      const size_t o = total;
      total = align_up(total + bytes, kAlign);
      return o;
    }
  };
  Arena main, temp;  // temp: bf16 copies of the linears --quantization fp8 quantizes on the device
  constexpr size_t kNone = SIZE_MAX;
  struct Offsets {
    size_t data = kNone, bias = kNone, scale = kNone;
    size_t temp = kNone;  // online FP8: the bf16 source in the temp arena
    DType dtype = DType::kBF16;
    int scale_block = 0;
  };
  std::vector<Offsets> offsets(graph.weights.size());
  std::map<const void*, size_t> uploaded;  // host tensor -> arena offset (tied embeddings)
  std::vector<std::vector<float>> host_scales;
  host_scales.reserve(graph.weights.size());
  DeviceWeights w;
  std::set<WeightId> moe_routers;
  for (const MoeDecl& m : graph.moes) moe_routers.insert(m.router);
  for (size_t i = 0; i < graph.weights.size(); ++i) {
    const Weight& b = weights.weights[i];
    const WeightDecl& d = graph.weights[i];
    Offsets& o = offsets[i];
    o.dtype = dtype;
    if (!b.present()) continue;
    if (static_cast<WeightId>(i) == graph.rope_freqs) {
      // RoPE frequency factors feed the host's inverse-frequency table only.
      w.rope_freq_factors.assign(b.parts[0].as<float>(), b.parts[0].as<float>() + d.rows);
      continue;
    }
    // MoE experts and routers stay in the compute dtype (the MoE kernels take no FP8).
    const bool online = fp8_online && d.kind == WeightKind::kLinear &&
                        d.shard != ShardDim::kVocab && !b.quantized() && d.expert < 0 &&
                        !moe_routers.contains(static_cast<WeightId>(i));
    if (b.quantized() || online) {
      if (dtype != DType::kBF16) {
        return unimplemented(d.name + ": FP8 weights need the bfloat16 compute mode");
      }
      o.dtype = DType::kF8E4M3;
    }
    if (!b.quantized()) {
      for (const TensorView& p : b.parts) {
        if (!can_dequantize(p.dtype)) {
          return unimplemented("weight " + d.name + " has dtype " +
                               std::string(dtype_name(p.dtype)) +
                               ", which the CUDA backend cannot convert to BF16");
        }
      }
    }
    if (online) {
      o.temp = temp.add(d.name, b.parts, DType::kBF16);
      o.data = main.reserve(static_cast<size_t>(d.rows * d.cols));
      o.scale = main.reserve(static_cast<size_t>(d.rows) * 4);
    } else if (b.quantized()) {
      o.data = main.add(d.name, b.parts, DType::kF8E4M3);
      // Scales as the kernels read them: one per row (per-tensor and per-channel), or the
      // 128x128 block grid stacked part after part.
      std::vector<float> sc;
      const QuantScales& q = b.scales;
      if (q.scheme == QuantScheme::kFp8Block) {
        if (q.block_rows != 128 || q.block_cols != 128) {
          return unimplemented(d.name + ": FP8 block scales of " + std::to_string(q.block_rows) +
                               "x" + std::to_string(q.block_cols) +
                               " (the CUDA backend runs 128x128 blocks)");
        }
        o.scale_block = 128;
      }
      for (size_t p = 0; p < b.parts.size(); ++p) {
        KITE_ASSIGN_OR_RETURN(std::vector<float> s, dequantize_to_f32(q.weight_scale[p]));
        const int64_t rows = b.parts[p].dim(0);
        if (q.scheme == QuantScheme::kFp8PerTensor) {
          sc.insert(sc.end(), static_cast<size_t>(rows), s[0]);
        } else {
          if (q.scheme == QuantScheme::kFp8Block && p + 1 < b.parts.size() && rows % 128 != 0) {
            return unimplemented(d.name + ": block-scaled parts fused into one matrix must have "
                                          "multiples of 128 rows");
          }
          sc.insert(sc.end(), s.begin(), s.end());
        }
      }
      host_scales.push_back(std::move(sc));
      const std::vector<float>& hs = host_scales.back();
      o.scale = main.add(d.name + ".scale",
                         {TensorView(const_cast<float*>(hs.data()), DType::kF32,
                                     {static_cast<int64_t>(hs.size())})},
                         DType::kF32);
    } else if (d.vector_offset != 0.f) {
      // Gemma's (1 + w) norms: w + offset in F32 on the host (the CPU backend's values), then
      // converted to the compute dtype like any other tensor.
      std::vector<float> v(static_cast<size_t>(d.rows));
      int64_t at_row = 0;
      for (const TensorView& part : b.parts) {
        if (!can_dequantize(part.dtype)) {
          return unimplemented("weight " + d.name + " has dtype " +
                               std::string(dtype_name(part.dtype)));
        }
        to_f32(part, 0, part.numel(), v.data() + at_row);
        at_row += part.numel();
      }
      for (float& x : v) x += d.vector_offset;
      host_scales.push_back(std::move(v));
      const std::vector<float>& hv = host_scales.back();
      o.data = main.add(d.name,
                        {TensorView(const_cast<float*>(hv.data()), DType::kF32,
                                    {static_cast<int64_t>(hv.size())})},
                        dtype);
    } else {
      const void* key = b.parts.size() == 1 ? b.parts[0].data : nullptr;
      if (auto it = key != nullptr ? uploaded.find(key) : uploaded.end(); it != uploaded.end()) {
        o.data = it->second;
      } else {
        o.data = main.add(d.name, b.parts, dtype);
        if (key != nullptr) uploaded.emplace(key, o.data);
      }
    }
    if (!b.bias.empty()) o.bias = main.add(d.name + ".bias", b.bias, dtype);
  }
  const auto t0 = std::chrono::steady_clock::now();
  KITE_ASSIGN_OR_RETURN(w.arena, DeviceBuffer::allocate(main.total, "model weights"));
  w.bytes = main.total;
  w.dtype = dtype;
  char* base = w.arena.as<char>();
  KITE_RETURN_IF_ERROR(upload(main.regions, base, stream).with_context("uploading weights"));
  auto at = [&](size_t off) -> const void* { return off == kNone ? nullptr : base + off; };
  if (!temp.regions.empty()) {
    // --quantization fp8: the bf16 linears go to a temporary arena, then each is quantized per
    // row on the device (quantize_fp8: scale = max|row| / 448, as quantize_fp8_rows).
    KITE_ASSIGN_OR_RETURN(DeviceBuffer tmp,
                          DeviceBuffer::allocate(temp.total, "bf16 weights to quantize"));
    KITE_RETURN_IF_ERROR(
        upload(temp.regions, tmp.as<char>(), stream).with_context("uploading weights"));
    for (size_t i = 0; i < graph.weights.size(); ++i) {
      const Offsets& o = offsets[i];
      if (o.temp == kNone) continue;
      QuantizeFp8Params qp;
      qp.x = tmp.as<char>() + o.temp;
      qp.x_stride = graph.weights[i].cols;
      qp.rows = static_cast<int>(graph.weights[i].rows);
      qp.cols = static_cast<int>(graph.weights[i].cols);
      qp.out.q = reinterpret_cast<uint8_t*>(base + o.data);
      qp.out.q_stride = graph.weights[i].cols;
      qp.out.scale = reinterpret_cast<float*>(base + o.scale);
      quantize_fp8(qp, dev, stream);
    }
    KITE_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(stream), "quantizing weights"));
  }
  w.weights.resize(graph.weights.size());
  for (size_t i = 0; i < graph.weights.size(); ++i) {
    DeviceWeight& dw = w.weights[i];
    const Offsets& o = offsets[i];
    dw.data = at(o.data);
    dw.bias = at(o.bias);
    dw.scale = static_cast<const float*>(at(o.scale));
    dw.scale_block = o.scale_block;
    dw.dtype = o.dtype;
    dw.rows = graph.weights[i].rows;
    dw.cols = graph.weights[i].cols;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  KITE_LOG_INFO("cuda: loaded {} weight tensors, {:.2f} GiB ({}{}) in {:.2f} s ({:.1f} GB/s)",
                main.regions.size() + temp.regions.size(),
                static_cast<double>(main.total) / (1u << 30), dtype_name(dtype),
                fp8_online ? ", linears quantized to FP8 per channel" : "", secs,
                static_cast<double>(main.total) / 1e9 / std::max(secs, 1e-9));
  return w;
}

}  // namespace kite::cuda
