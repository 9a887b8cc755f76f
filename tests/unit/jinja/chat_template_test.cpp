// ChatTemplate API tests: how inputs reach the template, input validation, errors as Status,
// and concurrent renders of one parsed template. Byte-for-byte parity with transformers is
// chat_template_parity_test's job.
#include "frontend/jinja/chat_template.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

namespace kite {
namespace {

ChatTemplate parse_ok(std::string_view source) {
  Result<ChatTemplate> t = ChatTemplate::parse(source);
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return t.ok() ? std::move(t).value() : ChatTemplate::parse("").value();
}

ChatTemplateInputs user_says(std::string text) {
  ChatTemplateInputs in;
  in.messages_json = R"([{"role": "user", "content": ")" + text + R"("}])";
  return in;
}

TEST(ChatTemplateTest, RendersMessagesAndGenerationPrompt) {
  const ChatTemplate t = parse_ok(
      "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}");
  ChatTemplateInputs in = user_says("hi");
  EXPECT_EQ(*t.render(in), "<user>hi");
  in.add_generation_prompt = true;
  EXPECT_EQ(*t.render(in), "<user>hi<assistant>");
}

TEST(ChatTemplateTest, SpecialTokensAndKwargs) {
  const ChatTemplate t = parse_ok(
      "[{{ bos_token }}|{{ bos_token is defined }}|{{ eos_token }}|{{ enable_thinking }}|"
      "{{ pad_token }}|{{ documents }}]");
  ChatTemplateInputs in = user_says("x");
  EXPECT_EQ(*t.render(in), "[|False||||None]");  // unset tokens are undefined, like transformers
  in.bos_token = "<s>";
  in.eos_token = "</s>";
  in.other_special_tokens["pad_token"] = "<pad>";
  in.extra_kwargs_json = R"({"enable_thinking": false, "eos_token": "E"})";
  EXPECT_EQ(*t.render(in), "[<s>|True|E|False|<pad>|None]");  // kwargs override tokens
}

TEST(ChatTemplateTest, ToolsNoneVersusEmpty) {
  const ChatTemplate t = parse_ok(
      "{{ tools is none }}|{{ tools|length if tools is not none else '-' }}|"
      "{% if tools %}T{% endif %}");
  ChatTemplateInputs in = user_says("x");
  EXPECT_EQ(*t.render(in), "True|-|");
  in.tools_json = "[]";
  EXPECT_EQ(*t.render(in), "False|0|");
  in.tools_json = R"([{"type": "function", "function": {"name": "f"}}])";
  EXPECT_EQ(*t.render(in), "False|1|T");
}

TEST(ChatTemplateTest, KeepsKeyOrderAndValueTypes) {
  const ChatTemplate t = parse_ok("{{ messages[0]|tojson }} {{ messages[0].n }}");
  ChatTemplateInputs in;
  in.messages_json = R"([{"z": 1, "a": [true, null, 1.0, 2], "n": 1.5e3, "role": "user"}])";
  EXPECT_EQ(*t.render(in),
            R"({"z": 1, "a": [true, null, 1.0, 2], "n": 1500.0, "role": "user"} 1500.0)");
}

TEST(ChatTemplateTest, BadInputsAreInvalidArgument) {
  const ChatTemplate t = parse_ok("{{ messages|length }}");
  ChatTemplateInputs in;
  for (const char* bad : {"", "{", "{}", "[]", "\"x\"", "[1,]"}) {
    in.messages_json = bad;
    const Result<std::string> r = t.render(in);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  in = user_says("x");
  in.tools_json = "{\"not\": \"a list\"}";
  EXPECT_EQ(t.render(in).status().code(), StatusCode::kInvalidArgument);
  in.tools_json = "[1]";
  EXPECT_EQ(t.render(in).status().code(), StatusCode::kInvalidArgument);
  in = user_says("x");
  in.extra_kwargs_json = "[1]";
  EXPECT_EQ(t.render(in).status().code(), StatusCode::kInvalidArgument);
  in.extra_kwargs_json = R"({"messages": []})";
  EXPECT_EQ(t.render(in).status().message(),
            "extra kwarg 'messages' conflicts with a render argument");
  in = user_says("x");
  in.messages_json = "[{\"content\": \"\xff\"}]";
  EXPECT_EQ(t.render(in).status().message(), "messages is not valid UTF-8");
  in = user_says("x");
  in.messages_json = R"([{"n": 18446744073709551615}])";
  EXPECT_EQ(t.render(in).status().code(), StatusCode::kUnimplemented);
  in.messages_json = std::string(300, '[') + std::string(300, ']');
  EXPECT_EQ(t.render(in).status().code(), StatusCode::kInvalidArgument);
  in = user_says("x");
  in.date_string = "26/07/2024";
  EXPECT_EQ(t.render(in).status().code(), StatusCode::kInvalidArgument);
}

TEST(ChatTemplateTest, ParseErrors) {
  const Result<ChatTemplate> r = ChatTemplate::parse("{% for m in messages %}{{ m }}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("syntax error at line 1"), std::string::npos);
  EXPECT_EQ(ChatTemplate::parse(std::string(5u << 20, 'x')).status().code(),
            StatusCode::kOutOfRange);
}

TEST(ChatTemplateTest, ConcurrentRendersOfOneTemplate) {
  const ChatTemplate t = parse_ok(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
      "{{ m.content|upper }}{% endfor %}={{ ns.n }}");
  std::vector<std::thread> threads;
  std::vector<std::string> results(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      ChatTemplateInputs in;
      in.messages_json = "[";
      for (int k = 0; k <= i; ++k) {
        in.messages_json.append(k ? "," : "")
            .append(R"({"content": "m)")
            .append(std::to_string(k))
            .append(R"("})");
      }
      in.messages_json += "]";
      for (int rep = 0; rep < 200; ++rep) {
        Result<std::string> r = t.render(in);
        results[i] = r.ok() ? *r : r.status().to_string();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < 8; ++i) {
    std::string want;
    for (int k = 0; k <= i; ++k) want.append("M").append(std::to_string(k));
    want.append("=").append(std::to_string(i + 1));
    EXPECT_EQ(results[i], want);
  }
}

}  // namespace
}  // namespace kite

namespace kite {
namespace {

TEST(ChatTemplateTest, SelectsTemplatesLikeTransformers) {
  const std::map<std::string, std::string> named = {{"default", "D"}, {"tool_use", "T"}};
  EXPECT_EQ(*select_chat_template(named, std::nullopt, false), "D");
  EXPECT_EQ(*select_chat_template(named, std::nullopt, true), "T");
  EXPECT_EQ(*select_chat_template(named, std::string("tool_use"), false), "T");
  EXPECT_EQ(*select_chat_template(named, std::string("{{ 'own' }}"), true), "{{ 'own' }}");
  EXPECT_EQ(*select_chat_template({{"default", "D"}}, std::nullopt, true), "D");
  EXPECT_EQ(select_chat_template({}, std::nullopt, false).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(select_chat_template({{"rag", "R"}}, std::nullopt, false).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kite
