#include "checkpoint/config.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <string>

#include "checkpoint/generation_config.h"
#include "core/mapped_file.h"

namespace kite {
namespace {

const std::string kConfigs = std::string(KITE_SOURCE_DIR) + "/tests/data/configs/";

ModelConfig parse_file(const std::string& path) {
  auto text = read_file(path);
  EXPECT_TRUE(text.ok()) << path;
  auto c = parse_hf_config(*text);
  EXPECT_TRUE(c.ok()) << path << ": " << c.status().to_string();
  return c.ok() ? *c : ModelConfig{};
}

void expect_error(const std::string& json, StatusCode code, const std::string& message) {
  auto c = parse_hf_config(json);
  ASSERT_FALSE(c.ok()) << json;
  EXPECT_EQ(c.status().code(), code) << c.status().to_string();
  EXPECT_EQ(c.status().message(), message);
}

// A valid config with one field replaced or added.
std::string with(const std::string& field_json) {
  return R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 100, "hidden_size": 64,
             "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, )" +
         field_json + "}";
}

TEST(ConfigTest, Llama3_8B) {
  const ModelConfig c = parse_file(kConfigs + "llama-3-8b/config.json");
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.family, ModelFamily::kLlama);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_EQ(c.num_hidden_layers, 32);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::kNone);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{128001});
  EXPECT_EQ(c.torch_dtype, DType::kBF16);
  EXPECT_EQ(c.q_size(), 4096);
  EXPECT_EQ(c.kv_size(), 1024);
}

TEST(ConfigTest, Llama31RopeScaling) {
  const ModelConfig c = parse_file(kConfigs + "llama-3.1-8b/config.json");
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{128001, 128008, 128009}));
}

TEST(ConfigTest, Qwen25HasBiasesTiedEmbeddingsAndNoWindow) {
  const ModelConfig c = parse_file(kConfigs + "qwen2.5-0.5b/config.json");
  EXPECT_EQ(c.family, ModelFamily::kQwen2);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.sliding_window.has_value());  // use_sliding_window is false
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.torch_dtype, DType::kF32);
}

TEST(ConfigTest, Qwen3HeadDimAndQkNorm) {
  const ModelConfig c = parse_file(kConfigs + "qwen3-0.6b/config.json");
  EXPECT_EQ(c.family, ModelFamily::kQwen3);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.head_dim, 128);  // not hidden / heads (64)
  EXPECT_EQ(c.q_size(), 2048);
}

TEST(ConfigTest, MistralSlidingWindow) {
  const ModelConfig c = parse_file(kConfigs + "mistral-7b-v0.1/config.json");
  EXPECT_EQ(c.family, ModelFamily::kMistral);
  EXPECT_EQ(c.sliding_window, 4096);
}

TEST(ConfigTest, TinyStories) {
  const ModelConfig c =
      parse_file(std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k/config.json");
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.torch_dtype, DType::kF32);
}

TEST(ConfigTest, TransformersFiveRopeParametersAndModelTypeFallback) {
  auto c = parse_hf_config(R"({"model_type": "qwen3", "vocab_size": 10, "hidden_size": 8,
      "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
      "dtype": "float16",
      "rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 5000.0}})");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->architecture, "Qwen3ForCausalLM");
  EXPECT_DOUBLE_EQ(c->rope_theta, 5000.0);
  EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kLinear);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 2.0);
  EXPECT_EQ(c->torch_dtype, DType::kF16);
  EXPECT_EQ(c->num_key_value_heads, 2);  // defaults to num_attention_heads
}

