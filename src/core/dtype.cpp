#include "core/dtype.h"

#include <array>
#include <cmath>

#include "core/check.h"

namespace kite {
namespace {

constexpr std::array<DTypeInfo, 14> kInfos = {{
    {"F32", 1, 4, false},
    {"F16", 1, 2, false},
    {"BF16", 1, 2, false},
    {"F8_E4M3", 1, 1, false},
    {"I8", 1, 1, false},
    {"U8", 1, 1, false},
    {"I32", 1, 4, false},
    {"I64", 1, 8, false},
    {"Q8_0", 32, 34, true},
    {"Q4_0", 32, 18, true},
    {"Q4_1", 32, 20, true},
    {"Q4_K", 256, 144, true},
    {"Q5_K", 256, 176, true},
    {"Q6_K", 256, 210, true},
}};

}  // namespace

const DTypeInfo& dtype_info(DType dtype) {
  auto i = static_cast<size_t>(dtype);
  KITE_CHECK_LT(i, kInfos.size());
  return kInfos[i];
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (size_t i = 0; i < kInfos.size(); ++i) {
    if (kInfos[i].name == name) return static_cast<DType>(i);
  }
  return std::nullopt;
}

int64_t dtype_bytes(DType dtype, int64_t n) {
  const DTypeInfo& info = dtype_info(dtype);
  KITE_CHECK_EQ(n % info.block_elems, 0) << dtype_name(dtype);
  return n / info.block_elems * info.block_bytes;
}

float f16_to_f32_slow(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      u = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 0x1f) {
    u = sign | 0x7f800000u | mant << 13;
  } else {
    u = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                        // below the smallest normal half
    if (abs < 0x33000000u) return sign;           // < 2^-25 rounds to zero
    // Subnormal half: value = mant * 2^-24.
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // e in [102, 112] -> shift in [14, 24]
    uint32_t half = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
    return sign | static_cast<uint16_t>(half);
  }
  uint32_t v = abs - ((127 - 15) << 23);
  v += 0xfffu + ((v >> 13) & 1u);  // round to nearest even on the 13 dropped bits
  return sign | static_cast<uint16_t>(v >> 13);
}

float fp8e4m3_to_f32(uint8_t v) {
  const float sign = (v & 0x80) ? -1.0f : 1.0f;
  const int exp = (v >> 3) & 0xf;
  const int mant = v & 0x7;
  if (exp == 0xf && mant == 0x7) return std::nanf("");
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -9);  // subnormal: m/8 * 2^-6
  return sign * std::ldexp(1.0f + static_cast<float>(mant) / 8.0f, exp - 7);
}

uint8_t f32_to_fp8e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  const float a = std::fabs(f);
  if (a >= 448.0f) return sign | 0x7e;  // saturate to max finite
  // Below 2^-6 the codes are subnormal: value = m * 2^-9, m in [0, 8] (8 is the smallest
  // normal, whose code is also 8). Scaling by 2^9 is exact; rint rounds half to even.
  if (a < 0.015625f) return sign | static_cast<uint8_t>(std::nearbyint(a * 512.0f));
  int e = 0;
  const float m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  // 3 mantissa bits: a = (1 + q/8) * 2^(e-1); q = (2m - 1) * 8 = 16m - 8, exact in float.
  int q = static_cast<int>(std::nearbyint(16.0f * m - 8.0f));
  int exp = e - 1 + 7;
  if (q == 8) {
    q = 0;
    ++exp;
  }
  const int code = (exp << 3) | q;
  return sign | static_cast<uint8_t>(code > 0x7e ? 0x7e : code);
}

}  // namespace kite
