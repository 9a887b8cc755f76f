// Built with -ffp-contract=off (see CMakeLists.txt): `a * b - c` must round twice, as the
// reference does, or results would differ from it in the last bit.
#include "checkpoint/dequant.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"

namespace kite {
namespace {

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32_slow(h);
}

void dequant_q8_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const auto* q = reinterpret_cast<const int8_t*>(b + 2);
  for (int i = 0; i < 32; ++i) y[i] = d * static_cast<float>(q[i]);
}

void dequant_q4_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint8_t* qs = b + 2;
  for (int i = 0; i < 16; ++i) {
    y[i] = d * static_cast<float>((qs[i] & 0x0f) - 8);
    y[i + 16] = d * static_cast<float>((qs[i] >> 4) - 8);
  }
}

void dequant_q4_1(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const float m = f16_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int i = 0; i < 16; ++i) {
    const float lo = d * static_cast<float>(qs[i] & 0x0f);
    const float hi = d * static_cast<float>(qs[i] >> 4);
    y[i] = lo + m;
    y[i + 16] = hi + m;
  }
}

// The 8 six-bit (scale, min) pairs of a Q4_K/Q5_K super-block, packed in 12 bytes:
// pairs 0-3 in the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); pairs 4-7 take their low
// 4 bits from the nibbles of bytes 8-11 and their top 2 bits from the top of bytes 0-7.
void k_scale_min(const uint8_t* s, int j, uint8_t* sc, uint8_t* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
    *mn = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// Q4_K (qh == nullptr) and Q5_K: 8 sub-blocks of 32; sub-blocks 2c and 2c+1 are the low and
// high nibbles of qs[32c .. 32c+32); Q5_K's fifth bit of sub-block j is bit j of qh[l].
void dequant_k4_5(const uint8_t* b, const uint8_t* qh, const uint8_t* qs, float* y) {
  const float d = f16_at(b);
  const float dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, mn;
    k_scale_min(scales, j, &sc, &mn);
    const float ds = d * static_cast<float>(sc);
    const float dm = dmin * static_cast<float>(mn);
    const uint8_t* q = qs + 32 * (j / 2);
    const int shift = (j % 2) * 4;
    for (int l = 0; l < 32; ++l) {
      int v = (q[l] >> shift) & 0x0f;
      if (qh != nullptr) v |= ((qh[l] >> j) & 1) << 4;
      const float a = ds * static_cast<float>(v);
      y[32 * j + l] = a - dm;
    }
  }
}

void dequant_q4_k(const uint8_t* b, float* y) { dequant_k4_5(b, nullptr, b + 16, y); }
void dequant_q5_k(const uint8_t* b, float* y) { dequant_k4_5(b, b + 16, b + 48, y); }

// Q6_K: value v = 128h + 32k + l (h < 2, k < 4, l < 32) has low 4 bits from
// ql[64h + 32(k % 2) + l] (low nibble for k < 2, high for k >= 2) and top 2 bits from
// qh[32h + l] >> 2k; 16 sub-blocks of 16 values each have an int8 scale.
void dequant_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  for (int h = 0; h < 2; ++h) {
    for (int k = 0; k < 4; ++k) {
      for (int l = 0; l < 32; ++l) {
        const int v = 128 * h + 32 * k + l;
        const uint8_t low_byte = ql[64 * h + 32 * (k % 2) + l];
        const int low = k < 2 ? (low_byte & 0x0f) : (low_byte >> 4);
        const int high = (qh[32 * h + l] >> (2 * k)) & 3;
        const float ds = d * static_cast<float>(scales[v / 16]);
        y[v] = ds * static_cast<float>((low | (high << 4)) - 32);
      }
    }
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_fn(DType dtype) {
  switch (dtype) {
    case DType::kQ8_0:
      return dequant_q8_0;
    case DType::kQ4_0:
      return dequant_q4_0;
    case DType::kQ4_1:
      return dequant_q4_1;
    case DType::kQ4_K:
      return dequant_q4_k;
    case DType::kQ5_K:
      return dequant_q5_k;
    case DType::kQ6_K:
      return dequant_q6_k;
    default:
      return nullptr;
  }
}

}  // namespace

