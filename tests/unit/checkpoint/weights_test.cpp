// load_model() on the shipped models and on broken copies of them: every bad file is a clear,
// specific error.
#include "checkpoint/weights.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstring>
#include <filesystem>
#include <string>

#include "checkpoint/loaders.h"
#include "checkpoint/safetensors.h"
#include "gguf_builder.h"
#include "models/load.h"
#include "safetensors_writer.h"
#include "support/test_util.h"

namespace kite {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const std::string kModels = std::string(KITE_SOURCE_DIR) + "/tests/data/models";
const std::string kTiny = kModels + "/tinystories-656k";
const std::string kStories = kModels + "/stories260k/stories260K.gguf";
const std::string kQ8 = kModels + "/tinystories-656k-q8_0.gguf";

void expect_load_error(const std::string& path, StatusCode code, const std::string& needle,
                       const LoadOptions& opts = {}) {
  auto r = load_model(path, opts);
  ASSERT_FALSE(r.ok()) << "expected an error containing '" << needle << "'";
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().to_string();
}

// A copy of the TinyStories directory (config, generation config, weights) to break.
std::string copy_tiny(const TempDir& tmp) {
  const std::string dir = tmp / "model";
  fs::create_directory(dir);
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors"}) {
    fs::copy_file(kTiny + "/" + f, dir + "/" + f);
  }
  return dir;
}

// Rewrites the copy's config.json with one field changed.
void set_config_field(const std::string& dir, const std::string& key, boost::json::value v) {
  auto cfg = boost::json::parse(testing::read_text(dir + "/config.json")).as_object();
  cfg[key] = std::move(v);
  testing::write_text(dir + "/config.json", boost::json::serialize(cfg));
}

std::vector<testing::StEntry> tiny_entries() {
  auto f = SafetensorsFile::open(kTiny + "/model.safetensors");
  EXPECT_TRUE(f.ok());
  return testing::entries_of(*f);
}

void write_safetensors(const std::string& path, const std::vector<testing::StEntry>& entries,
                       const std::map<std::string, std::string>& meta) {
  const auto b = testing::safetensors_bytes(entries, meta);
  testing::write_bytes(path, b.data(), b.size());
}

const std::map<std::string, std::string> kAlias = {{"format", "pt"},
                                                   {"model.embed_tokens.weight", "lm_head.weight"}};

TEST(LoadModelTest, TinyStoriesSafetensorsWithAliasedEmbedding) {
  auto m = load_model(kTiny);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const WeightStore& w = **m;
  EXPECT_EQ(w.format(), ModelFormat::kSafetensors);
  EXPECT_EQ(w.config().vocab_size, 2048);
  EXPECT_EQ(w.generation_config().eos_token_ids, std::vector<int32_t>{2});
  const TensorView* embed = w.find("model.embed_tokens.weight");
  const TensorView* head = w.find("lm_head.weight");
  ASSERT_TRUE(embed && head);
  EXPECT_EQ(embed->data, head->data);  // one matrix, no copy
  EXPECT_EQ(w.size(), 21u);
  EXPECT_EQ(w.weight_bytes(), 2624000);  // the file's data section: nothing copied
  EXPECT_EQ(w.gguf(), nullptr);
  EXPECT_EQ(w.get("nope").status().code(), StatusCode::kNotFound);
}

TEST(LoadModelTest, Stories260KGguf) {
  auto m = load_model(kStories);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const WeightStore& w = **m;
  EXPECT_EQ(w.format(), ModelFormat::kGguf);
  ASSERT_NE(w.gguf(), nullptr);
  EXPECT_EQ(w.gguf()->get_array_strings("tokenizer.ggml.tokens")->size(), 512u);
  const ModelConfig& c = w.config();
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_hidden_layers, 5);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_NEAR(c.rms_norm_eps, 1e-5, 1e-12);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_FALSE(c.tie_word_embeddings);  // output.weight is stored
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{2});
  // HF names; Q/K un-permuted into owned buffers, the rest viewed in place.
  const TensorView* q = w.find("model.layers.4.self_attn.q_proj.weight");
  const TensorView* v = w.find("model.layers.4.self_attn.v_proj.weight");
  ASSERT_TRUE(q && v);
  EXPECT_EQ(q->to_string(), "F32[64, 64]");
  const GgufTensorInfo& first = w.gguf()->tensors()[0];
  const uint8_t* base = w.gguf()->tensor_data(first) - first.offset - w.gguf()->data_offset();
  const uint8_t* file_end = base + 1185376;
  EXPECT_TRUE(v->data >= base && v->data < file_end);
  EXPECT_FALSE(q->data >= base && q->data < file_end);
}

