// Hand-made blocks with known values (the exhaustive comparison with the gguf package's
// dequantisers is tests/conformance/model/quant_conformance_test.cpp).
#include "checkpoint/dequant.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace kite {
namespace {

void put_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16_bits(v);
  std::memcpy(p, &h, 2);
}

TEST(DequantTest, Q8_0) {
  uint8_t b[34] = {};
  put_f16(b, 0.5f);
  for (int i = 0; i < 32; ++i) b[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(i - 16));
  float y[32];
  dequantize_row(DType::kQ8_0, b, y, 32);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y[i], 0.5f * (i - 16));
}

TEST(DequantTest, Q4_0AndQ4_1NibbleOrder) {
  uint8_t b0[18] = {};
  put_f16(b0, 2.0f);
  for (int i = 0; i < 16; ++i) b0[2 + i] = static_cast<uint8_t>(i | (15 - i) << 4);
  float y[32];
  dequantize_row(DType::kQ4_0, b0, y, 32);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(y[i], 2.0f * (i - 8));       // low nibbles: values 0..15
    EXPECT_EQ(y[16 + i], 2.0f * (7 - i));  // high nibbles: values 16..31
  }
  uint8_t b1[20] = {};
  put_f16(b1, 0.25f);
  put_f16(b1 + 2, -1.0f);
  for (int i = 0; i < 16; ++i) b1[4 + i] = static_cast<uint8_t>(i | i << 4);
  dequantize_row(DType::kQ4_1, b1, y, 32);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(y[i], 0.25f * i - 1.0f);
    EXPECT_EQ(y[16 + i], 0.25f * i - 1.0f);
  }
}

TEST(DequantTest, Q6_KLayout) {
  // d = 1, scale of sub-block s = s + 1, every 6-bit value 33 (q - 32 = 1): x = s + 1.
  uint8_t b[210] = {};
  for (int i = 0; i < 128; ++i) b[i] = 0x11;       // low nibbles 1
  for (int i = 0; i < 64; ++i) b[128 + i] = 0xaa;  // top bits 2 (binary 10) in every pair
  for (int s = 0; s < 16; ++s) b[192 + s] = static_cast<uint8_t>(s + 1);
  put_f16(b + 208, 1.0f);
  std::vector<float> y(256);
  dequantize_row(DType::kQ6_K, b, y.data(), 256);
  for (int v = 0; v < 256; ++v) EXPECT_EQ(y[v], static_cast<float>(v / 16 + 1)) << v;
}

TEST(DequantTest, Q4_KScalesAndMins) {
  // d = 1, dmin = 1; sub-block j has scale j + 1 and min j; every nibble 3: x = 3 (j + 1) - j.
  uint8_t b[144] = {};
  put_f16(b, 1.0f);
  put_f16(b + 2, 1.0f);
  uint8_t* s = b + 4;
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(j + 1);  // scales 0-3 (6 bits, top bits 0)
    s[j + 4] = static_cast<uint8_t>(j);  // mins 0-3
  }
  for (int j = 4; j < 8; ++j) s[j + 4] = static_cast<uint8_t>((j + 1) | j << 4);  // low 4 bits
  for (int i = 0; i < 128; ++i) b[16 + i] = 0x33;
  std::vector<float> y(256);
  dequantize_row(DType::kQ4_K, b, y.data(), 256);
  for (int v = 0; v < 256; ++v) {
    const int j = v / 32;
    EXPECT_EQ(y[v], static_cast<float>(3 * (j + 1) - j)) << v;
  }
}

TEST(DequantTest, PlainTypesAndErrors) {
  const uint16_t bf = f32_to_bf16(1.5f).bits;
  float y;
  dequantize_row(DType::kBF16, &bf, &y, 1);
  EXPECT_EQ(y, 1.5f);
  EXPECT_TRUE(can_dequantize(DType::kQ5_K));
  EXPECT_FALSE(can_dequantize(DType::kI32));
  int32_t x = 0;
  TensorView t(&x, DType::kI32, {1});
  EXPECT_EQ(dequantize_to_f32(t).status().code(), StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace kite
