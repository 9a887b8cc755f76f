#include <gtest/gtest.h>

#include "server/openai_request.h"

namespace kite::server {
namespace {

ParseContext context() {
  ParseContext ctx;
  ctx.served_model_names = {"tiny", "alias"};
  ctx.vocab_size = 100;
  ctx.max_model_len = 512;
  return ctx;
}

CompletionRequest parse_ok(std::string_view body) {
  auto r = parse_completion_request(body, context());
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : CompletionRequest{};
}

ApiError parse_err(std::string_view body) {
  auto r = parse_completion_request(body, context());
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? ApiError{} : r.error();
}

TEST(CompletionRequestTest, PromptsTimesNIsCapped) {
  ParseContext ctx = context();
  ctx.max_choices_per_request = 8;
  EXPECT_TRUE(parse_completion_request(R"({"prompt": ["a", "b"], "n": 4})", ctx).ok());
  auto r = parse_completion_request(R"({"prompt": ["a", "b", "c"], "n": 3})", ctx);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().http_status, 400);
  EXPECT_EQ(r.error().param, "n");
  EXPECT_NE(r.error().message.find("--max-choices-per-request"), std::string::npos);
  auto chat =
      parse_chat_request(R"({"messages": [{"role": "user", "content": "x"}], "n": 9})", ctx);
  ASSERT_FALSE(chat.ok());
  EXPECT_EQ(chat.error().param, "n");
}

TEST(CompletionRequestTest, LogitBiasDuplicatesAreFoundWhateverTheSpelling) {
  // "5" and "05" are one token; found by a set, so a vocabulary-sized map stays linear.
  EXPECT_NE(parse_err(R"({"prompt": "x", "logit_bias": {"5": 1, "7": 1, "05": 2}})")
                .message.find("lists token 5 twice"),
            std::string::npos);
}

TEST(CompletionRequestTest, Minimal) {
  CompletionRequest req = parse_ok(R"({"prompt": "Once upon"})");
  EXPECT_EQ(req.model, "tiny");
  ASSERT_EQ(req.prompts.size(), 1u);
  EXPECT_EQ(std::get<std::string>(req.prompts[0]), "Once upon");
  EXPECT_EQ(req.params.max_tokens, 16);
  EXPECT_EQ(req.params.n, 1);
  EXPECT_FALSE(req.stream);
  EXPECT_TRUE(req.add_special_tokens);
}

TEST(CompletionRequestTest, AllSamplingFields) {
  CompletionRequest req = parse_ok(R"({
    "model": "alias", "prompt": "x", "max_tokens": 7, "n": 3, "temperature": 0.5, "top_p": 0.9,
    "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1, "presence_penalty": -0.5,
    "frequency_penalty": 1.5, "logit_bias": {"5": -100, "7": 2.5}, "seed": -1,
    "stop": ["\n\n", "The end"], "stop_token_ids": [2, 3], "ignore_eos": true, "min_tokens": 2,
    "skip_special_tokens": false, "spaces_between_special_tokens": false,
    "include_stop_str_in_output": true, "logprobs": 5, "echo": true, "stream": true,
    "stream_options": {"include_usage": true}, "user": "u", "best_of": 3, "priority": -2,
    "return_token_ids": true, "add_special_tokens": false})");
  EXPECT_EQ(req.model, "alias");
  const SamplingParams& p = req.params;
  EXPECT_EQ(p.max_tokens, 7);
  EXPECT_EQ(p.n, 3);
  EXPECT_DOUBLE_EQ(p.temperature, 0.5);
  EXPECT_DOUBLE_EQ(p.top_p, 0.9);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_DOUBLE_EQ(p.min_p, 0.05);
  EXPECT_DOUBLE_EQ(p.repetition_penalty, 1.1);
  EXPECT_DOUBLE_EQ(p.presence_penalty, -0.5);
  EXPECT_DOUBLE_EQ(p.frequency_penalty, 1.5);
  ASSERT_EQ(p.logit_bias.size(), 2u);
  EXPECT_EQ(p.logit_bias[0].first, 5);
  EXPECT_FLOAT_EQ(p.logit_bias[0].second, -100.0f);
  EXPECT_EQ(p.seed, UINT64_MAX);  // -1 taken modulo 2^64
  EXPECT_EQ(p.stop, (std::vector<std::string>{"\n\n", "The end"}));
  EXPECT_EQ(p.stop_token_ids, (std::vector<int32_t>{2, 3}));
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_EQ(p.min_tokens, 2);
  EXPECT_FALSE(p.skip_special_tokens);
  EXPECT_FALSE(p.spaces_between_special_tokens);
  EXPECT_TRUE(p.include_stop_str_in_output);
  EXPECT_EQ(p.logprobs, 5);
  EXPECT_EQ(p.prompt_logprobs, 5);  // echo + logprobs scores the prompt too
  EXPECT_TRUE(req.echo);
  EXPECT_TRUE(req.stream);
  EXPECT_TRUE(req.stream_options.include_usage);
  EXPECT_EQ(req.priority, -2);
  EXPECT_TRUE(req.return_token_ids);
  EXPECT_FALSE(req.add_special_tokens);
}