TEST(LoadModelTest, Q8_0GgufStaysQuantized) {
  auto m = load_model(kQ8);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const WeightStore& w = **m;
  EXPECT_TRUE(w.config().tie_word_embeddings);  // no output.weight
  EXPECT_EQ(w.find("model.embed_tokens.weight")->dtype, DType::kQ8_0);
  EXPECT_EQ(w.find("lm_head.weight")->data, w.find("model.embed_tokens.weight")->data);
  EXPECT_EQ(w.find("model.norm.weight")->dtype, DType::kF32);
  EXPECT_LT(w.weight_bytes(), 800000);
}

TEST(LoadModelTest, GgufNames) {
  EXPECT_EQ(gguf_to_hf_name("token_embd.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(gguf_to_hf_name("output.weight"), "lm_head.weight");
  EXPECT_EQ(gguf_to_hf_name("output_norm.weight"), "model.norm.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.12.attn_q.weight"), "model.layers.12.self_attn.q_proj.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.0.attn_k.bias"), "model.layers.0.self_attn.k_proj.bias");
  EXPECT_EQ(gguf_to_hf_name("blk.3.attn_output.weight"), "model.layers.3.self_attn.o_proj.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.3.attn_q_norm.weight"), "model.layers.3.self_attn.q_norm.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.3.ffn_norm.weight"),
            "model.layers.3.post_attention_layernorm.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.3.attn_norm.weight"), "model.layers.3.input_layernorm.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.7.ffn_down.weight"), "model.layers.7.mlp.down_proj.weight");
  EXPECT_EQ(gguf_to_hf_name("rope_freqs.weight"), "rope_freqs.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.x.attn_q.weight"), std::nullopt);
  EXPECT_EQ(gguf_to_hf_name("blk.1.attn_qkv.weight"), std::nullopt);
  EXPECT_EQ(gguf_to_hf_name("blk.1"), std::nullopt);
}

TEST(LoadModelTest, DummyWeightsHaveTheConfiguredShapesAndDtype) {
  TempDir tmp;
  // Qwen2.5-0.5B's config cut to 2 layers and a small vocabulary: biases, tied embeddings.
  auto cfg = boost::json::parse(testing::read_text(std::string(KITE_SOURCE_DIR) +
                                                   "/tests/data/configs/qwen2.5-0.5b/config.json"))
                 .as_object();
  cfg["num_hidden_layers"] = 2;
  cfg["vocab_size"] = 1000;
  cfg["bos_token_id"] = 1;
  cfg["eos_token_id"] = 2;
  cfg["torch_dtype"] = "bfloat16";
  testing::write_text(tmp / "config.json", boost::json::serialize(cfg));
  LoadOptions opts;
  opts.load_format = "dummy";
  opts.seed = 3;
  auto m = load_model(tmp.path(), opts);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const WeightStore& w = **m;
  EXPECT_EQ(w.format(), ModelFormat::kDummy);
  for (const TensorSpec& spec : expected_tensors(w.config())) {
    const TensorView* t = w.find(spec.name);
    ASSERT_NE(t, nullptr) << spec.name;
    EXPECT_EQ(t->dtype, DType::kBF16) << spec.name;
  }
  EXPECT_NE(w.find("model.layers.1.self_attn.v_proj.bias"), nullptr);
  // Deterministic in the seed; config.json path works as well as the directory.
  auto again = load_model(tmp / "config.json", opts);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  const TensorView* a = w.find("model.layers.0.mlp.up_proj.weight");
  const TensorView* b = (*again)->find("model.layers.0.mlp.up_proj.weight");
  EXPECT_EQ(std::memcmp(a->data, b->data, static_cast<size_t>(a->nbytes())), 0);
  opts.seed = 4;
  auto other = load_model(tmp.path(), opts);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(std::memcmp(a->data, (*other)->find("model.layers.0.mlp.up_proj.weight")->data,
                        static_cast<size_t>(a->nbytes())),
            0);
}

