#include "kite/status.h"

#include <gtest/gtest.h>

namespace kite {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("must be positive, got " + std::to_string(v));
  return v;
}

Result<int> doubled(int v) {
  KITE_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return 2 * x;
}

Status check_both(int a, int b) {
  KITE_RETURN_IF_ERROR(parse_positive(a).status());
  KITE_RETURN_IF_ERROR(parse_positive(b).status().with_context("second"));
  return ok_status();
}

TEST(StatusTest, OkAndError) {
  EXPECT_TRUE(Status().ok());
  Status s = not_found("model 'x'");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.to_string(), "not_found: model 'x'");
  EXPECT_EQ(s.with_context("loading").message(), "loading: model 'x'");
}

TEST(StatusTest, ResultPropagates) {
  EXPECT_EQ(*doubled(4), 8);
  Result<int> r = doubled(-1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "must be positive, got -1");
  EXPECT_EQ(r.value_or(7), 7);
}

TEST(StatusTest, ReturnIfErrorAddsContext) {
  EXPECT_TRUE(check_both(1, 2).ok());
  EXPECT_EQ(check_both(1, 0).message(), "second: must be positive, got 0");
}

TEST(StatusTest, ResultFromOkStatusIsInternalError) {
  Result<int> r{Status()};
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace kite
