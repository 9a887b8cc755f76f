#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace kite {
namespace {

TEST(DTypeTest, InfoAndNames) {
  EXPECT_EQ(dtype_name(DType::kBF16), "BF16");
  EXPECT_EQ(dtype_from_name("Q6_K"), DType::kQ6_K);
  EXPECT_FALSE(dtype_from_name("F128").has_value());
  EXPECT_EQ(dtype_bytes(DType::kF32, 10), 40);
  EXPECT_EQ(dtype_bytes(DType::kQ8_0, 64), 68);
  EXPECT_EQ(dtype_bytes(DType::kQ4_K, 512), 288);
  EXPECT_EQ(dtype_bytes(DType::kQ6_K, 256), 210);
}

TEST(DTypeTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f).bits, 0x3f80);
  // 1 + 2^-8 is exactly halfway between two bf16 values: ties to the even one (1.0).
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)).bits, 0x3f80);
  // 1 + 3*2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even): rounds up to even.
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)).bits, 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(-2.5f)), -2.5f);
}

TEST(DTypeTest, F16KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f).bits, 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f).bits, 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f).bits, 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f).bits, 0x7c00);               // rounds to inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)).bits, 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)).bits, 0x0000);  // tie to even: zero
  EXPECT_EQ(f16_to_f32(f16_t{0x0001}), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(f16_t{0x7c00}), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_f32(f16_t{0x7e00})));
}

TEST(DTypeTest, F16RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(f16_t{static_cast<uint16_t>(h)});
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f).bits, h) << std::hex << h;
  }
}

TEST(DTypeTest, F16RoundingMatchesDoubleReference) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-70000.0f, 70000.0f);
  for (int i = 0; i < 100000; ++i) {
    float f = dist(rng) * std::ldexp(1.0f, -static_cast<int>(rng() % 30));
    const uint16_t h = f32_to_f16(f).bits;
    const float back = f16_to_f32(f16_t{h});
    if (std::isinf(back)) continue;
    // No other half is strictly closer.
    const float up = f16_to_f32(f16_t{static_cast<uint16_t>(h + 1)});
    const float err = std::fabs(back - f);
    if (!std::isinf(up) && !std::isnan(up)) {
      ASSERT_LE(err, std::fabs(up - f)) << f;
    }
    if ((h & 0x7fff) != 0) {
      const float down = f16_to_f32(f16_t{static_cast<uint16_t>(h - 1)});
      ASSERT_LE(err, std::fabs(down - f)) << f;
    }
  }
}

TEST(DTypeTest, Fp8E4M3) {
  EXPECT_EQ(fp8e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(fp8e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(fp8e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(fp8e4m3_to_f32(0x7f)));
  EXPECT_EQ(f32_to_fp8e4m3(1.0f), 0x38);
  EXPECT_EQ(f32_to_fp8e4m3(1000.0f), 0x7e);
  EXPECT_EQ(f32_to_fp8e4m3(-1000.0f), 0xfe);
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;
    const float f = fp8e4m3_to_f32(static_cast<uint8_t>(c));
    if (f == 0.0f) continue;
    EXPECT_EQ(f32_to_fp8e4m3(f), c) << c;
  }
}

// Round to nearest, ties to the even code, saturating at 448: against a search over all codes
// (the definition), on every midpoint between neighbouring codes, just off them, and at random.
TEST(DTypeTest, Fp8RoundingMatchesTheNearestCode) {
  auto nearest = [](float f) -> uint8_t {
    const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
    const float a = std::fabs(f);
    if (a >= 448.0f) return sign | 0x7e;
    uint8_t best = 0;
    float best_err = a;
    for (uint8_t code = 1; code <= 0x7e; ++code) {
      const float err = std::fabs(fp8e4m3_to_f32(code) - a);
      if (err < best_err || (err == best_err && (code & 1) == 0 && (best & 1) != 0)) {
        best = code;
        best_err = err;
      }
    }
    return sign | best;
  };
  std::vector<float> xs;
  for (int c = 0; c < 0x7e; ++c) {
    const float lo = fp8e4m3_to_f32(static_cast<uint8_t>(c));
    const float hi = fp8e4m3_to_f32(static_cast<uint8_t>(c + 1));
    const float mid = 0.5f * (lo + hi);
    for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1000.0f)}) {
      xs.push_back(x);
      xs.push_back(-x);
    }
  }
  uint32_t state = 12345;
  for (int i = 0; i < 20000; ++i) {
    state = state * 1664525u + 1013904223u;
    const float u = static_cast<float>(state >> 8) / 16777216.0f;
    xs.push_back((u - 0.5f) * std::ldexp(1.0f, static_cast<int>(state % 24) - 12));
  }
  xs.push_back(460.0f);
  xs.push_back(-1e30f);
  for (float x : xs) EXPECT_EQ(f32_to_fp8e4m3(x), nearest(x)) << x;
}

}  // namespace
}  // namespace kite