TEST(LoadModelTest, DummyTooLargeForMemoryIsResourceExhausted) {
  TempDir tmp;
  testing::write_text(tmp / "config.json", R"({"architectures": ["LlamaForCausalLM"],
      "vocab_size": 1048576, "hidden_size": 1048576, "intermediate_size": 1024,
      "num_hidden_layers": 1, "num_attention_heads": 8192, "torch_dtype": "bfloat16"})");
  LoadOptions opts;
  opts.load_format = "dummy";
  expect_load_error(tmp.path(), StatusCode::kResourceExhausted, "GiB of memory is available", opts);
}

// ---- bad paths and directories ---------------------------------------------------------------

TEST(LoadModelErrorTest, Paths) {
  expect_load_error("/nonexistent/model", StatusCode::kNotFound,
                    "no such model path: /nonexistent/model");
  TempDir tmp;
  expect_load_error(tmp.path(), StatusCode::kNotFound, "no config.json in " + tmp.path());
  fs::copy_file(kTiny + "/config.json", tmp / "config.json");
  expect_load_error(tmp.path(), StatusCode::kNotFound,
                    "no model.safetensors or model.safetensors.index.json in " + tmp.path());
  testing::write_text(tmp / "pytorch_model.bin", "x");
  expect_load_error(tmp.path(), StatusCode::kUnimplemented,
                    "PyTorch .bin checkpoints are not supported");
  LoadOptions opts;
  opts.load_format = "gguf";
  expect_load_error(kTiny, StatusCode::kInvalidArgument, "expected a .gguf file", opts);
  opts.load_format = "safetensors";
  expect_load_error(kStories, StatusCode::kInvalidArgument,
                    "expected a Hugging Face model directory", opts);
  opts.load_format = "pickle";
  expect_load_error(kTiny, StatusCode::kInvalidArgument, "unknown load format 'pickle'", opts);
}

TEST(LoadModelErrorTest, MalformedConfigs) {
  TempDir tmp;
  const std::string dir = copy_tiny(tmp);
  testing::write_text(dir + "/config.json", "{\"architectures\": [");
  expect_load_error(dir, StatusCode::kInvalidArgument, "config.json: malformed JSON");
  fs::copy_file(kTiny + "/config.json", dir + "/config.json", fs::copy_options::overwrite_existing);
  set_config_field(dir, "architectures", boost::json::array{"FalconForCausalLM"});
  expect_load_error(dir, StatusCode::kUnimplemented,
                    "architecture 'FalconForCausalLM' is not supported (supported: "
                    "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
                    "Phi3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, "
                    "Gemma3ForConditionalGeneration, Qwen3MoeForCausalLM, MixtralForCausalLM)");
  fs::copy_file(kTiny + "/config.json", dir + "/config.json", fs::copy_options::overwrite_existing);
  testing::write_text(dir + "/generation_config.json", "{\"temperature\": }");
  expect_load_error(dir, StatusCode::kInvalidArgument, "generation_config.json: malformed JSON");
}

TEST(LoadModelErrorTest, ShapesThatDisagreeWithTheConfig) {
  TempDir tmp;
  const std::string dir = copy_tiny(tmp);
  set_config_field(dir, "intermediate_size", 256);
  expect_load_error(dir, StatusCode::kInvalidArgument,
                    "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [384, 128], expected "
                    "[256, 128] from the config");
  fs::copy_file(kTiny + "/config.json", dir + "/config.json", fs::copy_options::overwrite_existing);
  set_config_field(dir, "num_hidden_layers", 3);
  expect_load_error(dir, StatusCode::kNotFound,
                    "model has no tensor 'model.layers.2.input_layernorm.weight'");
}

TEST(LoadModelErrorTest, MissingTensor) {
  TempDir tmp;
  const std::string dir = copy_tiny(tmp);
  auto entries = tiny_entries();
  std::erase_if(entries,
                [](const auto& e) { return e.name == "model.layers.1.mlp.up_proj.weight"; });
  write_safetensors(dir + "/model.safetensors", entries, kAlias);
  expect_load_error(dir, StatusCode::kNotFound,
                    "model has no tensor 'model.layers.1.mlp.up_proj.weight'");
  // Without the metadata alias, the tied config still finds the embedding through lm_head.
  write_safetensors(dir + "/model.safetensors", tiny_entries(), {});
  EXPECT_TRUE(load_model(dir).ok());
  // Untied config, lm_head only: the embedding is missing.
  set_config_field(dir, "tie_word_embeddings", false);
  expect_load_error(dir, StatusCode::kNotFound, "model has no tensor 'model.embed_tokens.weight'");
}