TEST(CompletionRequestTest, DefaultsComeFromGenerationConfig) {
  ParseContext ctx = context();
  ctx.default_sampling.temperature = 0.6;
  ctx.default_sampling.top_p = 0.9;
  auto r = parse_completion_request(R"({"prompt": "x", "top_p": 0.5})", ctx);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r.value().params.temperature, 0.6);
  EXPECT_DOUBLE_EQ(r.value().params.top_p, 0.5);  // the request wins
}

TEST(CompletionRequestTest, PromptShapes) {
  EXPECT_EQ(parse_ok(R"({"prompt": ["a", "b"]})").prompts.size(), 2u);
  CompletionRequest ids = parse_ok(R"({"prompt": [1, 2, 3]})");
  ASSERT_EQ(ids.prompts.size(), 1u);
  EXPECT_EQ(std::get<std::vector<int32_t>>(ids.prompts[0]), (std::vector<int32_t>{1, 2, 3}));
  CompletionRequest lists = parse_ok(R"({"prompt": [[1, 2], [3]]})");
  ASSERT_EQ(lists.prompts.size(), 2u);
  EXPECT_EQ(std::get<std::vector<int32_t>>(lists.prompts[1]), (std::vector<int32_t>{3}));
}

TEST(CompletionRequestTest, BadPrompts) {
  EXPECT_EQ(parse_err(R"({})").code, "missing_required_parameter");
  EXPECT_EQ(parse_err(R"({"prompt": ""})").param, "prompt");
  EXPECT_EQ(parse_err(R"({"prompt": []})").param, "prompt");
  EXPECT_EQ(parse_err(R"({"prompt": ["a", ""]})").param, "prompt[1]");
  EXPECT_EQ(parse_err(R"({"prompt": ["a", 1]})").code, "invalid_type");
  EXPECT_EQ(parse_err(R"({"prompt": [1, 100]})").param, "prompt[1]");  // out of the vocabulary
  EXPECT_EQ(parse_err(R"({"prompt": [1, -1]})").param, "prompt[1]");
  EXPECT_EQ(parse_err(R"({"prompt": [[1], []]})").param, "prompt[1]");
  EXPECT_EQ(parse_err(R"({"prompt": 5})").code, "invalid_type");
  EXPECT_EQ(parse_err(R"({"prompt": {"a": 1}})").param, "prompt");
}

TEST(CompletionRequestTest, MalformedBodies) {
  for (std::string_view body : {"", "{", "not json", "{\"prompt\": \"x\",}", "[1, 2]", "\"x\"",
                                "null", "{\"prompt\": \"\xff\"}"}) {
    ApiError e = parse_err(body);
    EXPECT_EQ(e.http_status, 400) << body;
    EXPECT_TRUE(e.code == "invalid_json" || e.code == "invalid_type") << body << " " << e.code;
  }
}

TEST(CompletionRequestTest, UnknownModelIs404) {
  ApiError e = parse_err(R"({"model": "gpt-4", "prompt": "x"})");
  EXPECT_EQ(e.http_status, 404);
  EXPECT_EQ(e.code, "model_not_found");
  EXPECT_EQ(e.param, "model");
}

TEST(CompletionRequestTest, UnknownFieldRejected) {
  ApiError e = parse_err(R"({"prompt": "x", "temprature": 0.5})");
  EXPECT_EQ(e.code, "unknown_parameter");
  EXPECT_EQ(e.param, "temprature");
  EXPECT_EQ(parse_err(R"({"prompt": "x", "stream": true, "stream_options": {"x": 1}})").param,
            "stream_options.x");
}

