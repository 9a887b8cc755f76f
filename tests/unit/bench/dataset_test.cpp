#include "bench/dataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "bench_test_util.h"

namespace kite::bench {
namespace {

const std::vector<int32_t>& ids(const PromptSpec& p) {
  return std::get<std::vector<int32_t>>(p.prompt);
}

TEST(RandomDataset, FixedLengths) {
  RandomDatasetConfig c;
  c.num_prompts = 20;
  c.input_len = 128;
  c.output_len = 64;
  c.vocab_size = 1000;
  Result<std::vector<PromptSpec>> d = random_dataset(c);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  ASSERT_EQ(d->size(), 20u);
  for (const PromptSpec& p : *d) {
    EXPECT_EQ(p.prompt_len, 128);
    EXPECT_EQ(ids(p).size(), 128u);
    EXPECT_EQ(p.output_len, 64);
  }
  EXPECT_NE(ids((*d)[0]), ids((*d)[1]));
  EXPECT_EQ(total_prompt_tokens(*d), 20 * 128);
}

TEST(RandomDataset, RangedLengthsCoverTheRangeAndStayInIt) {
  RandomDatasetConfig c;
  c.num_prompts = 2000;
  c.input_len = 100;
  c.output_len = 10;
  c.range_ratio = 0.5;
  c.vocab_size = 50;
  c.excluded_ids = {0, 2, 49, 1000};  // 1000 is outside the vocabulary: ignored
  c.seed = 5;
  std::vector<PromptSpec> d = *random_dataset(c);
  std::set<int64_t> in_lens, out_lens;
  std::set<int32_t> seen;
  for (const PromptSpec& p : d) {
    in_lens.insert(p.prompt_len);
    out_lens.insert(p.output_len);
    for (int32_t id : ids(p)) seen.insert(id);
  }
  EXPECT_EQ(*in_lens.begin(), 50);
  EXPECT_EQ(*in_lens.rbegin(), 150);
  EXPECT_EQ(*out_lens.begin(), 5);
  EXPECT_EQ(*out_lens.rbegin(), 15);
  // Every allowed id shows up, no excluded one does.
  EXPECT_EQ(seen.size(), 47u);
  EXPECT_FALSE(seen.count(0) || seen.count(2) || seen.count(49));
  EXPECT_EQ(*seen.rbegin(), 48);
  // Same seed, same prompts; another seed, others.
  EXPECT_EQ(ids(random_dataset(c)->front()), ids(d.front()));
  c.seed = 6;
  EXPECT_NE(ids(random_dataset(c)->front()), ids(d.front()));
}

TEST(RandomDataset, SharedPrefix) {
  RandomDatasetConfig c;
  c.num_prompts = 3;
  c.input_len = 8;
  c.prefix_len = 16;
  c.vocab_size = 30000;
  std::vector<PromptSpec> d = *random_dataset(c);
  for (const PromptSpec& p : d) {
    EXPECT_EQ(p.prompt_len, 24);
    EXPECT_TRUE(std::equal(ids(p).begin(), ids(p).begin() + 16, ids(d[0]).begin()));
  }
  EXPECT_FALSE(std::equal(ids(d[1]).begin() + 16, ids(d[1]).end(), ids(d[0]).begin() + 16));
}

TEST(RandomDataset, RejectsBadConfigNamingTheFlag) {
  RandomDatasetConfig c;
  c.vocab_size = 100;
  c.range_ratio = 1.0;
  EXPECT_NE(random_dataset(c).status().message().find("--random-range-ratio"), std::string::npos);
  c.range_ratio = 0;
  c.input_len = 0;
  EXPECT_NE(random_dataset(c).status().message().find("--random-input-len"), std::string::npos);
  c.input_len = 10;
  c.vocab_size = 0;
  EXPECT_NE(random_dataset(c).status().message().find("vocabulary"), std::string::npos);
  c.vocab_size = 2;
  c.excluded_ids = {0, 1};
  EXPECT_FALSE(random_dataset(c).ok());
}

std::string sharegpt_file(const testing::TempDir& dir) {
  std::ostringstream s;
  s << "[";
  for (int i = 0; i < 30; ++i) {
    if (i) s << ",";
    // Prompt of i+2 words, reply of 2*i+1 words.
    std::string prompt, reply;
    for (int w = 0; w < i + 2; ++w) prompt += "word ";
    for (int w = 0; w < 2 * i + 1; ++w) reply += "reply ";
    s << "{\"id\": \"c" << i << "\", \"conversations\": [{\"from\": \"human\", \"value\": \""
      << prompt << "\"}, {\"from\": \"gpt\", \"value\": \"" << reply << "\"}]}";
  }
  s << ", {\"conversations\": [{\"from\": \"human\", \"value\": \"alone\"}]}, 42]";
  testing::write_text(dir / "sg.json", s.str());
  return dir / "sg.json";
}

Result<int64_t> count_words(const std::string& text) {
  return static_cast<int64_t>(std::count(text.begin(), text.end(), ' '));
}

TEST(ShareGpt, LengthsFromTheCounterAndVllmFilters) {
  testing::TempDir dir;
  ShareGptConfig c{sharegpt_file(dir), 100, 0, 1};
  std::vector<PromptSpec> d = *sharegpt_dataset(c, count_words);
  // Filtered: prompts under 4 words (i = 0, 1) and replies under 4 words (i = 0, 1).
  EXPECT_EQ(d.size(), 28u);
  for (const PromptSpec& p : d) {
    EXPECT_GE(p.prompt_len, 4);
    EXPECT_EQ(p.output_len, 2 * (p.prompt_len - 2) + 1);
  }
  // Shuffled, reproducibly.
  std::vector<int64_t> order;
  for (const PromptSpec& p : d) order.push_back(p.prompt_len);
  EXPECT_FALSE(std::is_sorted(order.begin(), order.end()));
  EXPECT_EQ(sharegpt_dataset(c, count_words)->front().prompt_len, order.front());
  // A fixed output length and a smaller count.
  c.output_len = 7;
  c.num_prompts = 5;
  d = *sharegpt_dataset(c, count_words);
  EXPECT_EQ(d.size(), 5u);
  for (const PromptSpec& p : d) EXPECT_EQ(p.output_len, 7);
}

TEST(ShareGpt, WithoutACounterEstimatesFromCharacters) {
  testing::TempDir dir;
  std::vector<PromptSpec> d = *sharegpt_dataset({sharegpt_file(dir), 30, 0, 0}, nullptr);
  EXPECT_EQ(d.size(), 30u);
  for (const PromptSpec& p : d) {
    EXPECT_EQ(p.prompt_len, -1);
    EXPECT_GE(p.output_len, 4);
  }
}

TEST(ShareGpt, BadFiles) {
  testing::TempDir dir;
  testing::write_text(dir / "obj.json", "{\"a\": 1}");
  testing::write_text(dir / "empty.json", "[{\"conversations\": []}]");
  testing::write_text(dir / "broken.json", "[{\"conversations\": ");
  EXPECT_FALSE(sharegpt_dataset({dir / "obj.json", 10, 0, 0}, nullptr).ok());
  EXPECT_FALSE(sharegpt_dataset({dir / "empty.json", 10, 0, 0}, nullptr).ok());
  EXPECT_FALSE(sharegpt_dataset({dir / "broken.json", 10, 0, 0}, nullptr).ok());
  EXPECT_FALSE(sharegpt_dataset({dir / "missing.json", 10, 0, 0}, nullptr).ok());
}

TEST(Jsonl, TextAndTokenPromptsWithOutputLengths) {
  testing::TempDir dir;
  testing::write_text(dir / "p.jsonl",
                      "{\"prompt\": \"hello there\", \"output_len\": 5}\n"
                      "\n"
                      "{\"prompt_token_ids\": [1, 2, 3], \"max_tokens\": 9}\n"
                      "{\"prompt\": \"third\"}\n");
  std::vector<PromptSpec> d = *jsonl_dataset(dir / "p.jsonl", 0, 32);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(std::get<std::string>(d[0].prompt), "hello there");
  EXPECT_EQ(d[0].output_len, 5);
  EXPECT_EQ(d[0].prompt_len, -1);
  EXPECT_EQ(ids(d[1]), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(d[1].prompt_len, 3);
  EXPECT_EQ(d[1].output_len, 9);
  EXPECT_EQ(d[2].output_len, 32);
  // Cycled to the requested count.
  d = *jsonl_dataset(dir / "p.jsonl", 7, 32);
  ASSERT_EQ(d.size(), 7u);
  EXPECT_EQ(std::get<std::string>(d[6].prompt), "hello there");
}

TEST(Jsonl, ErrorsNameTheLine) {
  testing::TempDir dir;
  testing::write_text(dir / "a.jsonl", "{\"prompt\": \"ok\"}\n{\"text\": 1}\n");
  Status s = jsonl_dataset(dir / "a.jsonl", 0, 16).status();
  EXPECT_NE(s.message().find("a.jsonl:2"), std::string::npos) << s.to_string();
  testing::write_text(dir / "b.jsonl", "{\"prompt_token_ids\": [1, -2]}\n");
  EXPECT_FALSE(jsonl_dataset(dir / "b.jsonl", 0, 16).ok());
  testing::write_text(dir / "c.jsonl", "not json\n");
  EXPECT_NE(jsonl_dataset(dir / "c.jsonl", 0, 16).status().message().find("c.jsonl:1"),
            std::string::npos);
  testing::write_text(dir / "d.jsonl", "{\"prompt\": \"x\", \"output_len\": 0}\n");
  EXPECT_FALSE(jsonl_dataset(dir / "d.jsonl", 0, 16).ok());
  testing::write_text(dir / "e.jsonl", "\n\n");
  EXPECT_FALSE(jsonl_dataset(dir / "e.jsonl", 0, 16).ok());
  EXPECT_FALSE(jsonl_dataset(dir / "missing.jsonl", 0, 16).ok());
}

TEST(W4, ChatPromptsAreLlama3TokenIdsOfAbout48Tokens) {
  std::vector<PromptSpec> d = *w4_chat_prompts(32, 128);
  ASSERT_EQ(d.size(), 32u);
  for (const PromptSpec& p : d) {
    EXPECT_GE(p.prompt_len, 47);
    EXPECT_LE(p.prompt_len, 53);
    EXPECT_EQ(ids(p).front(), 128000);  // <|begin_of_text|>
    EXPECT_EQ(p.output_len, 128);
  }
  EXPECT_FALSE(w4_chat_prompts(33, 128).ok());
  EXPECT_FALSE(w4_chat_prompts(0, 128).ok());
}

}  // namespace
}  // namespace kite::bench
