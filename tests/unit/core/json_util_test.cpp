#include "core/json_util.h"

#include <gtest/gtest.h>

namespace kite {
namespace {

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
