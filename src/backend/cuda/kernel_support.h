// What the CUDA kernels are instantiated for: dtypes, head dims, GQA groups, GEMV row counts and
// alignments. One table, read by both sides of every kernel:
//   - the planners (attention_path, plan_attention, flashinfer_prefill_supports, gemv_supported,
//     choose_compute_dtype, CudaModelRunner::create) turn values outside it into kUnimplemented
//     at load time or into another path (cuBLASLt, the prefill kernel);
//   - the launchers' dispatch (dispatch.cuh) turns a runtime value into a compile-time constant
//     by walking the same set, and fails loudly (KITE_CHECK naming the op and the value) on
//     anything outside it.
// So a shape the planner accepts always has a kernel, and adding an instantiation is one edit
// here. Plain C++ (no CUDA syntax): the host planners include it.
#pragma once

#include <string>
#include <type_traits>

#include "core/dtype.h"

namespace kite::cuda {

// Printable form of a table value (dtype name, or the integer).
inline std::string value_name(DType d) { return std::string(dtype_name(d)); }
template <typename V>
std::string value_name(V v) {
  if constexpr (std::is_enum_v<V>) {
    return std::to_string(static_cast<long long>(v));
  } else {
    return std::to_string(v);
  }
}

// A compile-time set of the values (ints, enums, DTypes) a kernel is instantiated for; ascending
// where the dispatch picks the smallest member >= a value (dispatch_at_least).
template <auto... kValues>
struct ValueSet {
  template <typename V>
  static constexpr bool contains(V v) {
    return ((v == kValues) || ...);
  }
  // "64, 128, 256"
  static std::string to_string() {
    std::string s;
    ((s += (s.empty() ? "" : ", ") + value_name(kValues)), ...);
    return s;
  }
};

// ---- element-wise kernels ----------------------------------------------------------------------
// Embedding, RMSNorm (+ residual, + row gather), RoPE + KV write (+ q/k norm), SiLU·mul: bf16 (the
// model path, Hugging Face's roundings) and f32 (the float32 compute mode, the CPU backend's
// arithmetic).
using ElementwiseDTypes = ValueSet<DType::kBF16, DType::kF32>;

// ---- attention ---------------------------------------------------------------------------------
// Tensor-core path: the split-KV decode kernel and the mma.sync prefill kernel (bf16 operands).
using TensorCoreDTypes = ValueSet<DType::kBF16>;
using TensorCoreHeadDims = ValueSet<64, 128, 256>;
// The prefill kernel packs a GQA group's rows into one 64-row tile: group <= 64.
constexpr int kPrefillMaxGroup = 64;
// The decode kernel is instantiated for these GQA groups; a group runs on the smallest one >= it
// (3 on 4, 5..8 on 8). Larger groups have no decode kernel: plan_attention sends those sequences
// to the prefill kernel.
using DecodeGroups = ValueSet<1, 2, 4, 8>;
constexpr int kDecodeMaxGroup = 8;

// Generic path (one warp per (token, q head); small models): even head dims up to 32, any group.
using GenericDTypes = ValueSet<DType::kBF16, DType::kF32>;
constexpr int kGenericMaxHeadDim = 32;

// FlashInfer's sm90 prefill (builds with KITE_FLASHINFER_INCLUDE): bf16, these head dims, on
// compute capability 9.x (its kernels are sm_90a code).
using FlashInferHeadDims = ValueSet<64, 128>;
constexpr int kFlashInferCcMajor = 9;

inline bool tensor_core_attention_supports(int head_dim, int group) {
  return TensorCoreHeadDims::contains(head_dim) && group >= 1 && group <= kPrefillMaxGroup;
}
inline bool decode_kernel_supports_group(int group) {
  return group >= 1 && group <= kDecodeMaxGroup;
}
inline bool generic_attention_supports(int head_dim) {
  return head_dim >= 2 && head_dim <= kGenericMaxHeadDim && head_dim % 2 == 0;
}

// ---- linear layers -----------------------------------------------------------------------------
// GEMV (decode-sized steps): bf16 weights and activations, m in [1, kGemvMaxM] rows, k a multiple
// of kGemvKAlign elements (16-byte vectors) with 16-byte aligned rows; bf16 or f32 outputs.
using GemvDTypes = ValueSet<DType::kBF16>;
// Weights: bf16, or FP8 E4M3 with per-row or 128x128-block F32 scales (kGemvFp8ScaleBlock).
using GemvWeightDTypes = ValueSet<DType::kBF16, DType::kF8E4M3>;
constexpr int kGemvFp8ScaleBlock = 128;
using GemvOutDTypes = ValueSet<DType::kBF16, DType::kF32>;
constexpr int kGemvMaxM = 8;
using GemvRows = ValueSet<1, 2, 3, 4, 5, 6, 7, 8>;  // one instantiation per m <= kGemvMaxM
static_assert(GemvRows::contains(kGemvMaxM) && !GemvRows::contains(kGemvMaxM + 1));
constexpr int kGemvKAlign = 8;

// ---- mixture of experts (moe.h) ----------------------------------------------------------------
// Route and permute keep per-expert tables in shared memory / registers: at most this many
// experts and top-k. Expert weights: the compute dtype (ElementwiseDTypes), no FP8, no biases.
constexpr int kMoeMaxExperts = 1024;
constexpr int kMoeMaxTopK = 32;

// cuBLASLt GEMM: (input, output) dtypes bf16 -> bf16, bf16 -> f32, f32 -> f32.
inline bool gemm_supports(DType in, DType out) {
  return (in == DType::kBF16 && (out == DType::kBF16 || out == DType::kF32)) ||
         (in == DType::kF32 && out == DType::kF32) ||
         (in == DType::kF8E4M3 && out == DType::kBF16);  // scaled FP8 (Hopper and newer)
}

}  // namespace kite::cuda
