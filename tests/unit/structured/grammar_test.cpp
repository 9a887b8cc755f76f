// GrammarCompiler and GrammarMatcher (src/structured) on a small raw vocabulary: every printable
// ASCII character is a token, plus a few multi-character tokens and an EOS. A constrained walk
// that follows a valid output is accepted token by token, every mask allows exactly the tokens
// that keep the output valid (checked against the definition for single characters), complete
// outputs allow EOS, and bad or oversized specs are refused with messages that say why.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "structured/bitmask.h"
#include "structured/grammar_compiler.h"
#include "structured/grammar_matcher.h"

namespace kite::structured {
namespace {

constexpr int32_t kEos = 0;

struct Fixture {
  std::vector<std::string> vocab;
  std::unique_ptr<GrammarCompiler> compiler;

  Fixture() {
    vocab.push_back("");  // EOS: no text
    for (char c = 32; c < 127; ++c) vocab.emplace_back(1, c);
    for (const char* t : {"{\"", "\":", "true", "false", "null", "\n", "abc", "<tool_call>"}) {
      vocab.emplace_back(t);
    }
    StructuredVocab v;
    v.encoded = vocab;
    v.kind = VocabKind::kRaw;
    v.model_vocab_size = static_cast<int64_t>(vocab.size()) + 5;  // padded logits
    v.stop_token_ids = {kEos};
    GrammarCompilerOptions o;
    o.num_threads = 1;
    o.max_repeat = 1000;
    auto c = GrammarCompiler::create(v, o);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    compiler = std::move(*c);
  }