TEST(CompletionRequestTest, WrongTypes) {
  struct Case {
    const char* body;
    const char* param;
  };
  for (const Case& c : std::initializer_list<Case>{
           {R"({"prompt": "x", "max_tokens": "5"})", "max_tokens"},
           {R"({"prompt": "x", "max_tokens": 5.5})", "max_tokens"},
           {R"({"prompt": "x", "temperature": "hot"})", "temperature"},
           {R"({"prompt": "x", "stream": 1})", "stream"},
           {R"({"prompt": "x", "stop": 5})", "stop"},
           {R"({"prompt": "x", "stop": ["a", 5]})", "stop[1]"},
           {R"({"prompt": "x", "logit_bias": [1]})", "logit_bias"},
           {R"({"prompt": "x", "logit_bias": {"1": "a"}})", "logit_bias"},
           {R"({"prompt": "x", "seed": 1.5})", "seed"},
           {R"({"prompt": "x", "echo": "yes"})", "echo"},
           {R"({"prompt": "x", "stop_token_ids": [1.5]})", "stop_token_ids[0]"},
           {R"({"prompt": "x", "model": 3})", "model"},
       }) {
    ApiError e = parse_err(c.body);
    EXPECT_EQ(e.http_status, 400) << c.body;
    EXPECT_EQ(e.code, "invalid_type") << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
  }
}

TEST(CompletionRequestTest, InvalidValues) {
  struct Case {
    const char* body;
    const char* param;
  };
  for (const Case& c : std::initializer_list<Case>{
           {R"({"prompt": "x", "max_tokens": 0})", "max_tokens"},
           {R"({"prompt": "x", "max_tokens": -3})", "max_tokens"},
           {R"({"prompt": "x", "n": 0})", "n"},
           {R"({"prompt": "x", "n": 1000})", "n"},
           {R"({"prompt": "x", "temperature": -0.1})", "temperature"},
           {R"({"prompt": "x", "top_p": 0})", "top_p"},
           {R"({"prompt": "x", "top_p": 1.5})", "top_p"},
           {R"({"prompt": "x", "top_k": -2})", "top_k"},
           {R"({"prompt": "x", "min_p": 2})", "min_p"},
           {R"({"prompt": "x", "repetition_penalty": 0})", "repetition_penalty"},
           {R"({"prompt": "x", "presence_penalty": 3})", "presence_penalty"},
           {R"({"prompt": "x", "frequency_penalty": -2.5})", "frequency_penalty"},
           {R"({"prompt": "x", "logit_bias": {"abc": 1}})", "logit_bias"},
           {R"({"prompt": "x", "logit_bias": {"100": 1}})", "logit_bias"},
           {R"({"prompt": "x", "logit_bias": {"1": 101}})", "logit_bias"},
           {R"({"prompt": "x", "logprobs": 21})", "logprobs"},
           {R"({"prompt": "x", "logprobs": -1})", "logprobs"},
           {R"({"prompt": "x", "stop": ""})", "stop"},
           {R"({"prompt": "x", "stop_token_ids": [100]})", "stop_token_ids[0]"},
           {R"({"prompt": "x", "min_tokens": 20})", "min_tokens"},  // > max_tokens (16)
           {R"({"prompt": "x", "stream_options": {"include_usage": true}})", "stream_options"},
           {R"({"prompt": "x", "prompt_logprobs": 50})", "prompt_logprobs"},
       }) {
    ApiError e = parse_err(c.body);
    EXPECT_EQ(e.http_status, 400) << c.body;
    EXPECT_EQ(e.code, "invalid_value") << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_NE(e.message.find(c.param), std::string::npos) << e.message;
  }
}

TEST(CompletionRequestTest, BeamSearch) {
  CompletionRequest req = parse_ok(
      R"({"prompt": "x", "use_beam_search": true, "n": 4, "length_penalty": 0.5, "max_tokens": 3})");
  EXPECT_TRUE(req.beam_search.enabled);
  EXPECT_DOUBLE_EQ(req.beam_search.length_penalty, 0.5);
  EXPECT_DOUBLE_EQ(req.beam_search.temperature, 0.0);
  EXPECT_EQ(req.params.n, 4);
  EXPECT_FALSE(parse_ok(R"({"prompt": "x", "length_penalty": 2})").beam_search.enabled);
}

TEST(CompletionRequestTest, UnsupportedFeatures) {
  EXPECT_EQ(parse_err(R"({"prompt": "x", "suffix": "y"})").code, "unsupported_value");
  EXPECT_EQ(parse_err(R"({"prompt": "x", "best_of": 2})").param, "best_of");
  EXPECT_EQ(parse_err(R"({"prompt": "x", "response_format": {"type": "xml"}})").param,
            "response_format.type");
  // Beam search is served (n beams) but answers whole, without logprobs.
  EXPECT_EQ(parse_err(R"({"prompt": "x", "use_beam_search": true, "stream": true})").param,
            "stream");
  EXPECT_EQ(parse_err(R"({"prompt": "x", "use_beam_search": true, "n": 33})").param, "n");
  EXPECT_EQ(parse_err(R"({"prompt": "x", "use_beam_search": true, "logprobs": 1})").param,
            "use_beam_search");
  // Neutral values pass.
  parse_ok(R"({"prompt": "x", "suffix": "", "best_of": 1, "response_format": {"type": "text"}})");
}

