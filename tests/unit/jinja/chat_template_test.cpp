// ChatTemplate API tests: inputs handling, errors as Status, limits, concurrent renders.
#include "frontend/jinja/chat_template.h"

#include <gtest/gtest.h>

namespace kite {
namespace {

TEST(ChatTemplateTest, RendersMessages) {
  Result<ChatTemplate> t =
      ChatTemplate::parse("{% for m in messages %}{{ m.content }}{% endfor %}");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  ChatTemplateInputs in;
  in.messages_json = R"([{"role": "user", "content": "hi"}])";
  Result<std::string> r = t->render(in);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, "hi");
}

}  // namespace
}  // namespace kite