TEST(ConfigTest, Phi3MiniAndPhi4) {
  const ModelConfig mini = parse_file(kConfigs + "phi-3-mini-4k/config.json");
  EXPECT_EQ(mini.family, ModelFamily::kPhi3);
  EXPECT_EQ(mini.sliding_window, 2047);  // Phi-3 applies its window to every layer
  EXPECT_EQ(mini.rotary_dim(), 96);
  EXPECT_EQ(mini.hidden_act, Activation::kSilu);
  const ModelConfig phi4 = parse_file(kConfigs + "phi-4/config.json");
  EXPECT_EQ(phi4.num_key_value_heads, 10);
  EXPECT_FALSE(phi4.sliding_window.has_value());
  EXPECT_EQ(phi4.rope_theta, 250000);
  // Phi-4-mini rotates 3/4 of each head.
  auto o = boost::json::parse(read_file(kConfigs + "phi-4/config.json").value()).as_object();
  o["partial_rotary_factor"] = 0.75;
  auto partial = parse_hf_config(boost::json::serialize(o));
  ASSERT_TRUE(partial.ok()) << partial.status().to_string();
  EXPECT_EQ(partial->rotary_dim(), 96);
  o["partial_rotary_factor"] = 0.3;  // 128 * 0.3 = 38.4 -> 38 dims: even, accepted
  EXPECT_TRUE(parse_hf_config(boost::json::serialize(o)).ok());
  o["partial_rotary_factor"] = 1.5;
  EXPECT_EQ(parse_hf_config(boost::json::serialize(o)).status().message(),
            "config.json: partial_rotary_factor 1.5 must be in (0, 1] and give an even rotary dim "
            "(head_dim 128 -> 192)");
}

TEST(ConfigTest, Gemma2AlternatesSlidingLayersAndSoftCaps) {
  const ModelConfig c = parse_file(kConfigs + "gemma-2-2b/config.json");
  EXPECT_EQ(c.family, ModelFamily::kGemma2);
  EXPECT_EQ(c.hidden_act, Activation::kGeluTanh);
  EXPECT_TRUE(c.tie_word_embeddings);  // Gemma2Config's default; the file has no key
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_EQ(c.query_pre_attn_scalar, 256);
  EXPECT_EQ(c.attn_logit_softcapping, 50);
  EXPECT_EQ(c.final_logit_softcapping, 30);
  EXPECT_EQ(c.sliding_window, 4096);
  ASSERT_EQ(c.sliding_layers.size(), 26u);
  EXPECT_TRUE(c.sliding_layers[0]);
  EXPECT_FALSE(c.sliding_layers[1]);
  EXPECT_TRUE(c.sliding_layers[24]);
  EXPECT_FALSE(c.qk_norm);
}

TEST(ConfigTest, Gemma3PatternLayerTypesAndTwoRopeBases) {
  const ModelConfig c = parse_file(kConfigs + "gemma-3-1b/config.json");
  EXPECT_EQ(c.family, ModelFamily::kGemma3);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.attn_logit_softcapping, 0);  // null: none
  EXPECT_EQ(c.final_logit_softcapping, 0);
  EXPECT_EQ(c.rope_theta, 1000000);
  EXPECT_EQ(c.rope_local_base_freq, 10000);
  ASSERT_EQ(c.sliding_layers.size(), 26u);
  for (size_t l = 0; l < 26; ++l) EXPECT_EQ(c.sliding_layers[l], (l + 1) % 6 != 0) << l;

  // layer_types wins over the pattern; transformers 5's per-layer-type rope_parameters.
  auto o = boost::json::parse(read_file(kConfigs + "gemma-3-1b/config.json").value()).as_object();
  o["num_hidden_layers"] = 3;
  o["layer_types"] = boost::json::array{"full_attention", "sliding_attention", "full_attention"};
  o.erase("rope_theta");
  o.erase("rope_local_base_freq");
  o["rope_parameters"] = boost::json::parse(
      R"({"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
          "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}})");
  auto t5 = parse_hf_config(boost::json::serialize(o));
  ASSERT_TRUE(t5.ok()) << t5.status().to_string();
  EXPECT_EQ(t5->sliding_layers, (std::vector<bool>{false, true, false}));
  EXPECT_EQ(t5->rope_scaling.type, RopeScaling::Type::kLinear);
  EXPECT_EQ(t5->rope_scaling.factor, 8.0);
  EXPECT_EQ(t5->rope_theta, 1000000.0);
  EXPECT_EQ(t5->rope_local_base_freq, 10000.0);

  o["layer_types"] = boost::json::array{"full_attention", "chunked_attention", "full_attention"};
  EXPECT_EQ(parse_hf_config(boost::json::serialize(o)).status().message(),
            "config.json: layer_types[1] must be \"sliding_attention\" or \"full_attention\", "
            "got \"chunked_attention\"");
  o["layer_types"] = boost::json::array{"full_attention"};
  EXPECT_EQ(parse_hf_config(boost::json::serialize(o)).status().message(),
            "config.json: field 'layer_types' must be a list of num_hidden_layers (3) strings");
  o.erase("layer_types");
  o["hidden_activation"] = "silu";
  EXPECT_EQ(parse_hf_config(boost::json::serialize(o)).status().message(),
            "config.json: hidden_activation 'silu' is not supported for Gemma3ForCausalLM "
            "(gelu_pytorch_tanh is)");
}