TEST(LoadModelErrorTest, WrongDtypes) {
  TempDir tmp;
  const std::string dir = copy_tiny(tmp);
  auto entries = tiny_entries();
  for (auto& e : entries) {
    if (e.name == "model.layers.0.self_attn.k_proj.weight") e.dtype = "I32";
  }
  write_safetensors(dir + "/model.safetensors", entries, kAlias);
  expect_load_error(dir, StatusCode::kInvalidArgument,
                    "tensor 'model.layers.0.self_attn.k_proj.weight' has dtype I32; weight "
                    "matrices must be F32, F16 or BF16 or a GGUF quantization");
  entries = tiny_entries();
  for (auto& e : entries) {
    if (e.name == "model.norm.weight") {
      e.dtype = "F64";
      e.shape = {64};  // 512 bytes = 64 doubles
    }
  }
  write_safetensors(dir + "/model.safetensors", entries, kAlias);
  expect_load_error(dir, StatusCode::kUnimplemented,
                    "tensor 'model.norm.weight' has dtype F64, which kite does not support");
}

TEST(LoadModelErrorTest, TruncatedAndCorruptSafetensors) {
  TempDir tmp;
  const std::string dir = copy_tiny(tmp);
  const auto full = testing::read_bytes(kTiny + "/model.safetensors");
  testing::write_bytes(dir + "/model.safetensors", full.data(), full.size() - 100);
  expect_load_error(dir, StatusCode::kDataLoss, "runs past the end of the file");
  testing::write_bytes(dir + "/model.safetensors", full.data(), 5);
  expect_load_error(dir, StatusCode::kDataLoss, "model.safetensors: truncated: 5 bytes");
  auto b = full;
  const uint64_t huge = uint64_t{1} << 40;
  std::memcpy(b.data(), &huge, 8);
  testing::write_bytes(dir + "/model.safetensors", b.data(), b.size());
  expect_load_error(dir, StatusCode::kDataLoss, "header length 1099511627776 runs past the end");
}

// Two shards and an index, from the real file; then each way the index can be wrong.
class ShardedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = copy_tiny(tmp_);
    fs::remove(dir_ + "/model.safetensors");
    auto entries = tiny_entries();
    std::vector<testing::StEntry> a, b;
    boost::json::object map;
    for (size_t i = 0; i < entries.size(); ++i) {
      const char* file =
          i % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
      (i % 2 ? b : a).push_back(entries[i]);
      map[entries[i].name] = file;
    }
    write_safetensors(dir_ + "/model-00001-of-00002.safetensors", a, kAlias);
    write_safetensors(dir_ + "/model-00002-of-00002.safetensors", b, {});
    index_ = {{"metadata", boost::json::object{}}, {"weight_map", map}};
    write_index();
  }
  void write_index() {
    testing::write_text(dir_ + "/model.safetensors.index.json", boost::json::serialize(index_));
  }
  boost::json::object& weight_map() { return index_["weight_map"].as_object(); }

  TempDir tmp_;
  std::string dir_;
  boost::json::object index_;
};

TEST_F(ShardedTest, LoadsAndMatchesTheSingleFile) {
  auto sharded = load_model(dir_);
  ASSERT_TRUE(sharded.ok()) << sharded.status().to_string();
  auto single = load_model(kTiny);
  ASSERT_TRUE(single.ok());
  EXPECT_EQ((*sharded)->size(), (*single)->size());
  for (const std::string& name : (*single)->names()) {
    const TensorView* x = (*single)->find(name);
    const TensorView* y = (*sharded)->find(name);
    ASSERT_NE(y, nullptr) << name;
    EXPECT_EQ(std::memcmp(x->data, y->data, static_cast<size_t>(x->nbytes())), 0) << name;
  }
}

TEST_F(ShardedTest, MissingShard) {
  fs::remove(dir_ + "/model-00002-of-00002.safetensors");
  expect_load_error(dir_, StatusCode::kNotFound,
                    "shard model-00002-of-00002.safetensors listed in "
                    "model.safetensors.index.json is missing");
}