TEST(CompletionRequestTest, StructuredOutputs) {
  // Every spelling of a constraint lands in params.structured_outputs.
  CompletionRequest r = parse_ok(R"({"prompt": "x", "response_format": {"type": "json_object"}})");
  ASSERT_TRUE(r.params.structured_outputs);
  EXPECT_TRUE(r.params.structured_outputs->json_object);
  r = parse_ok(R"({"prompt": "x", "response_format": {"type": "json_schema", "json_schema":
                   {"name": "a", "strict": true, "schema": {"type": "object"}}}})");
  EXPECT_EQ(r.params.structured_outputs->json.value_or(""), R"({"type":"object"})");
  r = parse_ok(R"({"prompt": "x", "guided_json": "{\"type\": \"integer\"}"})");
  EXPECT_EQ(r.params.structured_outputs->json.value_or(""), R"({"type":"integer"})");
  r = parse_ok(R"({"prompt": "x", "structured_outputs": {"regex": "a+",
                   "disable_any_whitespace": true}})");
  EXPECT_EQ(r.params.structured_outputs->regex.value_or(""), "a+");
  EXPECT_TRUE(r.params.structured_outputs->disable_any_whitespace);
  r = parse_ok(R"({"prompt": "x", "guided_choice": ["a", "b"]})");
  EXPECT_EQ(r.params.structured_outputs->choice->size(), 2u);
  r = parse_ok(R"({"prompt": "x", "guided_grammar": "root ::= \"a\""})");
  EXPECT_TRUE(r.params.structured_outputs->grammar);
  r = parse_ok(R"({"prompt": "x", "response_format": {"type": "text"}})");
  EXPECT_FALSE(r.params.structured_outputs);
  // Two constraints conflict; bad shapes name the field.
  EXPECT_NE(parse_err(R"({"prompt": "x", "guided_json": {}, "guided_regex": "a"})")
                .message.find("conflicts"),
            std::string::npos);
  EXPECT_EQ(parse_err(R"({"prompt": "x", "guided_json": 3})").param, "guided_json");
  EXPECT_EQ(parse_err(R"({"prompt": "x", "guided_choice": [1]})").param, "guided_choice");
  EXPECT_EQ(parse_err(R"({"prompt": "x", "structured_outputs": {}})").param,
            "structured_outputs");
  EXPECT_EQ(parse_err(R"({"prompt": "x", "structured_outputs": {"jsn": {}}})").param,
            "structured_outputs.jsn");
  EXPECT_EQ(parse_err(R"({"prompt": "x", "response_format": {"type": "json_schema"}})").param,
            "response_format.json_schema");
}

TEST(CompletionRequestTest, NullMeansAbsent) {
  CompletionRequest req = parse_ok(
      R"({"prompt": "x", "max_tokens": null, "temperature": null, "stop": null, "seed": null})");
  EXPECT_EQ(req.params.max_tokens, 16);
  EXPECT_FALSE(req.params.seed.has_value());
}

TEST(CompletionRequestTest, IntegralFloatsAreIntegers) {
  EXPECT_EQ(parse_ok(R"({"prompt": "x", "max_tokens": 8.0})").params.max_tokens, 8);
}

TEST(DetokenizeRequestTest, Parses) {
  auto r = parse_detokenize_request(R"({"tokens": [1, 2]})", context());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().tokens, (std::vector<int32_t>{1, 2}));
  EXPECT_FALSE(parse_detokenize_request(R"({"tokens": [1000]})", context()).ok());
  EXPECT_EQ(parse_detokenize_request(R"({})", context()).error().code,
            "missing_required_parameter");
}

TEST(TokenizeRequestTest, PromptAndMessages) {
  auto p = parse_tokenize_request(R"({"prompt": "hello"})", context());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value().prompt, "hello");
  EXPECT_TRUE(p.value().add_special_tokens);
  auto m =
      parse_tokenize_request(R"({"messages": [{"role": "user", "content": "hi"}]})", context());
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m.value().messages_json.has_value());
  EXPECT_FALSE(m.value().add_special_tokens);
  EXPECT_TRUE(m.value().template_options.add_generation_prompt);
  EXPECT_FALSE(parse_tokenize_request(R"({})", context()).ok());
  EXPECT_EQ(parse_tokenize_request(R"({"prompt": "x", "foo": 1})", context()).error().param, "foo");
}

}  // namespace
}  // namespace kite::server