TEST(ConfigTest, Gemma3MultimodalReadsItsSparseTextConfig) {
  // google/gemma-3-4b-it's config.json, vision_config shortened.
  auto c = parse_hf_config(R"({
    "architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999,
    "eoi_token_index": 256000, "eos_token_id": [1, 106], "image_token_index": 262144,
    "initializer_range": 0.02, "mm_tokens_per_image": 256, "model_type": "gemma3",
    "text_config": {"hidden_size": 2560, "intermediate_size": 10240,
                    "model_type": "gemma3_text", "num_hidden_layers": 34,
                    "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                    "sliding_window": 1024},
    "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0",
    "vision_config": {"hidden_size": 1152, "model_type": "siglip_vision_model"}})");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->architecture, "Gemma3ForConditionalGeneration");
  EXPECT_EQ(c->family, ModelFamily::kGemma3);
  EXPECT_EQ(c->vocab_size, 262208);  // Gemma3TextConfig defaults
  EXPECT_EQ(c->num_attention_heads, 8);
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(c->head_dim, 256);
  EXPECT_EQ(c->hidden_size, 2560);
  EXPECT_EQ(c->num_hidden_layers, 34);
  EXPECT_EQ(c->sliding_window, 1024);
  EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kLinear);
  EXPECT_EQ(c->rope_local_base_freq, 10000);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int32_t>{1, 106}));
  EXPECT_EQ(c->torch_dtype, DType::kBF16);
  EXPECT_TRUE(c->tie_word_embeddings);
  // transformers 5's form: the RoPE bases in rope_parameters, not shadowed by the defaults.
  auto t5 = parse_hf_config(R"({"architectures": ["Gemma3ForConditionalGeneration"],
    "text_config": {"num_hidden_layers": 2, "rope_parameters": {
      "full_attention": {"rope_type": "default", "rope_theta": 500000.0},
      "sliding_attention": {"rope_type": "default", "rope_theta": 20000.0}}}})");
  ASSERT_TRUE(t5.ok()) << t5.status().to_string();
  EXPECT_EQ(t5->rope_theta, 500000.0);
  EXPECT_EQ(t5->rope_local_base_freq, 20000.0);
  EXPECT_EQ(parse_hf_config(R"({"architectures": ["Gemma3ForConditionalGeneration"]})")
                .status()
                .message(),
            "config.json: field 'text_config' must be an object (Gemma3ForConditionalGeneration)");
}

