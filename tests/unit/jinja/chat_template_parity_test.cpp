// Chat-template parity: every template of tests/data/chat_templates/manifest.json, over every
// conversation of conversations.json, with add_generation_prompt false and true, renders byte
// for byte as transformers.apply_chat_template(..., tokenize=False) renders it (expected
// results written at test time by chat_template_oracle.py, the CTest fixture
// `chat_template.oracle`), or fails in both.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "frontend/jinja/chat_template.h"
#include "parity_util.h"

namespace kite {
namespace {

namespace bj = boost::json;

const std::string kDataDir = std::string(KITE_SOURCE_DIR) + "/tests/data/chat_templates";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const bj::value& manifest() {
  static const bj::value v = bj::parse(read_file(kDataDir + "/manifest.json"));
  return v;
}

const bj::value& conversations() {
  static const bj::value v = bj::parse(read_file(kDataDir + "/conversations.json"));
  return v;
}

struct Case {
  std::string template_name;
  std::string conversation;
  bool add_generation_prompt;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.template_name << " / " << c.conversation
      << (c.add_generation_prompt ? " / add_generation_prompt" : "");
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const auto& t : manifest().at("templates").as_array()) {
    for (const auto& c : conversations().at("conversations").as_array()) {
      for (bool agp : {false, true}) {
        cases.push_back(
            {std::string(t.at("name").as_string()), std::string(c.at("name").as_string()), agp});
      }
    }
  }
  return cases;
}

const bj::value& oracle() {
  static const bj::value v = jinja::testing::load_oracle_output(KITE_CHAT_TEMPLATE_ORACLE_OUT);
  return v;
}

const bj::object* find_by_name(const bj::array& items, const std::string& name,
                               const char* key = "name") {
  for (const auto& item : items) {
    if (item.at(key).as_string() == name) return &item.as_object();
  }
  return nullptr;
}

// Parsed once per template, shared by its cases.
const ChatTemplate& parsed(const std::string& name, const std::string& source) {
  static std::map<std::string, std::unique_ptr<ChatTemplate>> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    Result<ChatTemplate> t = ChatTemplate::parse(source);
    EXPECT_TRUE(t.ok()) << name << ": " << t.status().to_string();
    if (!t.ok()) t = ChatTemplate::parse("");
    it = cache.emplace(name, std::make_unique<ChatTemplate>(std::move(t).value())).first;
  }
  return *it->second;
}

class ChatTemplateParityTest : public ::testing::TestWithParam<Case> {};

TEST_P(ChatTemplateParityTest, MatchesTransformers) {
  const Case& c = GetParam();
  ASSERT_TRUE(oracle().is_object())
      << "no oracle output at " << KITE_CHAT_TEMPLATE_ORACLE_OUT
      << " (run through ctest, whose fixture chat_template.oracle writes it)";
  const bj::object* tmpl = find_by_name(oracle().at("templates").as_array(), c.template_name);
  ASSERT_NE(tmpl, nullptr) << "oracle has no template " << c.template_name;
  const bj::object* entry = find_by_name(manifest().at("templates").as_array(), c.template_name);
  const std::string source(tmpl->at("source").as_string());
  // The oracle rendered the very text we parse: the .jinja file, or the config's chat_template.
  if (entry->contains("template")) {
    ASSERT_EQ(source, read_file(kDataDir + "/" + std::string(entry->at("template").as_string())));
  } else if (!entry->at("tokenizer_config").as_string().ends_with(".gz")) {
    const bj::value config = bj::parse(
        read_file(kDataDir + "/" + std::string(entry->at("tokenizer_config").as_string())));
    ASSERT_EQ(source, config.at("chat_template").as_string());
  }

  const bj::object* conv =
      find_by_name(conversations().at("conversations").as_array(), c.conversation);
  ChatTemplateInputs in;
  in.messages_json = bj::serialize(conv->at("messages"));
  if (const bj::value* tools = conv->if_contains("tools")) {
    in.tools_json = tools->is_string()
                        ? bj::serialize(conversations().at("tool_sets").at(tools->as_string()))
                        : bj::serialize(*tools);
  }
  in.add_generation_prompt = c.add_generation_prompt;
  bj::object extra;
  for (const auto& [key, value] : tmpl->at("special_tokens").as_object()) {
    if (key == "bos_token") {
      in.bos_token = value.as_string();
    } else if (key == "eos_token") {
      in.eos_token = value.as_string();
    } else {
      in.other_special_tokens[key] = value.as_string();
    }
  }
  if (const bj::value* kwargs = conv->if_contains("kwargs")) {
    for (const auto& [key, value] : kwargs->as_object()) extra[key] = value;
  }
  if (!extra.empty()) in.extra_kwargs_json = bj::serialize(extra);
  in.date_string = jinja::testing::kFixedDateString;

  const bj::object* expected = nullptr;
  for (const auto& r : tmpl->at("results").as_array()) {
    if (r.at("conversation").as_string() == c.conversation &&
        r.at("add_generation_prompt").as_bool() == c.add_generation_prompt) {
      expected = &r.as_object();
    }
  }
  ASSERT_NE(expected, nullptr);
  const Result<std::string> got = parsed(c.template_name, source).render(in);
  jinja::testing::expect_same_outcome(*expected, got, c.template_name + " / " + c.conversation);
}

INSTANTIATE_TEST_SUITE_P(Templates, ChatTemplateParityTest, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& p) {
                           return jinja::testing::sanitize_test_name(
                               p.param.template_name + "__" + p.param.conversation +
                               (p.param.add_generation_prompt ? "__gen" : "__nogen"));
                         });

}  // namespace
}  // namespace kite