TEST_F(ShardedTest, IndexPointingOutsideTheDirectory) {
  weight_map()["model.norm.weight"] = "../model.safetensors";
  write_index();
  expect_load_error(dir_, StatusCode::kInvalidArgument,
                    "weight_map entry 'model.norm.weight' names '../model.safetensors', which is "
                    "not a file name in the model directory");
}

TEST_F(ShardedTest, IndexListingATensorInTheWrongShard) {
  const boost::json::value right = weight_map()["model.norm.weight"];
  weight_map()["model.norm.weight"] = weight_map()["lm_head.weight"];
  write_index();
  expect_load_error(dir_, StatusCode::kDataLoss,
                    "index lists tensor 'model.norm.weight' in model-00001-of-00002.safetensors, "
                    "but it is in model-00002-of-00002.safetensors");
  weight_map()["model.norm.weight"] = right;
  weight_map()["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors";
  write_index();
  expect_load_error(dir_, StatusCode::kDataLoss,
                    "index lists tensor 'model.layers.9.mlp.up_proj.weight' in "
                    "model-00001-of-00002.safetensors, which does not hold it");
}

TEST_F(ShardedTest, MalformedIndexAndDuplicates) {
  testing::write_text(dir_ + "/model.safetensors.index.json", "{\"weight_map\": ");
  expect_load_error(dir_, StatusCode::kInvalidArgument, "malformed JSON");
  testing::write_text(dir_ + "/model.safetensors.index.json", "{\"weight_map\": []}");
  expect_load_error(dir_, StatusCode::kInvalidArgument, "missing object 'weight_map'");
  // The same tensors in both shards.
  write_index();
  write_safetensors(dir_ + "/model-00002-of-00002.safetensors", tiny_entries(), {});
  expect_load_error(dir_, StatusCode::kDataLoss, "is stored in more than one shard");
}

// ---- GGUF ------------------------------------------------------------------------------------

TEST(LoadGgufErrorTest, TruncatedAndUnknownArchitecture) {
  TempDir tmp;
  auto bytes = testing::read_bytes(kStories);
  testing::write_bytes(tmp / "cut.gguf", bytes.data(), bytes.size() / 2);
  expect_load_error(tmp / "cut.gguf", StatusCode::kDataLoss, "runs past the end of the file");
  // general.architecture's value "llama" -> "llamx" in place.
  const std::string key = "general.architecture";
  auto it = std::search(bytes.begin(), bytes.end(), key.begin(), key.end());
  ASSERT_NE(it, bytes.end());
  const size_t value = static_cast<size_t>(it - bytes.begin()) + key.size() + 4 + 8;
  ASSERT_EQ(std::string(bytes.begin() + value, bytes.begin() + value + 5), "llama");
  bytes[value + 4] = 'x';
  testing::write_bytes(tmp / "arch.gguf", bytes.data(), bytes.size());
  expect_load_error(tmp / "arch.gguf", StatusCode::kUnimplemented,
                    "GGUF architecture 'llamx' is not supported (supported: llama, qwen2, qwen3, "
                    "qwen3moe)");
}

testing::GgufBuilder small_llama_gguf() {
  testing::GgufBuilder g;
  g.add_string("general.architecture", "llama");
  g.add_u32("llama.embedding_length", 32);
  g.add_u32("llama.feed_forward_length", 64);
  g.add_u32("llama.block_count", 1);
  g.add_u32("llama.attention.head_count", 2);
  g.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  auto f32 = [](uint64_t n) { return std::vector<uint8_t>(n * 4, 0); };
  g.add_tensor("token_embd.weight", {32, 10}, 0, f32(320));
  g.add_tensor("output_norm.weight", {32}, 0, f32(32));
  g.add_tensor("blk.0.attn_norm.weight", {32}, 0, f32(32));
  g.add_tensor("blk.0.ffn_norm.weight", {32}, 0, f32(32));
  for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
    g.add_tensor(std::string("blk.0.") + n + ".weight", {32, 32}, 0, f32(32 * 32));
  }
  g.add_tensor("blk.0.ffn_gate.weight", {32, 64}, 0, f32(32 * 64));
  g.add_tensor("blk.0.ffn_up.weight", {32, 64}, 0, f32(32 * 64));
  g.add_tensor("blk.0.ffn_down.weight", {64, 32}, 0, f32(32 * 64));
  return g;
}

void write_gguf(const std::string& path, const testing::GgufBuilder& g) {
  const auto b = g.build();
  testing::write_bytes(path, b.data(), b.size());
}