bool can_dequantize(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 ||
         block_fn(dtype) != nullptr;
}

void dequantize_row(DType dtype, const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, p, static_cast<size_t>(n) * 4);
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = f16_to_f32_slow(h);
      }
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = bf16_to_f32(bf16_t{h});
      }
      return;
    default:
      break;
  }
  const BlockFn fn = block_fn(dtype);
  KITE_CHECK(fn != nullptr) << "cannot dequantize " << dtype_name(dtype);
  const DTypeInfo& info = dtype_info(dtype);
  KITE_CHECK_EQ(n % info.block_elems, 0);
  for (int64_t b = 0; b < n / info.block_elems; ++b) {
    fn(p + b * info.block_bytes, dst + b * info.block_elems);
  }
}

Result<std::vector<float>> dequantize_to_f32(const TensorView& t) {
  if (!can_dequantize(t.dtype)) {
    return unimplemented(fmt::format("cannot dequantize {} tensors", dtype_name(t.dtype)));
  }
  KITE_CHECK(t.is_contiguous());
  std::vector<float> out(static_cast<size_t>(t.numel()));
  dequantize_row(t.dtype, t.data, out.data(), t.numel());
  return out;
}

Result<std::vector<float>> dequantize_fp8(const TensorView& w, const TensorView& scale,
                                          QuantScheme scheme, int64_t block_rows,
                                          int64_t block_cols) {
  if (w.dtype != DType::kF8E4M3 || w.ndim != 2 || !w.is_contiguous()) {
    return invalid_argument("dequantize_fp8: the weight must be a contiguous F8_E4M3 matrix, got " +
                            w.to_string());
  }
  const int64_t rows = w.dim(0), cols = w.dim(1);
  KITE_ASSIGN_OR_RETURN(std::vector<float> s, dequantize_to_f32(scale));
  int64_t srows = 1, scols = 1;  // scale grid: row r, col c use s[(r / br) * scols + c / bc]
  int64_t br = rows, bc = cols;
  switch (scheme) {
    case QuantScheme::kFp8PerTensor:
      break;
    case QuantScheme::kFp8PerChannel:
      srows = rows;
      br = 1;
      break;
    case QuantScheme::kFp8Block:
      if (block_rows <= 0 || block_cols <= 0) {
        return invalid_argument("dequantize_fp8: block sizes must be positive");
      }
      br = block_rows;
      bc = block_cols;
      srows = (rows + br - 1) / br;
      scols = (cols + bc - 1) / bc;
      break;
    case QuantScheme::kNone:
      return invalid_argument("dequantize_fp8: no quantization scheme");
  }
  if (static_cast<int64_t>(s.size()) != srows * scols) {
    return invalid_argument("dequantize_fp8: scale " + scale.to_string() + " does not fit a " +
                            w.to_string() + " weight (" + std::to_string(srows * scols) +
                            " scales expected)");
  }
  std::vector<float> out(static_cast<size_t>(rows * cols));
  const auto* q = static_cast<const uint8_t*>(w.data);
  float lut[256];
  for (int i = 0; i < 256; ++i) lut[i] = fp8e4m3_to_f32(static_cast<uint8_t>(i));
  for (int64_t r = 0; r < rows; ++r) {
    const float* srow = s.data() + (r / br) * scols;
    for (int64_t c = 0; c < cols; ++c) {
      out[static_cast<size_t>(r * cols + c)] = lut[q[r * cols + c]] * srow[c / bc];
    }
  }
  return out;
}

void quantize_fp8_rows(const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w + r * cols;
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(row[c]));
    const float s = amax > 0.0f ? amax / 448.0f : 1.0f;
    scale[r] = s;
    for (int64_t c = 0; c < cols; ++c) q[r * cols + c] = f32_to_fp8e4m3(row[c] / s);
  }
}

}  // namespace kite
