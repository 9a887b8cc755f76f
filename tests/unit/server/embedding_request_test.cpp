#include <gtest/gtest.h>

#include "server/openai_request.h"

namespace kite::server {
namespace {

ParseContext context() {
  ParseContext ctx;
  ctx.served_model_names = {"emb"};
  ctx.vocab_size = 100;
  ctx.max_model_len = 64;
  return ctx;
}

TEST(EmbeddingRequestTest, InputShapesAndOptions) {
  auto r = parse_embedding_request(
      R"({"input": ["a", "b"], "encoding_format": "base64", "dimensions": 8, "user": "u"})",
      context());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().model, "emb");
  ASSERT_EQ(r.value().inputs.size(), 2u);
  EXPECT_EQ(std::get<std::string>(r.value().inputs[1]), "b");
  EXPECT_TRUE(r.value().base64);
  EXPECT_EQ(r.value().dimensions, 8);
  auto ids = parse_embedding_request(R"({"input": [[1, 2], [3]]})", context());
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(std::get<std::vector<int32_t>>(ids.value().inputs[0]), (std::vector<int32_t>{1, 2}));
  auto one = parse_embedding_request(R"({"input": [4, 5, 6]})", context());
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one.value().inputs.size(), 1u);
  EXPECT_FALSE(one.value().base64);
  EXPECT_EQ(one.value().dimensions, 0);
}

TEST(EmbeddingRequestTest, BadInputNamesTheField) {
  struct Case {
    const char* body;
    const char* param;
  };
  for (const Case& c : {Case{R"({})", "input"}, Case{R"({"input": ""})", "input"},
                        Case{R"({"input": []})", "input"}, Case{R"({"input": 3.5})", "input"},
                        Case{R"({"input": ["a", 1]})", "input[1]"},
                        Case{R"({"input": "a", "encoding_format": "int8"})", "encoding_format"},
                        Case{R"({"input": "a", "dimensions": 0})", "dimensions"},
                        Case{R"({"input": "a", "stream": true})", "stream"},
                        Case{R"({"input": "a", "model": "other"})", "model"}}) {
    auto r = parse_embedding_request(c.body, context());
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.error().param, c.param) << c.body;
    EXPECT_EQ(r.error().http_status, std::string(c.param) == "model" ? 404 : 400) << c.body;
  }
}

}  // namespace
}  // namespace kite::server