TEST(LoadGgufErrorTest, BuiltFileLoadsAndEachBreakageIsNamed) {
  TempDir tmp;
  write_gguf(tmp / "ok.gguf", small_llama_gguf());
  auto ok = load_model(tmp / "ok.gguf");
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ((*ok)->config().vocab_size, 10);
  EXPECT_EQ((*ok)->config().head_dim, 16);

  testing::GgufBuilder moe = small_llama_gguf();
  moe.add_u32("llama.expert_count", 8);
  write_gguf(tmp / "moe.gguf", moe);
  expect_load_error(tmp / "moe.gguf", StatusCode::kNotFound,
                    "GGUF metadata key 'llama.expert_used_count' is missing");
  moe.add_u32("llama.expert_used_count", 2);
  write_gguf(tmp / "moe.gguf", moe);
  // A llama GGUF with experts is Mixtral: its dense MLP tensors are not what it needs.
  expect_load_error(tmp / "moe.gguf", StatusCode::kNotFound,
                    "model has no tensor 'model.layers.0.block_sparse_moe.gate.weight'");

  testing::GgufBuilder g2;
  g2.add_string("general.architecture", "llama");
  g2.add_u32("llama.embedding_length", 32);
  g2.add_u32("llama.block_count", 1);
  g2.add_u32("llama.attention.head_count", 2);
  g2.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  g2.add_tensor("token_embd.weight", {32, 10}, 0, std::vector<uint8_t>(1280));
  write_gguf(tmp / "nokey.gguf", g2);
  expect_load_error(tmp / "nokey.gguf", StatusCode::kNotFound,
                    "GGUF metadata key 'llama.feed_forward_length' is missing");

  testing::GgufBuilder g3 = small_llama_gguf();
  for (auto& t : g3.tensors) {
    if (t.name == "blk.0.ffn_up.weight") {
      t.ggml_type = 6;  // Q5_0: 64 x 32 values = 64 blocks of 22 bytes
      t.data.resize(64 * 22);
    }
  }
  // Recompute offsets for the resized tensor.
  uint64_t off = 0;
  for (auto& t : g3.tensors) {
    t.offset = off;
    off = (off + t.data.size() + 31) / 32 * 32;
  }
  write_gguf(tmp / "q5.gguf", g3);
  expect_load_error(tmp / "q5.gguf", StatusCode::kUnimplemented,
                    "tensor 'blk.0.ffn_up.weight' has ggml type Q5_0, which kite does not "
                    "support");

  testing::GgufBuilder g4 = small_llama_gguf();
  g4.add_u32("llama.rope.dimension_count", 8);
  write_gguf(tmp / "rope.gguf", g4);
  expect_load_error(tmp / "rope.gguf", StatusCode::kUnimplemented, "partial rotary embeddings");

  testing::GgufBuilder g5 = small_llama_gguf();
  g5.add_string("llama.rope.scaling.type", "yarn");
  write_gguf(tmp / "yarn.gguf", g5);
  expect_load_error(tmp / "yarn.gguf", StatusCode::kUnimplemented, "rope scaling 'yarn'");

  testing::GgufBuilder g6 = small_llama_gguf();
  g6.add_u32("llama.vocab_size", 11);
  write_gguf(tmp / "vocab.gguf", g6);
  expect_load_error(tmp / "vocab.gguf", StatusCode::kInvalidArgument,
                    "llama.vocab_size 11 disagrees with token_embd.weight (10 rows)");

  testing::GgufBuilder g7 = small_llama_gguf();
  g7.add_string("llama.attention.head_count_kv", "two");
  write_gguf(tmp / "kv.gguf", g7);
  expect_load_error(tmp / "kv.gguf", StatusCode::kInvalidArgument,
                    "GGUF metadata key 'llama.attention.head_count_kv' must be an integer, got "
                    "STRING");

  testing::GgufBuilder g8 = small_llama_gguf();
  for (auto& t : g8.tensors) {
    if (t.name == "blk.0.ffn_down.weight") t.ne = {32, 64};  // transposed
  }
  write_gguf(tmp / "shape.gguf", g8);
  expect_load_error(tmp / "shape.gguf", StatusCode::kInvalidArgument,
                    "tensor 'model.layers.0.mlp.down_proj.weight' has shape [64, 32], expected "
                    "[32, 64] from the config");
}

}  // namespace
}  // namespace kite