  int32_t id_of(const std::string& s) const {
    for (size_t i = 1; i < vocab.size(); ++i) {
      if (vocab[i] == s) return static_cast<int32_t>(i);
    }
    return -1;
  }
  std::shared_ptr<const CompiledGrammar> compile(GrammarSpec spec) {
    auto g = compiler->compile(spec);
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    return g.ok() ? *g : nullptr;
  }
};

GrammarSpec json_spec(const std::string& schema) {
  GrammarSpec s;
  s.kind = GrammarSpec::Kind::kJsonSchema;
  s.text = schema;
  s.any_whitespace = false;
  return s;
}

// Feeds `text` one character token at a time, checking each mask allows the character, then
// checks that EOS is allowed and accepted.
void walk(Fixture& f, const std::shared_ptr<const CompiledGrammar>& g, const std::string& text) {
  GrammarMatcher m(g, {kEos});
  std::vector<int32_t> mask(static_cast<size_t>(bitmask_words(g->vocab_size())));
  for (char c : text) {
    ASSERT_TRUE(m.fill_bitmask(mask.data()));
    const int32_t id = f.id_of(std::string(1, c));
    ASSERT_TRUE(bitmask_allows(mask.data(), id)) << "'" << c << "' refused in " << text;
    ASSERT_TRUE(m.accept(id));
  }
  ASSERT_TRUE(m.fill_bitmask(mask.data()));
  EXPECT_TRUE(bitmask_allows(mask.data(), kEos)) << text;
  // Padding ids past the vocabulary are never allowed.
  for (int64_t t = static_cast<int64_t>(f.vocab.size()); t < g->vocab_size(); ++t) {
    EXPECT_FALSE(bitmask_allows(mask.data(), t));
  }
  EXPECT_TRUE(m.accept(kEos));
  EXPECT_TRUE(m.terminated());
  // After the end only EOS is allowed.
  ASSERT_TRUE(m.fill_bitmask(mask.data()));
  EXPECT_TRUE(bitmask_allows(mask.data(), kEos));
  EXPECT_FALSE(bitmask_allows(mask.data(), f.id_of("a")));
}

TEST(Grammar, JsonSchemaWalkAndMasks) {
  Fixture f;
  auto g = f.compile(
      json_spec(R"({"type":"object","properties":{"n":{"type":"integer"},"c":{"enum":["x","y"]}},)"
                R"("required":["n","c"],"additionalProperties":false})"));
  ASSERT_NE(g, nullptr);
  walk(f, g, R"({"n": 12, "c": "y"})");
  GrammarMatcher m(g, {kEos});
  std::vector<int32_t> mask(static_cast<size_t>(bitmask_words(g->vocab_size())));
  ASSERT_TRUE(m.fill_bitmask(mask.data()));
  // The first character must be '{': no other single character, no EOS.
  for (char c = 32; c < 127; ++c) {
    EXPECT_EQ(bitmask_allows(mask.data(), f.id_of(std::string(1, c))), c == '{') << c;
  }
  EXPECT_FALSE(bitmask_allows(mask.data(), kEos));
  EXPECT_TRUE(bitmask_allows(mask.data(), f.id_of("{\"")));  // a multi-character token
  EXPECT_FALSE(m.accept(f.id_of("[")));                      // refused, state unchanged
  EXPECT_TRUE(m.accept(f.id_of("{")));
}

TEST(Grammar, RecursiveRefUnionsAndJsonObject) {
  Fixture f;
  auto tree = f.compile(
      json_spec(R"({"$defs":{"n":{"type":"object","properties":{"v":{"anyOf":[{"type":"integer"},)"
                R"({"type":"null"}]},"k":{"type":"array","items":{"$ref":"#/$defs/n"}}},)"
                R"("required":["v","k"]}},"$ref":"#/$defs/n"})"));
  ASSERT_NE(tree, nullptr);
  walk(f, tree, R"({"v": 1, "k": [{"v": null, "k": []}]})");
  GrammarSpec obj;
  obj.kind = GrammarSpec::Kind::kJsonObject;
  obj.any_whitespace = false;
  auto any = f.compile(obj);
  ASSERT_NE(any, nullptr);
  walk(f, any, R"({"a": [1, true, "s"]})");
}

TEST(Grammar, RegexChoiceEbnfAndToolCalls) {
  Fixture f;
  GrammarSpec rx;
  rx.kind = GrammarSpec::Kind::kRegex;
  rx.text = "[a-c]{2}-[0-9]+";
  walk(f, f.compile(rx), "ab-42");
  GrammarSpec choice;
  choice.kind = GrammarSpec::Kind::kChoice;
  choice.choices = {"red", "a \"b\"", "x\\y"};
  for (const std::string& c : choice.choices) walk(f, f.compile(choice), c);
  GrammarSpec ebnf;
  ebnf.kind = GrammarSpec::Kind::kEbnf;
  ebnf.text = "root ::= \"(\" [0-9]+ \")\"";
  walk(f, f.compile(ebnf), "(123)");
  GrammarSpec tools;
  tools.kind = GrammarSpec::Kind::kToolCalls;
  tools.any_whitespace = false;
  tools.tools.prefix = "[";
  tools.tools.separator = ", ";
  tools.tools.suffix = "]";
  tools.tools.calls = {
      {"{\"name\": \"f\", \"arguments\": ",
       R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]})", "}"},
      {"{\"name\": \"g\", \"arguments\": ", R"({"type":"object"})", "}"}};
  auto g = f.compile(tools);
  walk(f, g, R"([{"name": "f", "arguments": {"a": 1}}])");
  walk(f, g, R"([{"name": "g", "arguments": {}}, {"name": "f", "arguments": {"a": 2}}])");
  tools.tools.parallel = false;
  auto single = f.compile(tools);
  GrammarMatcher m(single, {kEos});
  for (char c : std::string(R"([{"name": "g", "arguments": {}})")) {
    ASSERT_TRUE(m.accept(f.id_of(std::string(1, c))));
  }
  EXPECT_FALSE(m.accept(f.id_of(",")));  // one call only
  EXPECT_TRUE(m.accept(f.id_of("]")));
}

TEST(Grammar, CacheForkRollbackAndReasoningGate) {
  Fixture f;
  const GrammarSpec spec = json_spec(R"({"type":"array","items":{"type":"integer"}})");
  auto a = f.compile(spec);
  auto b = f.compile(spec);
  EXPECT_EQ(a.get(), b.get());  // compiled once
  EXPECT_EQ(f.compiler->stats().num_compiled, 1);
  EXPECT_EQ(f.compiler->stats().num_cache_hits, 1);

  GrammarMatcher m(a, {kEos});
  ASSERT_TRUE(m.accept(f.id_of("[")));
  ASSERT_TRUE(m.accept(f.id_of("1")));
  auto copy = m.fork();
  ASSERT_TRUE(m.accept(f.id_of("]")));
  EXPECT_FALSE(copy->accept(f.id_of("}")));
  EXPECT_TRUE(copy->accept(f.id_of(",")));  // the fork kept the state before "]"
  m.rollback(2);                            // back to "["
  EXPECT_EQ(m.num_accepted(), 1);
  EXPECT_TRUE(m.accept(f.id_of("]")));

  // With a reasoning gate nothing is constrained until the end-of-thinking token.
  const int32_t end_think = f.id_of("abc");
  GrammarMatcher gated(a, {kEos}, end_think);
  std::vector<int32_t> mask(static_cast<size_t>(bitmask_words(a->vocab_size())));
  EXPECT_FALSE(gated.fill_bitmask(mask.data()));
  EXPECT_TRUE(gated.accept(f.id_of("z")));  // thinking: anything
  EXPECT_TRUE(gated.accept(end_think));
  EXPECT_TRUE(gated.fill_bitmask(mask.data()));
  EXPECT_FALSE(gated.accept(f.id_of("z")));
  EXPECT_TRUE(gated.accept(f.id_of("[")));
}

TEST(Grammar, BadAndOversizedSpecsAreRefused) {
  Fixture f;
  auto expect_error = [&](GrammarSpec spec, const std::string& fragment) {
    auto g = f.compiler->compile(spec);
    ASSERT_FALSE(g.ok()) << fragment;
    EXPECT_NE(g.status().message().find(fragment), std::string::npos) << g.status().message();
  };
  expect_error(json_spec(R"({"type":"nonsense"})"), "invalid or unsupported JSON schema");
  expect_error(json_spec(R"({"type":"string","maxLength":5000})"), "exceeds the limit 1000");
  GrammarSpec rx;
  rx.kind = GrammarSpec::Kind::kRegex;
  rx.text = "(ab";
  expect_error(rx, "regex");
  rx.text = "a{2,99999}";
  expect_error(rx, "exceeds the limit");
  GrammarSpec ebnf;
  ebnf.kind = GrammarSpec::Kind::kEbnf;
  ebnf.text = "root ::= missing";
  expect_error(ebnf, "grammar");
  GrammarSpec empty_choice;
  empty_choice.kind = GrammarSpec::Kind::kChoice;
  empty_choice.choices = {""};
  expect_error(empty_choice, "empty");
  EXPECT_EQ(f.compiler->stats().num_compiled, 0);
}

TEST(Grammar, SpecFromStructuredOutputs) {
  StructuredOutputs so;
  so.json = R"({ "type" : "object" })";
  auto spec = grammar_spec_from(so);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->text, R"({"type":"object"})");  // canonical: cache key ignores spacing
  so.json = "{bad";
  EXPECT_FALSE(grammar_spec_from(so).ok());
  so.json = "[1]";
  EXPECT_FALSE(grammar_spec_from(so).ok());
  ToolCallGrammar t;
  t.prefix = "p";
  t.calls = {{"b", "{}", "e"}};
  auto back = tool_call_grammar_from_json(tool_call_grammar_to_json(t));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->prefix, "p");
  ASSERT_EQ(back->calls.size(), 1u);
  EXPECT_EQ(back->calls[0].begin, "b");
}

TEST(Grammar, DetectVocabKind) {
  EXPECT_EQ(detect_vocab_kind({"a", "<0x0A>", "\xE2\x96\x81the"}), VocabKind::kByteFallback);
  EXPECT_EQ(detect_vocab_kind({"a", "\xC4\xA0", "\xC4\xA0the"}), VocabKind::kByteLevel);
  EXPECT_EQ(detect_vocab_kind({"a", "b"}), VocabKind::kRaw);
  EXPECT_EQ(detect_vocab_kind({"a", "\xE2\x96\x81the", "b"}), VocabKind::kByteFallback);
}

}  // namespace
}  // namespace kite::structured