TEST(ConfigTest, Phi3LongRope) {
  auto o =
      boost::json::parse(read_file(kConfigs + "phi-3-mini-4k/config.json").value()).as_object();
  o["max_position_embeddings"] = 131072;
  boost::json::array short_f, long_f;
  for (int i = 0; i < 48; ++i) {
    short_f.push_back(1.0 + i / 100.0);
    long_f.push_back(1.0 + i);
  }
  o["rope_scaling"] =
      boost::json::object{{"type", "su"}, {"short_factor", short_f}, {"long_factor", long_f}};
  auto c = parse_hf_config(boost::json::serialize(o));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const RopeScaling& rs = c->rope_scaling;
  EXPECT_EQ(rs.type, RopeScaling::Type::kLongRope);
  EXPECT_EQ(rs.original_max_position_embeddings, 4096);
  EXPECT_EQ(rs.short_factor.size(), 48u);
  EXPECT_EQ(rs.long_factor[47], 48.0);
  // transformers' default: sqrt(1 + ln(131072 / 4096) / ln(4096)).
  EXPECT_NEAR(rs.attention_factor, std::sqrt(1 + std::log(32.0) / std::log(4096.0)), 1e-12);
  o["rope_scaling"].as_object()["attention_factor"] = 1.5;
  EXPECT_EQ(parse_hf_config(boost::json::serialize(o))->rope_scaling.attention_factor, 1.5);

  // transformers 5's form (Phi3Config().to_dict()): original context and partial rotary inside
  // rope_parameters; a rope factor, when given, is the attention factor's scale.
  auto t5 = o;
  t5.erase("rope_scaling");
  t5.erase("original_max_position_embeddings");
  t5.erase("rope_theta");
  boost::json::array short36(36, 1.0), long36(36, 2.0);
  t5["rope_parameters"] = boost::json::object{
      {"rope_type", "longrope"},       {"short_factor", short36},
      {"long_factor", long36},         {"rope_theta", 10000.0},
      {"partial_rotary_factor", 0.75}, {"original_max_position_embeddings", 4096}};
  auto c5 = parse_hf_config(boost::json::serialize(t5));
  ASSERT_TRUE(c5.ok()) << c5.status().to_string();
  EXPECT_EQ(c5->rotary_dim(), 72);
  EXPECT_EQ(c5->rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_NEAR(c5->rope_scaling.attention_factor, std::sqrt(1 + std::log(32.0) / std::log(4096.0)),
              1e-12);
  t5["rope_parameters"].as_object()["factor"] = 4.0;
  EXPECT_NEAR(parse_hf_config(boost::json::serialize(t5))->rope_scaling.attention_factor,
              std::sqrt(1 + std::log(4.0) / std::log(4096.0)), 1e-12);

  o["rope_scaling"].as_object()["long_factor"] = boost::json::array{1.0, 2.0};
  auto bad = parse_hf_config(boost::json::serialize(o));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "config.json: rope_scaling longrope needs short_factor and long_factor of "
            "rotary_dim / 2 = 48 values (got 48 and 2)");
  o["rope_scaling"].as_object().erase("long_factor");
  EXPECT_EQ(parse_hf_config(boost::json::serialize(o)).status().message(),
            "config.json: rope_scaling: field 'long_factor' must be a list of numbers");
}

TEST(ConfigErrorTest, MalformedJson) {
  auto c = parse_hf_config(R"({"architectures": ["LlamaForCausalLM"], )");
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message().rfind("config.json: malformed JSON", 0), 0u)
      << c.status().message();
  expect_error("[1, 2]", StatusCode::kInvalidArgument,
               "config.json: must be a JSON object, got array");
}

TEST(ConfigTest, Qwen3MoeExpertsAndSparseLayers) {
  const ModelConfig c = parse_file(kConfigs + "qwen3-30b-a3b/config.json");
  EXPECT_EQ(c.family, ModelFamily::kQwen3Moe);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_TRUE(c.is_moe());
  EXPECT_EQ(c.num_experts, 128);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_EQ(c.moe_intermediate_size, 768);
  EXPECT_EQ(c.intermediate_size, 6144);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.moe_layers, std::vector<bool>(48, true));
  EXPECT_FALSE(c.sliding_window.has_value());

  // decoder_sparse_step 2 makes layers 1, 3, 5 sparse; mlp_only_layers takes 3 back.
  auto o =
      boost::json::parse(read_file(kConfigs + "qwen3-30b-a3b/config.json").value()).as_object();
  o["num_hidden_layers"] = 6;
  o["decoder_sparse_step"] = 2;
  o["mlp_only_layers"] = boost::json::array{3};
  o.erase("norm_topk_prob");  // Qwen3MoeConfig's default: false
  auto c2 = parse_hf_config(boost::json::serialize(o));
  ASSERT_TRUE(c2.ok()) << c2.status().to_string();
  EXPECT_EQ(c2->moe_layers, (std::vector<bool>{false, true, false, false, false, true}));
  EXPECT_FALSE(c2->norm_topk_prob);

  o["mlp_only_layers"] = boost::json::array{6};
  EXPECT_EQ(parse_hf_config(boost::json::serialize(o)).status().message(),
            "config.json: mlp_only_layers entries must be layer indices in [0, 6), got 6");
  o["mlp_only_layers"] = boost::json::array{};
  o["num_experts_per_tok"] = 129;
  EXPECT_EQ(parse_hf_config(boost::json::serialize(o)).status().message(),
            "config.json: num_experts_per_tok must be in [1, 128] (the experts), got 129");
  o["num_experts_per_tok"] = 8;
  o["decoder_sparse_step"] = 0;
  EXPECT_EQ(parse_hf_config(boost::json::serialize(o)).status().message(),
            "config.json: decoder_sparse_step must be positive, got 0");
  o["decoder_sparse_step"] = 1;
  o["use_sliding_window"] = true;
  o["sliding_window"] = 4096;
  EXPECT_EQ(parse_hf_config(boost::json::serialize(o)).status().code(), StatusCode::kUnimplemented);
}

