#include "checkpoint/gguf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "gguf_builder.h"

namespace kite {
namespace {

using testing::GgufBuilder;

const std::string kStories =
    std::string(KITE_SOURCE_DIR) + "/tests/data/models/stories260k/stories260K.gguf";
const std::string kQ8 =
    std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k-q8_0.gguf";

std::vector<uint8_t> file_bytes(const std::string& path) {
  auto text = read_file(path);
  EXPECT_TRUE(text.ok()) << text.status().to_string();
  return std::vector<uint8_t>(text->begin(), text->end());
}

Result<GgufFile> parse(const std::vector<uint8_t>& b) {
  return GgufFile::parse_bytes(b.data(), b.size(), "test.gguf");
}

// Expects a parse failure with `code` whose message contains `needle`.
void expect_error(const std::vector<uint8_t>& b, StatusCode code, const std::string& needle) {
  auto r = parse(b);
  ASSERT_FALSE(r.ok()) << "expected an error containing '" << needle << "'";
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().to_string();
}

GgufBuilder small_model() {
  GgufBuilder g;
  g.add_string("general.architecture", "llama");
  g.add_u32("llama.block_count", 1);
  g.add_f32("llama.rope.freq_base", 500000.0f);
  g.add_bool("tokenizer.ggml.add_bos_token", true);
  g.add_array_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  g.add_array_f32("tokenizer.ggml.scores", {0.0f, -1.0f, -2.5f, 3.0f});
  g.add_array_i32("tokenizer.ggml.token_type", {2, 3, 3, 1});
  std::vector<uint8_t> w(4 * 4 * 4, 0);
  for (size_t i = 0; i < w.size() / 4; ++i) {
    const float f = static_cast<float>(i);
    std::memcpy(w.data() + i * 4, &f, 4);
  }
  g.add_tensor("a.weight", {4, 4}, 0, w);
  g.add_tensor("b.weight", {32, 2}, 8, std::vector<uint8_t>(68, 1));  // 2 Q8_0 blocks
  return g;
}

TEST(GgufTest, ReadsStories260K) {
  auto f = GgufFile::open(kStories);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->metadata().size(), 19u);
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
  EXPECT_EQ(*f->get_u32("llama.embedding_length"), 64u);
  EXPECT_EQ(*f->get_u32("llama.block_count"), 5u);
  EXPECT_EQ(*f->get_u32("llama.attention.head_count_kv"), 4u);
  EXPECT_FLOAT_EQ(*f->get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  auto tokens = f->get_array_strings("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 512u);
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ(f->get_array_f32("tokenizer.ggml.scores")->size(), 512u);
  EXPECT_EQ(f->get_array_i32("tokenizer.ggml.token_type")->size(), 512u);
  EXPECT_EQ(*f->get_array_size("tokenizer.ggml.tokens"), 512u);

  ASSERT_EQ(f->tensors().size(), 48u);
  const GgufTensorInfo* emb = f->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->ggml_type, 0u);
  EXPECT_EQ(emb->shape(), (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(f->data_offset() + emb->offset, 14176u);
  auto view = f->tensor_view(*emb);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->to_string(), "F32[512, 64]");
  EXPECT_EQ(f->find_tensor("nope"), nullptr);
}

TEST(GgufTest, ReadsQ8_0File) {
  auto f = GgufFile::open(kQ8);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(*f->get_string("general.name"), "Raincandy U TinyStories 656K");
  EXPECT_TRUE(*f->get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(f->tensors().size(), 20u);
  const GgufTensorInfo* t = f->find_tensor("blk.0.ffn_down.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ggml_type, 8u);
  EXPECT_EQ(t->nbytes, 128u * 384 / 32 * 34);
  auto view = f->tensor_view(*t);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->to_string(), "Q8_0[128, 384]");
}

TEST(GgufTest, BuiltFileRoundTrips) {
  auto b = small_model().build();
  auto f = parse(b);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(*f->get_u32("llama.block_count"), 1u);
  EXPECT_EQ(*f->get_int("llama.block_count"), 1);
  EXPECT_EQ(*f->get_u64("llama.block_count"), 1u);
  EXPECT_DOUBLE_EQ(*f->get_float("llama.rope.freq_base"), 500000.0);
  EXPECT_EQ(*f->get_array_f32("tokenizer.ggml.scores"),
            (std::vector<float>{0.0f, -1.0f, -2.5f, 3.0f}));
  EXPECT_EQ(*f->get_array_i32("tokenizer.ggml.token_type"), (std::vector<int32_t>{2, 3, 3, 1}));
  EXPECT_EQ(*f->get_array_i64("tokenizer.ggml.token_type"), (std::vector<int64_t>{2, 3, 3, 1}));
  ASSERT_EQ(f->tensors().size(), 2u);
  const GgufTensorInfo& a = f->tensors()[0];
  const float* data = reinterpret_cast<const float*>(f->tensor_data(a));
  EXPECT_EQ(data[5], 5.0f);
  EXPECT_EQ(f->tensors()[1].offset, 64u);
  EXPECT_EQ(f->tensors()[1].nbytes, 68u);
}

TEST(GgufTest, AccessorErrorsNameTheKey) {
  auto b = small_model().build();
  auto f = parse(b);
  ASSERT_TRUE(f.ok());
  auto missing = f->get_u32("llama.nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("llama.nope"), std::string::npos);
  auto wrong = f->get_string("llama.block_count");
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong.status().message(),
            "GGUF metadata key 'llama.block_count' must be a STRING, got UINT32");
  EXPECT_EQ(f->get_u32("llama.rope.freq_base").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f->get_f32("general.architecture").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f->get_array_f32("tokenizer.ggml.tokens").status().message(),
            "GGUF metadata key 'tokenizer.ggml.tokens' must be an ARRAY of FLOAT32, got ARRAY of "
            "STRING");
  EXPECT_EQ(f->get_array_strings("tokenizer.ggml.scores").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(f->get_bool("llama.block_count").status().code(), StatusCode::kInvalidArgument);
}

TEST(GgufTest, IntegerRangeChecks) {
  GgufBuilder g;
  g.add_u64("big", uint64_t{1} << 40);
  g.add_i32("neg", -3);
  g.add_raw("big_array", 9, [] {
    auto b = GgufBuilder::pod(uint32_t{10});
    GgufBuilder::append(&b, GgufBuilder::pod(uint64_t{1}));
    GgufBuilder::append(&b, GgufBuilder::pod(uint64_t{1} << 40));
    return b;
  }());
  auto b = g.build();
  auto f = parse(b);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(*f->get_u64("big"), uint64_t{1} << 40);
  EXPECT_EQ(f->get_u32("big").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*f->get_int("neg"), -3);
  EXPECT_EQ(f->get_u32("neg").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f->get_u64("neg").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f->get_array_i64("big_array")->at(0), int64_t{1} << 40);
  auto narrow = f->get_array_i32("big_array");
  EXPECT_EQ(narrow.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(narrow.status().message().find("does not fit in 32 bits"), std::string::npos);
}

TEST(GgufTest, NestedArrays) {
  GgufBuilder g;
  // ARRAY of 2 ARRAYs of INT32: [[1, 2], [3]].
  auto b = GgufBuilder::pod(uint32_t{9});
  GgufBuilder::append(&b, GgufBuilder::pod(uint64_t{2}));
  for (const std::vector<int32_t>& inner : {std::vector<int32_t>{1, 2}, std::vector<int32_t>{3}}) {
    GgufBuilder::append(&b, GgufBuilder::pod(uint32_t{5}));
    GgufBuilder::append(&b, GgufBuilder::pod(static_cast<uint64_t>(inner.size())));
    for (int32_t v : inner) GgufBuilder::append(&b, GgufBuilder::pod(v));
  }
  g.add_raw("nested", 9, b);
  auto bytes = g.build();
  auto f = parse(bytes);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  const GgufValue* v = f->find("nested");
  ASSERT_NE(v, nullptr);
  ASSERT_EQ(v->items.size(), 2u);
  EXPECT_EQ(v->items[0].count, 2u);
  EXPECT_TRUE(v->items[0].is_numeric_array());
  EXPECT_EQ(v->items[1].count, 1u);
}

TEST(GgufTest, VersionTwoAndOtherAlignment) {
  GgufBuilder g = small_model();
  g.version = 2;
  g.alignment = 64;
  g.add_u32("general.alignment", 64);
  // Offsets were computed for 32: recompute for 64.
  g.tensors[1].offset = 64;
  auto b = g.build();
  auto f = parse(b);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
}

// ---- corrupt files ---------------------------------------------------------------------------

TEST(GgufErrorTest, NotGguf) {
  expect_error({}, StatusCode::kInvalidArgument, "not a GGUF file");
  expect_error({'G', 'G'}, StatusCode::kInvalidArgument, "not a GGUF file");
  auto st = file_bytes(std::string(KITE_SOURCE_DIR) +
                       "/tests/data/models/tinystories-656k/model.safetensors");
  expect_error(st, StatusCode::kInvalidArgument, "not a GGUF file");
}

TEST(GgufErrorTest, Versions) {
  GgufBuilder g = small_model();
  g.version = 1;
  expect_error(g.build(), StatusCode::kUnimplemented, "GGUF v1 is not supported");
  g.version = 7;
  expect_error(g.build(), StatusCode::kUnimplemented, "unknown GGUF version 7");
  g.version = 0x03000000;  // a big-endian file's version read little-endian
  expect_error(g.build(), StatusCode::kUnimplemented, "big-endian");
}

// Every prefix of the real file's header and tensor infos, and a few cuts into the data, is a
// clean kDataLoss (never a crash or a success).
TEST(GgufErrorTest, EveryTruncationOfRealFile) {
  const auto full = file_bytes(kStories);
  auto f = parse(full);
  ASSERT_TRUE(f.ok());
  const size_t data_offset = f->data_offset();
  std::vector<size_t> cuts;
  for (size_t n = 4; n < data_offset; n += (n < 4096 ? 1 : 7)) cuts.push_back(n);
  for (size_t n : {data_offset + 1, full.size() / 2, full.size() - 1}) cuts.push_back(n);
  for (size_t n : cuts) {
    std::vector<uint8_t> b(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
    auto r = parse(b);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes parsed";
    ASSERT_EQ(r.status().code(), StatusCode::kDataLoss) << n << ": " << r.status().to_string();
  }
  expect_error(std::vector<uint8_t>(full.begin(), full.end() - 1), StatusCode::kDataLoss,
               "runs past the end of the file");
}

TEST(GgufErrorTest, CountsThatCannotFit) {
  auto full = file_bytes(kStories);
  auto b = full;
  const uint64_t huge = uint64_t{1} << 62;
  std::memcpy(b.data() + 8, &huge, 8);  // tensor count
  expect_error(b, StatusCode::kDataLoss, "tensor count 4611686018427387904 does not fit");
  b = full;
  std::memcpy(b.data() + 16, &huge, 8);  // metadata count
  expect_error(b, StatusCode::kDataLoss, "metadata count 4611686018427387904 does not fit");

  GgufBuilder g;
  auto arr = GgufBuilder::pod(uint32_t{8});
  GgufBuilder::append(&arr, GgufBuilder::pod(uint64_t{1} << 61));
  g.add_raw("tokens", 9, arr);
  expect_error(g.build(), StatusCode::kDataLoss, "array of 2305843009213693952 STRING");

  GgufBuilder g2;
  auto arr2 = GgufBuilder::pod(uint32_t{6});
  GgufBuilder::append(&arr2, GgufBuilder::pod(~uint64_t{0}));
  g2.add_raw("scores", 9, arr2);
  expect_error(g2.build(), StatusCode::kDataLoss, "runs past the end of the file");
}

// An array of strings one element over the per-array limit is refused from its count, before
// any element is allocated (the bytes are there: 8 per empty string).
TEST(GgufErrorTest, StringArrayOverTheElementLimit) {
  const uint64_t count = (uint64_t{1} << 22) + 1;
  auto arr = GgufBuilder::pod(uint32_t{8});
  GgufBuilder::append(&arr, GgufBuilder::pod(count));
  arr.resize(arr.size() + count * 8, 0);
  GgufBuilder g;
  g.add_raw("tokenizer.ggml.tokens", 9, std::move(arr));
  expect_error(g.build(), StatusCode::kDataLoss, "array of 4194305 STRING");
  expect_error(g.build(), StatusCode::kDataLoss,
               "is over the limit of 4194304 elements");
}

TEST(GgufErrorTest, StringLengthPastEnd) {
  auto b = file_bytes(kStories);
  // The first key's length is at offset 24.
  const uint64_t len = 1u << 30;
  std::memcpy(b.data() + 24, &len, 8);
  expect_error(b, StatusCode::kDataLoss, "metadata key length 1073741824 at offset 24 runs past");
}

TEST(GgufErrorTest, UnknownValueTypes) {
  GgufBuilder g;
  g.add_raw("x", 13, {0, 0, 0, 0});
  expect_error(g.build(), StatusCode::kDataLoss, "key 'x': unknown metadata value type 13");
  GgufBuilder g2;
  auto arr = GgufBuilder::pod(uint32_t{99});
  GgufBuilder::append(&arr, GgufBuilder::pod(uint64_t{1}));
  g2.add_raw("y", 9, arr);
  expect_error(g2.build(), StatusCode::kDataLoss, "unknown array element type 99");
}

TEST(GgufErrorTest, ArraysNestedTooDeep) {
  // 100 levels of ARRAY of ARRAY of ... would recurse: rejected at depth 8.
  std::vector<uint8_t> arr;
  for (int i = 0; i < 100; ++i) {
    GgufBuilder::append(&arr, GgufBuilder::pod(uint32_t{9}));
    GgufBuilder::append(&arr, GgufBuilder::pod(uint64_t{1}));
  }
  GgufBuilder::append(&arr, GgufBuilder::pod(uint32_t{4}));
  GgufBuilder::append(&arr, GgufBuilder::pod(uint64_t{0}));
  GgufBuilder g;
  g.add_raw("deep", 9, arr);
  expect_error(g.build(), StatusCode::kDataLoss, "arrays nested deeper than 8");
}

TEST(GgufErrorTest, DuplicateKeysAndTensors) {
  GgufBuilder g = small_model();
  g.add_u32("llama.block_count", 2);
  expect_error(g.build(), StatusCode::kDataLoss, "duplicate metadata key 'llama.block_count'");
  GgufBuilder g2 = small_model();
  g2.add_tensor("a.weight", {4}, 0, std::vector<uint8_t>(16));
  expect_error(g2.build(), StatusCode::kDataLoss, "duplicate tensor name 'a.weight'");
}

TEST(GgufErrorTest, BadTensorShapesAndTypes) {
  GgufBuilder g = small_model();
  g.tensors[0].ne = {4, 4, 1, 1, 1};
  expect_error(g.build(), StatusCode::kDataLoss, "'a.weight' has 5 dimensions");
  g = small_model();
  g.tensors[0].ne = {};
  expect_error(g.build(), StatusCode::kDataLoss, "'a.weight' has 0 dimensions");
  g = small_model();
  g.tensors[0].ne = {4, 0};
  expect_error(g.build(), StatusCode::kDataLoss, "invalid dimension 0");
  g = small_model();
  g.tensors[0].ne = {uint64_t{1} << 40, uint64_t{1} << 40};
  expect_error(g.build(), StatusCode::kDataLoss, "invalid dimension");
  g = small_model();
  g.tensors[0].ggml_type = 4;  // removed from ggml
  expect_error(g.build(), StatusCode::kDataLoss, "'a.weight' has unknown ggml type 4");
  g = small_model();
  g.tensors[1].ne = {16, 4};  // Q8_0 rows need multiples of 32
  expect_error(g.build(), StatusCode::kDataLoss, "not a whole number of Q8_0 blocks");
}

TEST(GgufErrorTest, TensorOffsets) {
  GgufBuilder g = small_model();
  g.tensors[1].offset = 32;  // a.weight is 64 bytes at 0
  expect_error(g.build(), StatusCode::kDataLoss, "'a.weight' and 'b.weight' overlap");
  g = small_model();
  g.tensors[1].offset = 40;
  expect_error(g.build(), StatusCode::kDataLoss, "offset 40 is not a multiple of the alignment");
  auto b = small_model().build();
  b.resize(b.size() - 1);
  expect_error(b, StatusCode::kDataLoss, "'b.weight' (bytes [64, 132)");
}

TEST(GgufErrorTest, OffsetWrapsAround) {
  GgufBuilder g = small_model();
  auto good = g.build();
  auto f = parse(good);
  ASSERT_TRUE(f.ok());
  // The last tensor info ends with b.weight's u64 offset; locate it by searching for its name.
  const std::string name = "b.weight";
  auto it = std::search(good.begin(), good.end(), name.begin(), name.end());
  ASSERT_NE(it, good.end());
  const size_t off_pos = static_cast<size_t>(it - good.begin()) + name.size() + 4 + 2 * 8 + 4;
  const uint64_t wrap = ~uint64_t{0} - 31;  // aligned, and offset + nbytes overflows
  std::memcpy(good.data() + off_pos, &wrap, 8);
  expect_error(good, StatusCode::kDataLoss, "runs past the end of the file");
}

TEST(GgufErrorTest, BadAlignment) {
  GgufBuilder g = small_model();
  g.add_u32("general.alignment", 24);
  expect_error(g.build(), StatusCode::kDataLoss, "general.alignment 24 is not a power of two");
  GgufBuilder g2 = small_model();
  g2.add_u32("general.alignment", 0);
  expect_error(g2.build(), StatusCode::kDataLoss, "general.alignment 0 is not a power of two");
  GgufBuilder g3 = small_model();
  g3.add_string("general.alignment", "32");
  expect_error(g3.build(), StatusCode::kDataLoss, "general.alignment must be UINT32, got STRING");
}

TEST(GgufErrorTest, UnsupportedTensorTypeIsUnimplementedOnView) {
  GgufBuilder g;
  g.add_tensor("q5", {32}, 6, std::vector<uint8_t>(22));  // Q5_0: parsed, not computable
  auto b = g.build();
  auto f = parse(b);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  auto v = f->tensor_view(f->tensors()[0]);
  EXPECT_EQ(v.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(v.status().message().find("ggml type Q5_0"), std::string::npos);
}

}  // namespace
}  // namespace kite
