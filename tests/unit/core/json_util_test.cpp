#include "core/json_util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "core/mapped_file.h"

namespace kite {
namespace {

TEST(ReadFileTest, SizeIsCheckedBeforeReading) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("kite-read-" + std::to_string(::getpid())))
          .string();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fputs("0123456789", f);
  std::fclose(f);
  // A 1 TiB sparse file is refused from its size alone: nothing is read or allocated.
  ASSERT_EQ(::truncate(path.c_str(), off_t{1} << 40), 0);
  auto big = read_file(path, kMaxTokenizerFileBytes);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(big.status().message().find("over the limit"), std::string::npos);
  ASSERT_EQ(::truncate(path.c_str(), 10), 0);
  EXPECT_EQ(*read_file(path, 10), "0123456789");
  EXPECT_EQ(read_file(path, 9).status().code(), StatusCode::kOutOfRange);
  std::remove(path.c_str());
  EXPECT_EQ(read_file(path).status().code(), StatusCode::kNotFound);
}

TEST(JsonUtilTest, MalformedIsInvalidArgument) {
  auto r = json::parse("{\"a\": ", "config.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("config.json"), std::string::npos);
}

TEST(JsonUtilTest, TypedFields) {
  auto v = json::parse(R"({"n": 4096, "f": 1e-5, "d": 4096.0, "b": true, "s": "x", "z": null})",
                       "t");
  ASSERT_TRUE(v.ok());
  const auto& o = v->as_object();
  EXPECT_EQ(**json::get_int(o, "n"), 4096);
  EXPECT_EQ(**json::get_int(o, "d"), 4096);
  EXPECT_DOUBLE_EQ(**json::get_double(o, "f"), 1e-5);
  EXPECT_EQ(**json::get_bool(o, "b"), true);
  EXPECT_EQ(**json::get_string(o, "s"), "x");
  EXPECT_FALSE(json::get_int(o, "z")->has_value());
  EXPECT_FALSE(json::get_int(o, "missing")->has_value());
  auto bad = json::get_int(o, "s");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "field 's' must be an integer, got string");
  EXPECT_FALSE(json::get_int(o, "f").ok());
}

}  // namespace
}  // namespace kite
