#include "checkpoint/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "safetensors_writer.h"
#include "support/test_util.h"

namespace kite {
namespace {

using testing::safetensors_bytes;

const std::string kReal =
    std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k/model.safetensors";

Result<SafetensorsFile> parse(const std::vector<uint8_t>& b) {
  return SafetensorsFile::parse_bytes(b.data(), b.size(), "test.safetensors");
}

void expect_error(const std::vector<uint8_t>& b, StatusCode code, const std::string& needle) {
  auto r = parse(b);
  ASSERT_FALSE(r.ok()) << "expected an error containing '" << needle << "'";
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().to_string();
}

std::vector<uint8_t> one_tensor(const std::string& entry, size_t data_bytes) {
  return safetensors_bytes(R"({"w": )" + entry + "}", std::vector<uint8_t>(data_bytes, 0));
}

TEST(SafetensorsTest, ReadsTinyStories) {
  auto f = SafetensorsFile::open(kReal);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->tensors().size(), 20u);
  EXPECT_EQ(f->metadata().at("model.embed_tokens.weight"), "lm_head.weight");
  EXPECT_EQ(f->metadata().at("format"), "pt");
  const SafetensorsTensor* t = f->find("model.layers.0.mlp.down_proj.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::kF32);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{128, 384}));
  auto v = f->view(*t);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->to_string(), "F32[128, 384]");
  // The view points at bytes [8 + header + begin, ...) of the file.
  const auto bytes = testing::read_bytes(kReal);
  uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  float first;
  std::memcpy(&first, bytes.data() + 8 + header_len + t->begin, 4);
  EXPECT_EQ(v->as<float>()[0], first);
  EXPECT_EQ(f->find("model.embed_tokens.weight"), nullptr);  // only aliased in metadata
}

TEST(SafetensorsTest, OtherDtypesParseButDoNotView) {
  auto b = one_tensor(R"({"dtype": "F64", "shape": [2], "data_offsets": [0, 16]})", 16);
  auto f = parse(b);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_FALSE(f->tensors()[0].dtype.has_value());
  auto v = f->view(f->tensors()[0]);
  EXPECT_EQ(v.status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(v.status().message(), "tensor 'w' has dtype F64, which kite does not support");
  auto b5 = one_tensor(R"({"dtype": "F32", "shape": [1,1,1,1,2], "data_offsets": [0, 8]})", 8);
  auto f5 = parse(b5);
  ASSERT_TRUE(f5.ok());
  EXPECT_EQ(f5->view(f5->tensors()[0]).status().code(), StatusCode::kUnimplemented);
  // Zero-size tensors are legal.
  auto b0 = one_tensor(R"({"dtype": "BF16", "shape": [0, 4], "data_offsets": [0, 0]})", 0);
  EXPECT_TRUE(parse(b0).ok());
}

TEST(SafetensorsErrorTest, TruncatedAtEveryHeaderLength) {
  const auto full = testing::read_bytes(kReal);
  uint64_t header_len;
  std::memcpy(&header_len, full.data(), 8);
  for (size_t n = 0; n < 8 + header_len + 64; ++n) {
    std::vector<uint8_t> b(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
    auto r = parse(b);
    ASSERT_FALSE(r.ok()) << n;
    ASSERT_EQ(r.status().code(), StatusCode::kDataLoss) << n << ": " << r.status().to_string();
  }
  expect_error({1, 2, 3}, StatusCode::kDataLoss, "truncated: 3 bytes");
  std::vector<uint8_t> cut(full.begin(), full.end() - 1);
  expect_error(cut, StatusCode::kDataLoss,
               "tensor 'model.norm.weight' (bytes [2623488, 2624000) of the data section) runs "
               "past the end of the file (data section has 2623999 bytes)");
}

TEST(SafetensorsErrorTest, HeaderLengthPastTheEnd) {
  auto b = testing::read_bytes(kReal);
  const uint64_t huge = uint64_t{1} << 60;
  std::memcpy(b.data(), &huge, 8);
  expect_error(b, StatusCode::kDataLoss,
               "header length 1152921504606846976 runs past the end of the file");
}

TEST(SafetensorsErrorTest, MalformedHeaders) {
  expect_error(safetensors_bytes("{\"w\": ", {}), StatusCode::kInvalidArgument,
               "safetensors header: malformed JSON");
  expect_error(safetensors_bytes("[1]", {}), StatusCode::kInvalidArgument,
               "safetensors header must be a JSON object, got array");
  expect_error(one_tensor("7", 0), StatusCode::kInvalidArgument,
               "tensor 'w': entry must be an object, got integer");
  expect_error(one_tensor(R"({"shape": [1], "data_offsets": [0, 4]})", 4),
               StatusCode::kInvalidArgument, "tensor 'w': missing field 'dtype'");
  expect_error(one_tensor(R"({"dtype": "F99", "shape": [1], "data_offsets": [0, 4]})", 4),
               StatusCode::kInvalidArgument, "tensor 'w': unknown dtype 'F99'");
  expect_error(one_tensor(R"({"dtype": "F32", "shape": 4, "data_offsets": [0, 4]})", 4),
               StatusCode::kInvalidArgument, "tensor 'w': field 'shape' must be a list");
  expect_error(one_tensor(R"({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]})", 4),
               StatusCode::kInvalidArgument,
               "tensor 'w': a dimension must be a non-negative integer, got integer");
  expect_error(one_tensor(R"({"dtype": "F32", "shape": [1]})", 4), StatusCode::kInvalidArgument,
               "tensor 'w': field 'data_offsets' must be a list [begin, end]");
  expect_error(one_tensor(R"({"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]})", 4),
               StatusCode::kInvalidArgument,
               "tensor 'w': data_offsets[1] must be a non-negative integer, got string");
  expect_error(safetensors_bytes(R"({"__metadata__": {"a": 1}})", {}), StatusCode::kInvalidArgument,
               "__metadata__ value of 'a' must be a string");
  expect_error(safetensors_bytes(R"({"__metadata__": []})", {}), StatusCode::kInvalidArgument,
               "__metadata__ must be an object of strings");
}

TEST(SafetensorsErrorTest, OffsetsAndSizes) {
  expect_error(one_tensor(R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 4]})", 8),
               StatusCode::kDataLoss,
               "tensor 'w': data_offsets [0, 4] hold 4 bytes but F32 of shape [2] needs 8");
  expect_error(one_tensor(R"({"dtype": "F32", "shape": [0], "data_offsets": [8, 4]})", 8),
               StatusCode::kDataLoss, "tensor 'w': data_offsets [8, 4] end before they begin");
  expect_error(one_tensor(R"({"dtype": "F32", "shape": [4], "data_offsets": [0, 16]})", 8),
               StatusCode::kDataLoss, "tensor 'w' (bytes [0, 16) of the data section) runs past");
  expect_error(
      one_tensor(R"({"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]})",
                 8),
      StatusCode::kDataLoss, "tensor 'w': shape is too large");
  expect_error(safetensors_bytes(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                 std::vector<uint8_t>(12)),
               StatusCode::kDataLoss, "tensors 'a' and 'b' overlap in the data section");
}

}  // namespace
}  // namespace kite
