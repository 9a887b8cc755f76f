#include "core/tensor.h"

#include <gtest/gtest.h>

namespace kite {
namespace {

TEST(TensorTest, ContiguousShapeAndBytes) {
  float data[24];
  TensorView t(data, DType::kF32, {2, 3, 4});
  EXPECT_EQ(t.ndim, 3);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.strides[0], 12);
  EXPECT_EQ(t.strides[2], 1);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.nbytes(), 96);
  EXPECT_EQ(t.row_bytes(), 16);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_EQ(t.to_string(), "F32[2, 3, 4]");
}

TEST(TensorTest, QuantizedRows) {
  TensorView t(nullptr, DType::kQ4_K, {8, 512});
  EXPECT_EQ(t.row_bytes(), 288);
  EXPECT_EQ(t.nbytes(), 8 * 288);
}

TEST(TensorTest, NonContiguous) {
  TensorView t(nullptr, DType::kF32, {4, 4});
  t.strides[0] = 8;  // every other row of an [8, 4] tensor... as a view with a pitch
  EXPECT_FALSE(t.is_contiguous());
}

TEST(TensorTest, HostBufferIsAligned) {
  HostBuffer b(100);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, 0u);
  EXPECT_EQ(b.size(), 100u);
  HostBuffer moved = std::move(b);
  EXPECT_EQ(moved.size(), 100u);
}

}  // namespace
}  // namespace kite
