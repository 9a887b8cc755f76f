#include "engine/pooling_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace kite {
namespace {

namespace fs = std::filesystem;

class PoolingConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kite-pooling-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "1_Pooling");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  static std::string modules(bool normalize) {
    return std::string(
               R"([{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
      {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"})") +
           (normalize ? R"(, {"idx": 2, "path": "2_Normalize",
              "type": "sentence_transformers.models.Normalize"}])"
                      : "]");
  }
  fs::path dir_;
};

TEST_F(PoolingConfigTest, DefaultsToLastTokenNormalized) {
  auto p = read_pooling_config(dir_.string(), 64);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->type, "LAST");
  EXPECT_TRUE(p->normalize);
  EXPECT_EQ(p->embedding_size, 64);
  EXPECT_FALSE(p->is_matryoshka);
}

TEST_F(PoolingConfigTest, ReadsSentenceTransformersModules) {
  write("modules.json", modules(true));
  write("1_Pooling/config.json",
        R"({"word_embedding_dimension": 64, "pooling_mode_cls_token": false,
            "pooling_mode_mean_tokens": true, "pooling_mode_lasttoken": false})");
  write("config.json", R"({"matryoshka_dimensions": [16, 32, 64]})");
  auto p = read_pooling_config(dir_.string(), 64);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->type, "MEAN");
  EXPECT_TRUE(p->normalize);
  EXPECT_TRUE(p->is_matryoshka);
  EXPECT_EQ(p->matryoshka_dimensions, (std::vector<int64_t>{16, 32, 64}));

  write("modules.json", modules(false));
  write("1_Pooling/config.json", R"({"pooling_mode_lasttoken": true})");
  write("config.json", R"({"is_matryoshka": true})");
  p = read_pooling_config(dir_.string(), 64);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, "LAST");
  EXPECT_FALSE(p->normalize);  // no Normalize module: as vLLM
  EXPECT_TRUE(p->is_matryoshka);
  EXPECT_TRUE(p->matryoshka_dimensions.empty());
}

TEST_F(PoolingConfigTest, RefusesWhatItCannotPool) {
  write("modules.json", modules(true));
  write("1_Pooling/config.json", R"({"pooling_mode_max_tokens": true})");
  EXPECT_EQ(read_pooling_config(dir_.string(), 64).status().code(), StatusCode::kUnimplemented);
  write("1_Pooling/config.json", R"({"pooling_mode_lasttoken": true})");
  write("config.json", R"({"matryoshka_dimensions": [128]})");
  EXPECT_EQ(read_pooling_config(dir_.string(), 64).status().code(), StatusCode::kInvalidArgument);
  write("modules.json", "{}");
  EXPECT_EQ(read_pooling_config(dir_.string(), 64).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kite