TEST(ConfigTest, MixtralExpertsAreIntermediateSizedAndRenormalized) {
  const ModelConfig c = parse_file(kConfigs + "mixtral-8x7b-v0.1/config.json");
  EXPECT_EQ(c.family, ModelFamily::kMixtral);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.num_experts_per_tok, 2);
  EXPECT_EQ(c.moe_intermediate_size, 14336);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.moe_layers, std::vector<bool>(32, true));
  EXPECT_FALSE(c.sliding_window.has_value());  // null in the published config
  auto o =
      boost::json::parse(read_file(kConfigs + "mixtral-8x7b-v0.1/config.json").value()).as_object();
  o["sliding_window"] = 4096;
  o["num_local_experts"] = 0;
  EXPECT_EQ(parse_hf_config(boost::json::serialize(o)).status().message(),
            "config.json: num_local_experts must be in [1, 4096], got 0");
  o["num_local_experts"] = 8;
  auto windowed = parse_hf_config(boost::json::serialize(o));
  ASSERT_TRUE(windowed.ok());
  EXPECT_EQ(windowed->sliding_window, 4096);
}

TEST(ConfigErrorTest, UnknownArchitectureNamesTheSupportedOnes) {
  expect_error(R"({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})",
               StatusCode::kUnimplemented,
               "config.json: architecture 'GPT2LMHeadModel' is not supported (supported: "
               "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
               "Phi3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, "
               "Gemma3ForConditionalGeneration, Qwen3MoeForCausalLM, MixtralForCausalLM)");
  expect_error(R"({"model_type": "gemma"})", StatusCode::kUnimplemented,
               "config.json: architecture 'gemma' is not supported (supported: "
               "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
               "Phi3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, "
               "Gemma3ForConditionalGeneration, Qwen3MoeForCausalLM, MixtralForCausalLM)");
  expect_error("{}", StatusCode::kInvalidArgument, "config.json: missing field 'architectures'");
  expect_error(R"({"architectures": []})", StatusCode::kInvalidArgument,
               "config.json: field 'architectures' must be a non-empty list of strings");
}

TEST(ConfigErrorTest, MissingAndMistypedFields) {
  expect_error(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 100})",
               StatusCode::kInvalidArgument, "config.json: missing field 'hidden_size'");
  expect_error(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": "100"})",
               StatusCode::kInvalidArgument,
               "config.json: field 'vocab_size' must be an integer, got string");
  // A number outside int64's range (found by fuzzing: the cast used to come before the check).
  expect_error(with(R"("num_key_value_heads": 3.5e30)"), StatusCode::kInvalidArgument,
               "config.json: field 'num_key_value_heads' must be an integer, got number");
  expect_error(with(R"("rms_norm_eps": "small")"), StatusCode::kInvalidArgument,
               "config.json: field 'rms_norm_eps' must be a number, got string");
  expect_error(with(R"("tie_word_embeddings": 1)"), StatusCode::kInvalidArgument,
               "config.json: field 'tie_word_embeddings' must be a bool, got integer");
  expect_error(with(R"("eos_token_id": [2, "x"])"), StatusCode::kInvalidArgument,
               "config.json: field 'eos_token_id' must be a token id or a list of token ids, got "
               "string");
  expect_error(with(R"("rope_scaling": 8)"), StatusCode::kInvalidArgument,
               "config.json: field 'rope_scaling' must be an object, got integer");
}

