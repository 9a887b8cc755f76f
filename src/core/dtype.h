// Element types of tensors, and scalar conversions between them and float.
//
// Block-quantized types (GGUF's Q8_0, Q4_K, ...) pack `block_elems` values into `block_bytes`;
// their rows are always whole blocks.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace kite {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kF8E4M3,
  kI8,
  kU8,
  kI32,
  kI64,
  kQ8_0,  // 32 values: f16 scale + 32 x int8
  kQ4_0,  // 32 values: f16 scale + 16 bytes of nibbles (value - 8)
  kQ4_1,  // 32 values: f16 scale + f16 min + 16 bytes of nibbles
  kQ4_K,  // 256 values: super-block with 8 sub-blocks, 6-bit scales/mins
  kQ5_K,  // 256 values: as Q4_K plus a high bit per value
  kQ6_K,  // 256 values: 16 sub-blocks, 8-bit scales, 6-bit values
};

struct DTypeInfo {
  std::string_view name;  // "F32", "BF16", "Q4_K", ...
  int block_elems;        // values per block (1 for plain types)
  int block_bytes;        // bytes per block (element size for plain types)
  bool quantized;         // a block-quantized type
};

const DTypeInfo& dtype_info(DType dtype);
inline std::string_view dtype_name(DType dtype) { return dtype_info(dtype).name; }
// Parses the names dtype_info uses (case-sensitive, as safetensors/GGUF write them).
std::optional<DType> dtype_from_name(std::string_view name);

// Bytes of `n` consecutive values. REQUIRES: n % block_elems == 0.
int64_t dtype_bytes(DType dtype, int64_t n);

// ---- bfloat16 ----------------------------------------------------------------------------------
struct bf16_t {
  uint16_t bits;
};

inline float bf16_to_f32(bf16_t v) {
  uint32_t u = static_cast<uint32_t>(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even; NaN stays NaN (quiet).
inline bf16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16_t{static_cast<uint16_t>((u >> 16) | 0x40)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16_t{static_cast<uint16_t>(u >> 16)};
}

// ---- IEEE float16 ------------------------------------------------------------------------------
struct f16_t {
  uint16_t bits;
};

float f16_to_f32_slow(uint16_t h);
uint16_t f32_to_f16_bits(float f);  // round to nearest even, overflow to inf

inline float f16_to_f32(f16_t v) { return f16_to_f32_slow(v.bits); }
inline f16_t f32_to_f16(float f) { return f16_t{f32_to_f16_bits(f)}; }

// ---- FP8 E4M3 (OCP "fn" variant: no inf, max 448, NaN = 0x7f/0xff) ------------------------------
float fp8e4m3_to_f32(uint8_t v);
uint8_t f32_to_fp8e4m3(float f);  // round to nearest even, saturates to +-448

}  // namespace kite