TEST(ConfigErrorTest, UnsupportedFeatures) {
  expect_error(with(R"("rope_scaling": {"rope_type": "yarn", "factor": 4.0})"),
               StatusCode::kUnimplemented,
               "config.json: rope_scaling type 'yarn' is not supported (default, linear, llama3 "
               "and longrope are)");
  expect_error(with(R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0})"),
               StatusCode::kInvalidArgument,
               "config.json: rope_scaling: missing field 'low_freq_factor'");
  expect_error(with(R"("hidden_act": "gelu")"), StatusCode::kUnimplemented,
               "config.json: hidden_act 'gelu' is not supported (silu is)");
  expect_error(with(R"("mlp_bias": true)"), StatusCode::kUnimplemented,
               "config.json: mlp_bias true is not supported");
  // Qwen2's sliding window covers only the layers from max_window_layers on.
  expect_error(R"({"architectures": ["Qwen2ForCausalLM"], "vocab_size": 100, "hidden_size": 64,
                   "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "sliding_window": 64, "use_sliding_window": true})",
               StatusCode::kUnimplemented,
               "config.json: use_sliding_window true is not supported for Qwen2ForCausalLM "
               "(per-layer sliding windows)");
  expect_error(R"({"architectures": ["MistralForCausalLM"], "vocab_size": 100, "hidden_size": 64,
                   "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "sliding_window": 0})",
               StatusCode::kInvalidArgument, "config.json: sliding_window must be positive, got 0");
  expect_error(with(R"("torch_dtype": "float64")"), StatusCode::kUnimplemented,
               "config.json: torch_dtype 'float64' is not supported (float32, float16, bfloat16 "
               "are)");
}

TEST(ConfigErrorTest, ValidationNamesTheField) {
  expect_error(with(R"("num_key_value_heads": 3)"), StatusCode::kInvalidArgument,
               "config.json: num_attention_heads 4 is not a multiple of num_key_value_heads 3");
  expect_error(with(R"("num_key_value_heads": 0)"), StatusCode::kInvalidArgument,
               "config.json: num_key_value_heads must be positive, got 0");
  expect_error(with(R"("head_dim": 15)"), StatusCode::kInvalidArgument,
               "config.json: head_dim 15 must be even (RoPE rotates pairs)");
  expect_error(with(R"("max_position_embeddings": -1)"), StatusCode::kInvalidArgument,
               "config.json: max_position_embeddings must be positive, got -1");
  expect_error(with(R"("rms_norm_eps": 0)"), StatusCode::kInvalidArgument,
               "config.json: rms_norm_eps must be positive, got 0");
  expect_error(with(R"("head_dim": 4000000000)"), StatusCode::kInvalidArgument,
               "config.json: head_dim 4000000000 is larger than kite supports (16777216)");
  expect_error(with(R"("bos_token_id": 100)"), StatusCode::kInvalidArgument,
               "config.json: bos_token_id 100 is outside the vocabulary (100)");
  expect_error(
      R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 100, "hidden_size": 65,
          "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4})",
      StatusCode::kInvalidArgument,
      "config.json: hidden_size 65 is not a multiple of num_attention_heads 4 (and no head_dim "
      "is given)");
}

TEST(GenerationConfigTest, Qwen25Defaults) {
  auto text = read_file(kConfigs + "qwen2.5-0.5b/generation_config.json");
  ASSERT_TRUE(text.ok());
  auto g = parse_generation_config(*text);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g->do_sample, true);
  EXPECT_DOUBLE_EQ(*g->temperature, 0.7);
  EXPECT_DOUBLE_EQ(*g->top_p, 0.8);
  EXPECT_EQ(g->top_k, 20);
  EXPECT_DOUBLE_EQ(*g->repetition_penalty, 1.1);
  EXPECT_EQ(g->eos_token_ids, (std::vector<int32_t>{151645, 151643}));
  EXPECT_EQ(g->bos_token_id, 151643);
  EXPECT_EQ(g->pad_token_id, 151643);
  EXPECT_FALSE(g->min_p.has_value());
}

TEST(GenerationConfigTest, Errors) {
  EXPECT_EQ(parse_generation_config("{").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_generation_config(R"({"temperature": "hot"})").status().message(),
            "generation_config.json: field 'temperature' must be a number, got string");
  EXPECT_EQ(parse_generation_config(R"({"top_p": 1.5})").status().message(),
            "generation_config.json: top_p must be in (0, 1], got 1.5");
  EXPECT_EQ(parse_generation_config(R"({"eos_token_id": -1})").status().message(),
            "generation_config.json: field 'eos_token_id' must be a token id or a list of token "
            "ids, got integer");
}

}  // namespace
}  // namespace kite
