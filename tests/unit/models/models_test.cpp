// The model-definition layer: what the Llama-like and Gemma definitions declare for each family,
// which of them the CUDA backend refuses (graph_support.h), bad checkpoints of each family, the
// fusion pass (checked by running fused and plain op lists on the CPU backend: the logits must
// be bit-identical), quantization_config parsing and the typed binding of FP8 checkpoints.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "backend/cpu/cpu_model_runner.h"
#include "backend/cpu/sequence_runner.h"
#include "backend/cuda/graph_support.h"
#include "checkpoint/config.h"
#include "models/fusion.h"
#include "models/load.h"
#include "models/model_weights.h"
#include "models/registry.h"
#include "support/test_util.h"
#include "unit/checkpoint/safetensors_writer.h"

namespace kite {
namespace {

using testing::TempDir;

std::string config_text(const std::string& name) {
  return testing::read_text(std::string(KITE_SOURCE_DIR) + "/tests/data/configs/" + name +
                            "/config.json");
}

ModelConfig config(const std::string& name, int layers = 2) {
  auto o = boost::json::parse(config_text(name)).as_object();
  o["num_hidden_layers"] = layers;
  auto c = parse_hf_config(boost::json::serialize(o));
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return *c;
}

const WeightDecl* find_weight(const ModelGraph& g, const std::string& name) {
  for (const WeightDecl& w : g.weights) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

std::vector<std::string> op_kinds(const std::vector<Op>& ops) {
  std::vector<std::string> out;
  for (const Op& op : ops) {
    std::string s(op_kind_name(op.kind));
    if (op.prologue_norm != kNoWeight) s += "+prologue";
    if (op.epilogue == Epilogue::kResidualAdd) s += "+residual";
    if (op.epilogue == Epilogue::kRopeKv) s += "+rope";
    if (op.epilogue == Epilogue::kSiluMul) s += "+silu";
    out.push_back(s);
  }
  return out;
}

TEST(ModelGraphTest, LlamaDeclaresEveryTensorOnceWithItsShardDim) {
  const ModelConfig c = config("llama-3.1-8b");
  auto g = build_model_graph(c);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_TRUE(check_graph(*g).ok());
  std::set<std::string> names;
  for (const TensorDecl* t : g->tensors()) {
    EXPECT_TRUE(names.insert(t->name).second) << "declared twice: " << t->name;
  }
  const WeightDecl* qkv = find_weight(*g, "model.layers.1.self_attn.qkv_proj");
  ASSERT_NE(qkv, nullptr);
  ASSERT_EQ(qkv->parts.size(), 3u);
  EXPECT_EQ(qkv->parts[0].name, "model.layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(qkv->parts[1].gguf_name, "blk.1.attn_k.weight");
  EXPECT_EQ(qkv->parts[1].gguf_permuted_heads, 8);  // llama GGUFs permute Q/K rows
  EXPECT_EQ(qkv->parts[2].gguf_permuted_heads, 0);
  EXPECT_EQ(qkv->rows, 4096 + 2 * 1024);
  EXPECT_EQ(qkv->cols, 4096);
  EXPECT_EQ(qkv->shard, ShardDim::kColumn);
  EXPECT_EQ(find_weight(*g, "model.layers.0.self_attn.o_proj")->shard, ShardDim::kRow);
  EXPECT_EQ(find_weight(*g, "model.layers.0.mlp.gate_up_proj")->rows, 2 * 14336);
  EXPECT_EQ(find_weight(*g, "model.layers.0.mlp.down_proj")->shard, ShardDim::kRow);
  EXPECT_EQ(find_weight(*g, "model.embed_tokens")->shard, ShardDim::kVocab);
  EXPECT_EQ(find_weight(*g, "lm_head")->shard, ShardDim::kVocab);
  EXPECT_EQ(find_weight(*g, "model.norm")->shard, ShardDim::kReplicated);
  EXPECT_TRUE(find_weight(*g, "rope_freqs")->optional);
  // One op list: embedding, 9 ops per layer, final norm, LM head.
  EXPECT_EQ(g->ops.size(), 1u + 9u * 2u + 2u);
  EXPECT_EQ(g->num_kv_layers, 2);
}

TEST(ModelGraphTest, FamilySwitches) {
  auto qwen2 = build_model_graph(config("qwen2.5-0.5b"));
  ASSERT_TRUE(qwen2.ok());
  const WeightDecl* qkv = find_weight(*qwen2, "model.layers.0.self_attn.qkv_proj");
  EXPECT_EQ(qkv->bias_mode, BiasMode::kRequired);
  EXPECT_EQ(qkv->bias[2].name, "model.layers.0.self_attn.v_proj.bias");
  EXPECT_EQ(qkv->parts[0].gguf_permuted_heads, 0);  // qwen2 GGUFs keep the HF row order
  EXPECT_EQ(find_weight(*qwen2, "model.layers.0.self_attn.o_proj")->bias_mode,
            BiasMode::kIfPresent);
  EXPECT_EQ(find_weight(*qwen2, "lm_head")->tied_to, "model.embed_tokens.weight");

  auto qwen3 = build_model_graph(config("qwen3-0.6b"));
  ASSERT_TRUE(qwen3.ok());
  EXPECT_NE(find_weight(*qwen3, "model.layers.1.self_attn.q_norm"), nullptr);
  int rope_with_norms = 0;
  for (const Op& op : qwen3->ops) {
    rope_with_norms += op.kind == OpKind::kRopeKvWrite && op.weight != kNoWeight ? 1 : 0;
  }
  EXPECT_EQ(rope_with_norms, 2);

  auto mistral = build_model_graph(config("mistral-7b-v0.1"));
  ASSERT_TRUE(mistral.ok());
  for (const Op& op : mistral->ops) {
    if (op.kind == OpKind::kAttention) {
      EXPECT_EQ(op.sliding_window, 4096);
    }
  }
}

TEST(FusionTest, DecodeListOfLlamaAndQwen3) {
  FusionOptions all;
  all.residual_epilogue = all.norm_prologue = all.rope_epilogue = all.silu_epilogue = true;
  auto llama = build_model_graph(config("llama-3-8b", 2));
  ASSERT_TRUE(llama.ok());
  const std::vector<Op> fused = fuse_ops(*llama, all);
  const std::vector<std::string> layer = {"linear+prologue+rope", "attention", "linear+residual",
                                          "linear+prologue+silu", "linear+residual"};
  std::vector<std::string> want = {"embedding"};
  for (int l = 0; l < 2; ++l) want.insert(want.end(), layer.begin(), layer.end());
  want.push_back("rms_norm");  // the final norm gathers the logits rows, no delta left
  want.push_back("linear");
  EXPECT_EQ(op_kinds(fused), want) << format_ops(*llama, fused);
  EXPECT_EQ(fused[fused.size() - 2].delta, kNoValue);
  // The residual-add linears write the residual stream in place.
  EXPECT_EQ(fused[3].out, fused[1].in);

  // Qwen3's per-head q/k norms keep RoPE a separate op.
  auto qwen3 = build_model_graph(config("qwen3-0.6b", 1));
  ASSERT_TRUE(qwen3.ok());
  EXPECT_EQ(op_kinds(fuse_ops(*qwen3, all)),
            (std::vector<std::string>{"embedding", "linear+prologue", "rope_kv_write", "attention",
                                      "linear+residual", "linear+prologue+silu", "linear+residual",
                                      "rms_norm", "linear"}));
  // Only the SiLU fusion (the CUDA backend's list for larger steps).
  FusionOptions silu;
  silu.silu_epilogue = true;
  const std::vector<Op> plain = fuse_ops(*llama, silu);
  EXPECT_EQ(plain.size(), llama->ops.size() - 2);
  for (const Op& op : plain) {
    if (op.epilogue == Epilogue::kSiluMul) {
      EXPECT_NE(op.scratch, kNoValue);
    }
  }
  for (const auto* g : {&*llama, &*qwen3}) {
    ModelGraph copy = *g;
    copy.ops = fuse_ops(*g, all);
    EXPECT_TRUE(check_graph(copy).ok()) << check_graph(copy).to_string();
  }
}

// Fused and plain op lists run on the CPU backend: F32 makes every fused linear the same
// arithmetic as the ops it replaced, so the logits must agree bit for bit over prefill chunks
// and decode steps.
std::vector<float> run_tokens(const std::shared_ptr<const WeightStore>& w, bool fused) {
  auto r = CpuModelRunner::create(w, {.num_threads = 2, .fused_ops = fused});
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  KvCacheConfig kv;
  kv.block_size = 16;
  EXPECT_TRUE((*r)->allocate_kv_cache(16, kv).ok());
  SequenceRunner seq(r->get(), 16, 16);
  std::vector<float> all;
  const std::vector<int32_t> prompt = {1, 17, 99, 5, 42, 7, 300, 12, 8, 64, 3};
  auto first = seq.feed(std::span<const int32_t>(prompt).subspan(0, 7), /*all_logits=*/true);
  EXPECT_TRUE(first.ok());
  all.insert(all.end(), first->begin(), first->end());
  auto rest = seq.feed(std::span<const int32_t>(prompt).subspan(7));
  EXPECT_TRUE(rest.ok());
  all.insert(all.end(), rest->begin(), rest->end());
  for (int32_t t : {5, 6, 7}) {
    auto step = seq.feed(std::vector<int32_t>{t});
    EXPECT_TRUE(step.ok());
    all.insert(all.end(), step->begin(), step->end());
  }
  return all;
}

void expect_fused_equals_plain(const std::shared_ptr<const WeightStore>& w) {
  const std::vector<float> plain = run_tokens(w, false);
  const std::vector<float> fused = run_tokens(w, true);
  ASSERT_EQ(plain.size(), fused.size());
  ASSERT_FALSE(plain.empty());
  EXPECT_EQ(std::memcmp(plain.data(), fused.data(), plain.size() * sizeof(float)), 0);
}

TEST(FusionTest, FusedListEqualsPlainOnTinyStories) {
  auto m = load_model(std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  expect_fused_equals_plain(std::shared_ptr<const WeightStore>(std::move(*m)));
}

TEST(FusionTest, FusedListEqualsPlainWithBiasesAndQkNorms) {
  for (const std::string name : {"qwen2.5-0.5b", "qwen3-0.6b"}) {
    TempDir tmp;
    auto o = boost::json::parse(config_text(name)).as_object();
    o["num_hidden_layers"] = 2;
    o["vocab_size"] = 512;
    o["hidden_size"] = 64;
    o["intermediate_size"] = 96;
    o["num_attention_heads"] = 4;
    o["num_key_value_heads"] = 2;
    o["head_dim"] = 16;
    o["bos_token_id"] = 1;
    o["eos_token_id"] = 2;
    o["torch_dtype"] = "float32";
    testing::write_text(tmp / "config.json", boost::json::serialize(o));
    LoadOptions opts;
    opts.load_format = "dummy";
    auto m = load_model(tmp.path(), opts);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    SCOPED_TRACE(name);
    expect_fused_equals_plain(std::shared_ptr<const WeightStore>(std::move(*m)));
  }
}

// ---- quantization_config ----------------------------------------------------------------------

TEST(QuantizationConfigTest, Fp8BlockAndCompressedTensors) {
  auto block = parse_quantization_config(
      R"({"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
          "weight_block_size": [128, 128]})");
  ASSERT_TRUE(block.ok()) << block.status().to_string();
  EXPECT_EQ(block->scheme, QuantScheme::kFp8Block);
  EXPECT_EQ(block->block_rows, 128);
  EXPECT_EQ(block->weight_scale_name, "weight_scale_inv");
  EXPECT_TRUE(block->quantizes("model.layers.0.mlp.down_proj"));

  auto ct = parse_quantization_config(R"({"quant_method": "compressed-tensors",
      "format": "float-quantized", "ignore": ["lm_head", "re:.*mlp\\.down_proj$"],
      "config_groups": {"group_0": {"targets": ["Linear"],
        "weights": {"num_bits": 8, "type": "float", "strategy": "channel", "dynamic": false},
        "input_activations": {"num_bits": 8, "type": "float", "strategy": "token",
                              "dynamic": true}}}})");
  ASSERT_TRUE(ct.ok()) << ct.status().to_string();
  EXPECT_EQ(ct->scheme, QuantScheme::kFp8PerChannel);
  EXPECT_EQ(ct->activations, ActivationQuant::kDynamicPerToken);
  EXPECT_FALSE(ct->quantizes("lm_head"));
  EXPECT_FALSE(ct->quantizes("model.layers.3.mlp.down_proj"));
  EXPECT_TRUE(ct->quantizes("model.layers.3.mlp.up_proj"));

  auto awq = parse_quantization_config(R"({"quant_method": "awq", "bits": 4})");
  EXPECT_EQ(awq.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(awq.status().message().find("quant_method 'awq'"), std::string::npos);
  EXPECT_NE(awq.status().message().find("supported: quant_method 'fp8'"), std::string::npos);
  auto int8 = parse_quantization_config(R"({"quant_method": "compressed-tensors",
      "format": "int-quantized", "config_groups": {}})");
  EXPECT_EQ(int8.status().code(), StatusCode::kUnimplemented);
  auto bad = parse_quantization_config(R"({"quant_method": "fp8", "weight_block_size": [0]})");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);

  // kv_cache_scheme: FP8 KV scales, with FP8 weights or alone (the weights stay float).
  auto kv_only = parse_quantization_config(R"({"quant_method": "compressed-tensors",
      "format": "float-quantized", "config_groups": {},
      "kv_cache_scheme": {"num_bits": 8, "type": "float", "strategy": "tensor",
                          "dynamic": false, "symmetric": true}})");
  ASSERT_TRUE(kv_only.ok()) << kv_only.status().to_string();
  EXPECT_TRUE(kv_only->kv_cache_scales);
  EXPECT_FALSE(kv_only->enabled());
  auto with_weights = parse_quantization_config(R"({"quant_method": "compressed-tensors",
      "format": "float-quantized", "kv_cache_scheme": {"num_bits": 8, "type": "float"},
      "config_groups": {"g": {"targets": ["Linear"],
        "weights": {"num_bits": 8, "type": "float", "strategy": "tensor"}}}})");
  ASSERT_TRUE(with_weights.ok()) << with_weights.status().to_string();
  EXPECT_TRUE(with_weights->kv_cache_scales);
  EXPECT_EQ(with_weights->scheme, QuantScheme::kFp8PerTensor);
  EXPECT_FALSE(ct->kv_cache_scales);
  for (const char* scheme : {R"({"num_bits": 8, "type": "int"})",
                             R"({"num_bits": 8, "type": "float", "strategy": "attn_head"})",
                             R"({"num_bits": 8, "type": "float", "dynamic": true})"}) {
    auto k = parse_quantization_config(
        std::string(R"({"quant_method": "compressed-tensors", "kv_cache_scheme": )") + scheme +
        "}");
    EXPECT_EQ(k.status().code(), StatusCode::kUnimplemented) << scheme;
    EXPECT_NE(k.status().message().find("kv_cache_scheme"), std::string::npos)
        << k.status().message();
  }
}

// A tiny compressed-tensors FP8 checkpoint: the definition declares each linear's F8E4M3 parts
// with their per-channel scales, binding checks them (a missing or mis-shaped scale is an
// error naming it), and the CPU backend runs it (dequantized weights).
TEST(QuantizationConfigTest, Fp8CheckpointBindsTypedWeights) {
  TempDir tmp;
  testing::write_text(tmp / "config.json", R"({"architectures": ["LlamaForCausalLM"],
      "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
      "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
      "tie_word_embeddings": false, "torch_dtype": "bfloat16",
      "quantization_config": {"quant_method": "compressed-tensors", "format": "float-quantized",
        "ignore": ["lm_head"], "config_groups": {"g": {"targets": ["Linear"],
        "weights": {"num_bits": 8, "type": "float", "strategy": "channel"},
        "input_activations": null}}}})");
  auto cfg = parse_hf_config(testing::read_text(tmp / "config.json"));
  ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
  auto g = build_model_graph(*cfg);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  std::vector<testing::StEntry> entries;
  auto add = [&](const std::string& name, const std::string& dtype, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const int64_t bytes = n * (dtype == "F8_E4M3" ? 1 : dtype == "F32" ? 4 : 2);
    entries.push_back({name, dtype, shape, std::vector<uint8_t>(static_cast<size_t>(bytes), 0x30)});
  };
  for (const WeightDecl& w : g->weights) {
    if (w.optional) continue;
    for (const TensorDecl& t : w.parts) {
      add(t.name, w.quant.scheme != QuantScheme::kNone ? "F8_E4M3" : "BF16", t.shape);
    }
    for (const TensorDecl& t : w.quant.weight_scales) add(t.name, "F32", t.shape);
  }
  const auto bytes = testing::safetensors_bytes(entries, {});
  testing::write_bytes(tmp / "model.safetensors", bytes.data(), bytes.size());
  auto m = load_model(tmp.path());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const WeightStore& store = **m;
  TensorLookup lookup = [&](std::string_view n) { return store.find(n); };
  auto bound = bind_weights(*g, lookup);
  ASSERT_TRUE(bound.ok()) << bound.status().to_string();
  const WeightDecl* down = find_weight(*g, "model.layers.0.mlp.down_proj");
  const Weight& w = (*bound)[static_cast<WeightId>(down - g->weights.data())];
  EXPECT_EQ(w.dtype, DType::kF8E4M3);
  EXPECT_EQ(w.scales.scheme, QuantScheme::kFp8PerChannel);
  ASSERT_EQ(w.scales.weight_scale.size(), 1u);
  EXPECT_EQ(w.scales.weight_scale[0].to_string(), "F32[32, 1]");
  EXPECT_FALSE(
      (*bound)[static_cast<WeightId>(find_weight(*g, "lm_head") - g->weights.data())].quantized());
  auto cpu = CpuModelRunner::create(std::shared_ptr<const WeightStore>(std::move(*m)));
  EXPECT_TRUE(cpu.ok()) << cpu.status().to_string();

  // A scale of the wrong shape, then a missing one: errors naming the tensor.
  for (const bool drop : {false, true}) {
    TempDir bad;
    testing::write_text(bad / "config.json", testing::read_text(tmp / "config.json"));
    std::vector<testing::StEntry> changed;
    for (const testing::StEntry& e : entries) {
      if (e.name == "model.layers.0.mlp.down_proj.weight_scale") {
        if (drop) continue;
        testing::StEntry wrong = e;
        wrong.shape = {16, 1};
        wrong.data.resize(16 * 4);
        changed.push_back(wrong);
        continue;
      }
      changed.push_back(e);
    }
    const auto b = testing::safetensors_bytes(changed, {});
    testing::write_bytes(bad / "model.safetensors", b.data(), b.size());
    auto r = load_model(bad.path());
    EXPECT_EQ(r.status().code(), drop ? StatusCode::kNotFound : StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("model.layers.0.mlp.down_proj.weight_scale"),
              std::string::npos)
        << r.status().to_string();
  }
}

// ---- Phi-3 and Gemma ------------------------------------------------------------------------

TEST(ModelGraphTest, Phi3DeclaresItsFusedCheckpointTensors) {
  auto g = build_model_graph(config("phi-3-mini-4k"));
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  const WeightDecl* qkv = find_weight(*g, "model.layers.1.self_attn.qkv_proj");
  ASSERT_NE(qkv, nullptr);
  ASSERT_EQ(qkv->parts.size(), 1u);
  EXPECT_EQ(qkv->parts[0].name, "model.layers.1.self_attn.qkv_proj.weight");
  EXPECT_EQ(qkv->parts[0].shape, (std::vector<int64_t>{3 * 3072, 3072}));
  const WeightDecl* gate_up = find_weight(*g, "model.layers.0.mlp.gate_up_proj");
  ASSERT_EQ(gate_up->parts.size(), 1u);
  EXPECT_EQ(gate_up->parts[0].name, "model.layers.0.mlp.gate_up_proj.weight");
  EXPECT_EQ(gate_up->parts[0].shape, (std::vector<int64_t>{2 * 8192, 3072}));
  for (const Op& op : g->ops) {
    if (op.kind == OpKind::kAttention) {
      EXPECT_EQ(op.sliding_window, 2047);
    }
  }
  ASSERT_EQ(g->ropes.size(), 1u);
  EXPECT_EQ(g->ropes[0].rotary_dim, 96);

  auto phi4 = build_model_graph(config("phi-4"));
  ASSERT_TRUE(phi4.ok());
  EXPECT_EQ(find_weight(*phi4, "model.layers.0.self_attn.qkv_proj")->parts[0].shape,
            (std::vector<int64_t>{5120 + 2 * 10 * 128, 5120}));
}

TEST(ModelGraphTest, GemmaNormsSoftCapsWindowsAndRopes) {
  auto g2 = build_model_graph(config("gemma-2-2b", 3));
  ASSERT_TRUE(g2.ok()) << g2.status().to_string();
  EXPECT_EQ(g2->family, "gemma");
  for (const char* n :
       {"model.layers.0.input_layernorm", "model.layers.2.pre_feedforward_layernorm",
        "model.layers.1.post_feedforward_layernorm", "model.norm"}) {
    ASSERT_NE(find_weight(*g2, n), nullptr) << n;
    EXPECT_EQ(find_weight(*g2, n)->vector_offset, 1.f) << n;
  }
  EXPECT_EQ(find_weight(*g2, "lm_head")->tied_to, "model.embed_tokens.weight");
  EXPECT_EQ(g2->ops.front().kind, OpKind::kEmbedding);
  EXPECT_EQ(g2->ops.front().scale, 48.f);  // sqrt(2304)
  std::vector<int> windows;
  for (const Op& op : g2->ops) {
    if (op.kind != OpKind::kAttention) continue;
    windows.push_back(op.sliding_window);
    EXPECT_EQ(op.softcap, 50.f);
    EXPECT_EQ(op.scale, 1.f / 16.f);  // query_pre_attn_scalar 256
  }
  EXPECT_EQ(windows, (std::vector<int>{4096, 0, 4096}));
  EXPECT_EQ(g2->ops.back().kind, OpKind::kSoftcap);
  EXPECT_EQ(g2->ops.back().softcap, 30.f);
  EXPECT_EQ(g2->ops.back().in, g2->logits);

  auto g3 = build_model_graph(config("gemma-3-1b", 6));
  ASSERT_TRUE(g3.ok()) << g3.status().to_string();
  // sqrt(1152) = 33.94, rounded to bfloat16 as transformers does for a bf16 checkpoint.
  EXPECT_EQ(g3->ops.front().scale, 34.f);
  ASSERT_EQ(g3->ropes.size(), 2u);
  EXPECT_EQ(g3->ropes[0].theta, 1e6);
  EXPECT_EQ(g3->ropes[1].theta, 1e4);
  EXPECT_EQ(find_weight(*g3, "model.layers.0.self_attn.q_norm")->vector_offset, 1.f);
  std::vector<int> ropes;
  for (const Op& op : g3->ops) {
    if (op.kind == OpKind::kRopeKvWrite) {
      ropes.push_back(op.rope);
      EXPECT_NE(op.weight2, kNoWeight);  // k_norm
    }
    if (op.kind == OpKind::kAttention) {
      EXPECT_EQ(op.softcap, 0.f);
    }
  }
  EXPECT_EQ(ropes, (std::vector<int>{1, 1, 1, 1, 1, 0}));  // layer 5 is global
  EXPECT_EQ(g3->ops.back().kind, OpKind::kLinear);         // no final soft-cap
}

TEST(CudaGraphSupportTest, RunsEveryFamilyAndRefusesWhatItsKernelsLack) {
  for (const std::string name :
       {"llama-3.1-8b", "qwen3-0.6b", "mistral-7b-v0.1", "phi-4", "phi-3-mini-4k", "gemma-2-2b",
        "gemma-3-1b", "qwen3-30b-a3b", "mixtral-8x7b-v0.1"}) {
    const ModelConfig c = config(name);
    auto g = build_model_graph(c);
    ASSERT_TRUE(g.ok());
    EXPECT_TRUE(cuda::check_graph_support(*g, c).ok())
        << name << ": " << cuda::check_graph_support(*g, c).to_string();
  }
  // Partial rotary and LongRoPE run too (Phi-3.5 / Phi-4-mini).
  ModelConfig longrope = config("phi-4");
  longrope.partial_rotary_factor = 0.75;
  longrope.rope_scaling.type = RopeScaling::Type::kLongRope;
  longrope.rope_scaling.short_factor.assign(48, 1.0);
  longrope.rope_scaling.long_factor.assign(48, 4.0);
  {
    auto g = build_model_graph(longrope);
    ASSERT_TRUE(g.ok());
    EXPECT_TRUE(cuda::check_graph_support(*g, longrope).ok());
  }
  auto refused = [](const ModelGraph& g, const ModelConfig& c) {
    const Status s = cuda::check_graph_support(g, c);
    EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
    return s.message();
  };
  // More experts than the route/permute kernels hold, or a top-k past their limit.
  const ModelConfig moe = config("qwen3-30b-a3b");
  ModelGraph g = *build_model_graph(moe);
  g.moes[0].top_k = cuda::kMoeMaxTopK + 1;
  EXPECT_EQ(refused(g, moe),
            "the CUDA backend cannot run Qwen3MoeForCausalLM: it has no MoE kernel for 128 "
            "experts, top 33 (at most 1024 experts, top 32) (run it with --device cpu)");
  // An odd rotary width.
  ModelGraph odd = *build_model_graph(config("phi-4"));
  odd.ropes[0].rotary_dim = 7;
  EXPECT_NE(refused(odd, config("phi-4")).find("rotary embedding of 7 dims"), std::string::npos);
}

// Fused and plain op lists agree bit for bit on Phi-3 (fused checkpoint tensors, partial rotary,
// a window) and Gemma 2/3 (post-norms, soft-caps, per-layer windows and RoPEs).
TEST(FusionTest, FusedListEqualsPlainOnPhi3AndGemma) {
  for (const std::string variant : {"phi-3-mini-4k", "longrope", "gemma-2-2b", "gemma-3-1b"}) {
    const std::string name = variant == "longrope" ? "phi-3-mini-4k" : variant;
    TempDir tmp;
    auto o = boost::json::parse(config_text(name)).as_object();
    o["num_hidden_layers"] = 3;
    o["vocab_size"] = 512;
    o["hidden_size"] = 64;
    o["intermediate_size"] = 96;
    o["num_attention_heads"] = 4;
    o["num_key_value_heads"] = 2;
    o["head_dim"] = 16;
    o["sliding_window"] = 5;
    o["sliding_window_pattern"] = 2;
    o["query_pre_attn_scalar"] = 16;
    o["bos_token_id"] = 1;
    o["eos_token_id"] = 2;
    o["torch_dtype"] = "float32";
    if (name == "phi-3-mini-4k") o["partial_rotary_factor"] = 0.5;
    if (variant == "longrope") {  // the 7-token first chunk stays short, the rest goes long
      o["original_max_position_embeddings"] = 8;
      o["max_position_embeddings"] = 64;
      o["rope_scaling"] = boost::json::parse(
          R"({"type": "longrope", "short_factor": [1.0, 1.1, 1.2, 1.3],
              "long_factor": [1.0, 2.0, 4.0, 8.0]})");
    }
    testing::write_text(tmp / "config.json", boost::json::serialize(o));
    LoadOptions opts;
    opts.load_format = "dummy";
    auto m = load_model(tmp.path(), opts);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    SCOPED_TRACE(variant);
    expect_fused_equals_plain(std::shared_ptr<const WeightStore>(std::move(*m)));
  }
}

// A checkpoint with every tensor `config_json` declares (BF16 zeros-ish), minus `drop`, with
// `resize` given new rows, plus `extra` tensors.
void write_checkpoint(const std::string& dir, const std::string& config_json,
                      const std::string& drop = "", const std::string& resize = "",
                      const std::vector<std::string>& extra = {}) {
  testing::write_text(dir + "/config.json", config_json);
  auto cfg = parse_hf_config(config_json);
  ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
  auto g = build_model_graph(*cfg);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  std::vector<testing::StEntry> entries;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    entries.push_back({name, "BF16", shape, std::vector<uint8_t>(static_cast<size_t>(2 * n), 0)});
  };
  for (const WeightDecl& w : g->weights) {
    if (w.optional || (w.kind == WeightKind::kLinear && !w.tied_to.empty())) continue;
    for (const TensorDecl& t : w.parts) {
      if (t.name == drop) continue;
      std::vector<int64_t> shape = t.shape;
      if (t.name == resize) shape[0] += 8;
      add(t.name, shape);
    }
  }
  for (const std::string& name : extra) add(name, {4, 4});
  const auto bytes = testing::safetensors_bytes(entries, {});
  testing::write_bytes(dir + "/model.safetensors", bytes.data(), bytes.size());
}

std::string small_config(const std::string& name) {
  auto o = boost::json::parse(config_text(name)).as_object();
  o["num_hidden_layers"] = 2;
  o["vocab_size"] = 64;
  o["hidden_size"] = 32;
  o["intermediate_size"] = 48;
  o["num_attention_heads"] = 2;
  o["num_key_value_heads"] = 1;
  o["head_dim"] = 16;
  o["bos_token_id"] = 1;
  o["eos_token_id"] = 2;
  return boost::json::serialize(o);
}

TEST(FamilyCheckpointTest, ShapesThatDisagreeWithTheConfigAndMissingTensors) {
  {  // Phi-3: a qkv_proj with 8 rows too many for the config's heads.
    TempDir tmp;
    write_checkpoint(tmp.path(), small_config("phi-3-mini-4k"), "",
                     "model.layers.1.self_attn.qkv_proj.weight");
    auto m = load_model(tmp.path());
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(m.status().message().find("tensor 'model.layers.1.self_attn.qkv_proj.weight' has "
                                        "shape [72, 32], expected [64, 32] from the config"),
              std::string::npos)
        << m.status().to_string();
  }
  {  // Phi-3 checkpoints have no separate gate_proj: a gate_up_proj missing is named.
    TempDir tmp;
    write_checkpoint(tmp.path(), small_config("phi-3-mini-4k"),
                     "model.layers.0.mlp.gate_up_proj.weight");
    auto m = load_model(tmp.path());
    EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
    EXPECT_NE(
        m.status().message().find("model has no tensor 'model.layers.0.mlp.gate_up_proj.weight'"),
        std::string::npos)
        << m.status().to_string();
  }
  {  // Gemma 2 without one of its extra norms.
    TempDir tmp;
    write_checkpoint(tmp.path(), small_config("gemma-2-2b"),
                     "model.layers.1.pre_feedforward_layernorm.weight");
    auto m = load_model(tmp.path());
    EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
    EXPECT_NE(m.status().message().find(
                  "model has no tensor 'model.layers.1.pre_feedforward_layernorm.weight'"),
              std::string::npos)
        << m.status().to_string();
  }
  {  // Gemma 3: q_norm of the wrong length (head_dim 16 in the config).
    TempDir tmp;
    write_checkpoint(tmp.path(), small_config("gemma-3-1b"), "",
                     "model.layers.0.self_attn.q_norm.weight");
    auto m = load_model(tmp.path());
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(m.status().message().find("tensor 'model.layers.0.self_attn.q_norm.weight' has "
                                        "shape [24], expected [16] from the config"),
              std::string::npos)
        << m.status().to_string();
  }
}

// One random Gemma 3 text model written three ways — Gemma3ForCausalLM names, and a
// Gemma3ForConditionalGeneration checkpoint (sparse text_config, vision tower tensors) in the
// "language_model.model.*" layout and in transformers >= 4.52's "model.language_model.*" —
// gives bit-identical logits.
TEST(FamilyCheckpointTest, Gemma3MultimodalCheckpointsRunTheirTextModel) {
  TempDir src;
  auto o = boost::json::parse(small_config("gemma-3-1b")).as_object();
  o["torch_dtype"] = "float32";
  o["sliding_window"] = 4;
  o["vocab_size"] = 512;  // run_tokens' prompt ids
  testing::write_text(src / "config.json", boost::json::serialize(o));
  LoadOptions dummy;
  dummy.load_format = "dummy";
  auto random = load_model(src.path(), dummy);
  ASSERT_TRUE(random.ok()) << random.status().to_string();
  std::vector<testing::StEntry> tensors;
  for (const std::string& name : (*random)->names()) {
    const TensorView* t = (*random)->find(name);
    const auto* bytes = static_cast<const uint8_t*>(t->data);
    tensors.push_back({name, "F32",
                       std::vector<int64_t>(t->shape.begin(), t->shape.begin() + t->ndim),
                       std::vector<uint8_t>(bytes, bytes + t->numel() * 4)});
  }
  auto write = [&](const std::string& dir, const std::string& config, const std::string& prefix,
                   bool vision) {
    testing::write_text(dir + "/config.json", config);
    std::vector<testing::StEntry> out;
    for (testing::StEntry e : tensors) {
      if (e.name.starts_with("model.")) e.name = prefix + e.name.substr(6);
      out.push_back(std::move(e));
    }
    if (vision) {
      out.push_back({"vision_tower.vision_model.post_layernorm.weight",
                     "F32",
                     {4},
                     std::vector<uint8_t>(16, 0)});
      out.push_back({"multi_modal_projector.mm_soft_emb_norm.weight",
                     "F32",
                     {4},
                     std::vector<uint8_t>(16, 0)});
    }
    const auto b = testing::safetensors_bytes(out, {});
    testing::write_bytes(dir + "/model.safetensors", b.data(), b.size());
  };
  boost::json::object text = o;
  text.erase("architectures");
  text.erase("torch_dtype");
  for (const char* k : {"num_attention_heads", "num_key_value_heads"}) text.erase(k);  // defaults
  text["num_attention_heads"] = 2;  // (Gemma3TextConfig's default 8 does not fit hidden 32)
  text["num_key_value_heads"] = 1;
  boost::json::object multi = {
      {"architectures", boost::json::array{"Gemma3ForConditionalGeneration"}},
      {"model_type", "gemma3"},
      {"torch_dtype", "float32"},
      {"text_config", text},
      {"vision_config", boost::json::object{{"hidden_size", 4}}}};
  TempDir causal, old_layout, new_layout;
  write(causal.path(), boost::json::serialize(o), "model.", true);
  write(old_layout.path(), boost::json::serialize(multi), "language_model.model.", true);
  write(new_layout.path(), boost::json::serialize(multi), "model.language_model.", true);
  std::vector<std::vector<float>> logits;
  for (const TempDir* d : {&causal, &old_layout, &new_layout}) {
    auto m = load_model(d->path());
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_EQ(count_vision_tensors(**m), 2);
    logits.push_back(run_tokens(std::shared_ptr<const WeightStore>(std::move(*m)), false));
  }
  ASSERT_FALSE(logits[0].empty());
  EXPECT_EQ(logits[0], logits[1]);
  EXPECT_EQ(logits[0], logits[2]);
}

// LongRoPE's choice of factors is per sequence: a sequence within the original context keeps
// its short factors when it shares a step with one that has passed it (transformers decides per
// forward call, which is one sequence there), so batching never changes a sequence's logits.
TEST(FamilyCheckpointTest, LongRopeFactorsArePerSequenceNotPerBatch) {
  TempDir tmp;
  auto o = boost::json::parse(small_config("phi-3-mini-4k")).as_object();
  o["vocab_size"] = 512;
  o["torch_dtype"] = "float32";
  o["original_max_position_embeddings"] = 8;
  o["max_position_embeddings"] = 64;
  o["rope_scaling"] = boost::json::parse(
      R"({"type": "longrope", "short_factor": [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7],
          "long_factor": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]})");
  testing::write_text(tmp / "config.json", boost::json::serialize(o));
  LoadOptions dummy;
  dummy.load_format = "dummy";
  auto m = load_model(tmp.path(), dummy);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const std::shared_ptr<const WeightStore> w = std::move(*m);
  const std::vector<int32_t> short_seq = {1, 17, 99, 5};                              // short
  const std::vector<int32_t> long_seq = {1, 17, 99, 5, 42, 7, 300, 12, 8, 64, 3, 9};  // long
  const int64_t vocab = 512;
  // A sequence's prompt in blocks of 16 starting at `block`, as one batch entry.
  auto add = [](ForwardBatch* b, const std::vector<int32_t>& tokens, int32_t block) {
    if (b->query_start_loc.empty()) b->query_start_loc.push_back(0);
    if (b->block_table_indptr.empty()) b->block_table_indptr.push_back(0);
    for (size_t i = 0; i < tokens.size(); ++i) {
      b->token_ids.push_back(tokens[i]);
      b->positions.push_back(static_cast<int32_t>(i));
      b->slot_mapping.push_back(block * 16 + static_cast<int32_t>(i));
      b->logits_indices.push_back(static_cast<int32_t>(b->token_ids.size() - 1));
    }
    b->query_start_loc.push_back(static_cast<int32_t>(b->token_ids.size()));
    b->seq_lens.push_back(static_cast<int32_t>(tokens.size()));
    b->block_table.push_back(block);
    b->block_table_indptr.push_back(static_cast<int32_t>(b->block_table.size()));
    b->max_query_len = std::max<int32_t>(b->max_query_len, static_cast<int32_t>(tokens.size()));
  };
  auto run = [&](const std::vector<const std::vector<int32_t>*>& seqs) {
    auto r = CpuModelRunner::create(w, {.num_threads = 2});
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_TRUE((*r)->allocate_kv_cache(8, KvCacheConfig{}).ok());
    ForwardBatch b;
    for (size_t i = 0; i < seqs.size(); ++i) add(&b, *seqs[i], static_cast<int32_t>(i + 1));
    TensorView logits;
    EXPECT_TRUE((*r)->forward(b, &logits).ok());
    return std::vector<float>(logits.as<float>(), logits.as<float>() + logits.numel());
  };
  const std::vector<float> alone_short = run({&short_seq});
  const std::vector<float> alone_long = run({&long_seq});
  const std::vector<float> both = run({&short_seq, &long_seq});
  ASSERT_EQ(both.size(), alone_short.size() + alone_long.size());
  EXPECT_TRUE(std::equal(alone_short.begin(), alone_short.end(), both.begin()));
  EXPECT_TRUE(std::equal(alone_long.begin(), alone_long.end(),
                         both.begin() + static_cast<int64_t>(alone_short.size())));
  // And the factors do matter: the long sequence's first 4 positions differ from the short
  // sequence's (same tokens), because its step passed the original context.
  EXPECT_FALSE(std::equal(alone_short.begin(), alone_short.end(), alone_long.begin()));
  EXPECT_EQ(alone_long.size(), long_seq.size() * static_cast<size_t>(vocab));
}

// ---- mixture of experts ----------------------------------------------------------------------

TEST(ModelGraphTest, MoeDeclaresExpertsInThePublishedLayout) {
  ModelConfig c = config("qwen3-30b-a3b", 3);
  c.moe_layers = {true, false, true};  // as mlp_only_layers: [1] gives
  auto g = build_model_graph(c);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  std::set<std::string> names;
  for (const TensorDecl* t : g->tensors()) {
    EXPECT_TRUE(names.insert(t->name).second) << "declared twice: " << t->name;
  }
  ASSERT_EQ(g->moes.size(), 2u);
  const MoeDecl& m = g->moes[0];
  EXPECT_EQ(m.gate_up.size(), 128u);
  EXPECT_EQ(m.top_k, 8);
  EXPECT_TRUE(m.renormalize);
  EXPECT_EQ(m.intermediate, 768);
  const WeightDecl& router = g->weight(m.router);
  EXPECT_EQ(router.parts[0].name, "model.layers.0.mlp.gate.weight");
  EXPECT_EQ(router.rows, 128);
  EXPECT_EQ(router.shard, ShardDim::kReplicated);
  EXPECT_EQ(router.expert, -1);
  const WeightDecl& gate_up = g->weight(m.gate_up[5]);
  ASSERT_EQ(gate_up.parts.size(), 2u);
  EXPECT_EQ(gate_up.parts[0].name, "model.layers.0.mlp.experts.5.gate_proj.weight");
  EXPECT_EQ(gate_up.parts[1].name, "model.layers.0.mlp.experts.5.up_proj.weight");
  EXPECT_EQ(gate_up.rows, 2 * 768);
  EXPECT_EQ(gate_up.shard, ShardDim::kColumn);
  EXPECT_EQ(gate_up.expert, 5);
  const WeightDecl& down = g->weight(m.down[127]);
  EXPECT_EQ(down.parts[0].name, "model.layers.0.mlp.experts.127.down_proj.weight");
  EXPECT_EQ(down.shard, ShardDim::kRow);
  EXPECT_EQ(down.expert, 127);
  // Layer 1 is dense: intermediate_size, not the experts'.
  EXPECT_EQ(find_weight(*g, "model.layers.1.mlp.gate_up_proj")->rows, 2 * 6144);
  EXPECT_EQ(find_weight(*g, "model.layers.0.mlp.gate_up_proj"), nullptr);
  int moe_ops = 0;
  for (const Op& op : g->ops) moe_ops += op.kind == OpKind::kMoe ? 1 : 0;
  EXPECT_EQ(moe_ops, 2);
  EXPECT_NE(format_ops(*g, g->ops)
                .find("moe delta <- hidden [model.layers.2.mlp.gate] 128 "
                      "experts top 8 renormalized"),
            std::string::npos);

  auto mixtral = build_model_graph(config("mixtral-8x7b-v0.1"));
  ASSERT_TRUE(mixtral.ok()) << mixtral.status().to_string();
  ASSERT_EQ(mixtral->moes.size(), 2u);
  const MoeDecl& x = mixtral->moes[1];
  EXPECT_EQ(x.top_k, 2);
  EXPECT_TRUE(x.renormalize);
  EXPECT_EQ(mixtral->weight(x.router).parts[0].name, "model.layers.1.block_sparse_moe.gate.weight");
  EXPECT_EQ(mixtral->weight(x.router).parts[0].gguf_name, "blk.1.ffn_gate_inp.weight");
  EXPECT_EQ(mixtral->weight(x.gate_up[3]).parts[0].name,
            "model.layers.1.block_sparse_moe.experts.3.w1.weight");
  EXPECT_EQ(mixtral->weight(x.gate_up[3]).parts[1].name,
            "model.layers.1.block_sparse_moe.experts.3.w3.weight");
  EXPECT_EQ(mixtral->weight(x.down[3]).parts[0].name,
            "model.layers.1.block_sparse_moe.experts.3.w2.weight");
  EXPECT_EQ(mixtral->weight(x.down[3]).parts[0].shape, (std::vector<int64_t>{4096, 14336}));

  // check_graph catches a block whose experts disagree with its router.
  ModelGraph broken = *mixtral;
  broken.moes[0].top_k = 9;
  EXPECT_EQ(check_graph(broken).code(), StatusCode::kInternal);
  broken = *mixtral;
  broken.moes[0].gate_up.pop_back();
  EXPECT_EQ(check_graph(broken).code(), StatusCode::kInternal);
}

// An FP8 block-quantized Qwen3-MoE (Qwen3-30B-A3B-FP8's quantization_config) quantizes every
// expert and keeps the router in its float dtype.
TEST(QuantizationConfigTest, MoeRouterStaysUnquantized) {
  auto o = boost::json::parse(config_text("qwen3-30b-a3b")).as_object();
  o["num_hidden_layers"] = 1;
  o["quantization_config"] = boost::json::parse(
      R"({"quant_method": "fp8", "activation_scheme": "dynamic", "fmt": "e4m3",
          "weight_block_size": [128, 128]})");
  auto c = parse_hf_config(boost::json::serialize(o));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  auto g = build_model_graph(*c);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  const MoeDecl& m = g->moes[0];
  EXPECT_EQ(g->weight(m.router).quant.scheme, QuantScheme::kNone);
  EXPECT_EQ(g->weight(m.gate_up[7]).quant.scheme, QuantScheme::kFp8Block);
  EXPECT_EQ(g->weight(m.gate_up[7]).quant.weight_scales[1].name,
            "model.layers.0.mlp.experts.7.up_proj.weight_scale_inv");
  EXPECT_EQ(g->weight(m.down[7]).quant.weight_scales[0].shape, (std::vector<int64_t>{16, 6}));
}

std::string small_moe_config(const std::string& name) {
  auto o = boost::json::parse(small_config(name)).as_object();
  o[name == "mixtral-8x7b-v0.1" ? "num_local_experts" : "num_experts"] = 4;
  o["num_experts_per_tok"] = 2;
  o["moe_intermediate_size"] = 16;
  return boost::json::serialize(o);
}

TEST(FamilyCheckpointTest, MoeCheckpointsThatDisagreeWithTheirConfig) {
  {  // Complete: loads.
    TempDir tmp;
    write_checkpoint(tmp.path(), small_moe_config("qwen3-30b-a3b"));
    auto m = load_model(tmp.path());
    EXPECT_TRUE(m.ok()) << m.status().to_string();
  }
  {  // An expert's tensor missing (the checkpoint has fewer experts than the config).
    TempDir tmp;
    write_checkpoint(tmp.path(), small_moe_config("qwen3-30b-a3b"),
                     "model.layers.1.mlp.experts.3.up_proj.weight");
    auto m = load_model(tmp.path());
    EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
    EXPECT_NE(m.status().message().find(
                  "model has no tensor 'model.layers.1.mlp.experts.3.up_proj.weight' (config.json: "
                  "4 experts of moe_intermediate_size 16 per MoE layer)"),
              std::string::npos)
        << m.status().to_string();
  }
  {  // An expert of another moe_intermediate_size.
    TempDir tmp;
    write_checkpoint(tmp.path(), small_moe_config("mixtral-8x7b-v0.1"), "",
                     "model.layers.0.block_sparse_moe.experts.2.w3.weight");
    auto m = load_model(tmp.path());
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
    // Mixtral's experts are intermediate_size (48) wide.
    EXPECT_NE(m.status().message().find(
                  "tensor 'model.layers.0.block_sparse_moe.experts.2.w3.weight' has shape [56, "
                  "32], expected [48, 32] from the config"),
              std::string::npos)
        << m.status().to_string();
  }
  {  // A router with more rows than the config's experts.
    TempDir tmp;
    write_checkpoint(tmp.path(), small_moe_config("qwen3-30b-a3b"), "",
                     "model.layers.0.mlp.gate.weight");
    auto m = load_model(tmp.path());
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(m.status().message().find("tensor 'model.layers.0.mlp.gate.weight' has shape [12, "
                                        "32], expected [4, 32] from the config"),
              std::string::npos)
        << m.status().to_string();
  }
  {  // More experts stored than the config has.
    TempDir tmp;
    write_checkpoint(tmp.path(), small_moe_config("qwen3-30b-a3b"), "", "",
                     {"model.layers.1.mlp.experts.4.gate_proj.weight"});
    auto m = load_model(tmp.path());
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(m.status().message().find(
                  "tensor 'model.layers.1.mlp.experts.4.gate_proj.weight' is not part of the "
                  "model config.json describes (4 experts, top 2, in 2 of 2 layers); the "
                  "checkpoint's experts disagree with its config"),
              std::string::npos)
        << m.status().to_string();
  }
  {  // A sparse block in a layer the config makes dense (mlp_only_layers).
    TempDir tmp;
    auto o = boost::json::parse(small_moe_config("qwen3-30b-a3b")).as_object();
    write_checkpoint(tmp.path(), boost::json::serialize(o));
    o["mlp_only_layers"] = boost::json::array{1};
    testing::write_text(tmp / "config.json", boost::json::serialize(o));
    auto m = load_model(tmp.path());
    EXPECT_FALSE(m.ok());
    // The dense MLP's tensors are missing, and that is what is reported first.
    EXPECT_NE(m.status().message().find("model.layers.1.mlp.gate_proj.weight"), std::string::npos)
        << m.status().to_string();
  }
  {  // top_k above the expert count.
    TempDir tmp;
    auto o = boost::json::parse(small_moe_config("mixtral-8x7b-v0.1")).as_object();
    o["num_experts_per_tok"] = 5;
    testing::write_text(tmp / "config.json", boost::json::serialize(o));
    auto m = load_model(tmp.path());
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(
        m.status().message().find("num_experts_per_tok must be in [1, 4] (the experts), got 5"),
        std::string::npos)
        << m.status().to_string();
  }
}

// The fusion pass leaves MoE blocks alone (no linear feeds the residual directly there) and the
// fused list still computes the same logits.
TEST(FusionTest, FusedListEqualsPlainOnMoe) {
  for (const std::string name : {"qwen3-30b-a3b", "mixtral-8x7b-v0.1"}) {
    TempDir tmp;
    auto o = boost::json::parse(small_moe_config(name)).as_object();
    o["vocab_size"] = 512;
    o["num_hidden_layers"] = 3;
    o["mlp_only_layers"] = boost::json::array{1};
    o["torch_dtype"] = "float32";
    testing::write_text(tmp / "config.json", boost::json::serialize(o));
    LoadOptions opts;
    opts.load_format = "dummy";
    auto m = load_model(tmp.path(), opts);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    SCOPED_TRACE(name);
    auto g = build_model_graph((*m)->config());
    ASSERT_TRUE(g.ok());
    FusionOptions all;
    all.residual_epilogue = all.norm_prologue = all.rope_epilogue = all.silu_epilogue = true;
    const std::vector<Op> fused = fuse_ops(*g, all);
    EXPECT_EQ(std::count_if(fused.begin(), fused.end(),
                            [](const Op& op) { return op.kind == OpKind::kMoe; }),
              name == "mixtral-8x7b-v0.1" ? 3 : 2);
    expect_fused_equals_plain(std::shared_ptr<const WeightStore>(std::move(*m)));
  }
}

// A sequence's logits do not depend on the sequences batched with it: the experts its tokens
// share with other tokens run over more rows, and each row's sums stay the same.
TEST(FamilyCheckpointTest, MoeLogitsArePerSequenceNotPerBatch) {
  TempDir tmp;
  auto o = boost::json::parse(small_moe_config("qwen3-30b-a3b")).as_object();
  o["vocab_size"] = 512;
  o["torch_dtype"] = "float32";
  testing::write_text(tmp / "config.json", boost::json::serialize(o));
  LoadOptions dummy;
  dummy.load_format = "dummy";
  auto m = load_model(tmp.path(), dummy);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const std::shared_ptr<const WeightStore> w = std::move(*m);
  const std::vector<std::vector<int32_t>> seqs = {
      {1, 17, 99, 5}, {1, 17, 99, 5, 42, 7, 300, 12, 8, 64, 3, 9}, {400}};
  auto run = [&](const std::vector<size_t>& which, int threads) {
    auto r = CpuModelRunner::create(w, {.num_threads = threads});
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_TRUE((*r)->allocate_kv_cache(8, KvCacheConfig{}).ok());
    ForwardBatch b;
    b.query_start_loc.push_back(0);
    b.block_table_indptr.push_back(0);
    for (size_t i : which) {
      const std::vector<int32_t>& tokens = seqs[i];
      const auto block = static_cast<int32_t>(i + 1);
      for (size_t t = 0; t < tokens.size(); ++t) {
        b.token_ids.push_back(tokens[t]);
        b.positions.push_back(static_cast<int32_t>(t));
        b.slot_mapping.push_back(block * 16 + static_cast<int32_t>(t));
        b.logits_indices.push_back(static_cast<int32_t>(b.token_ids.size() - 1));
      }
      b.query_start_loc.push_back(static_cast<int32_t>(b.token_ids.size()));
      b.seq_lens.push_back(static_cast<int32_t>(tokens.size()));
      b.block_table.push_back(block);
      b.block_table_indptr.push_back(static_cast<int32_t>(b.block_table.size()));
      b.max_query_len = std::max<int32_t>(b.max_query_len, static_cast<int32_t>(tokens.size()));
    }
    TensorView logits;
    EXPECT_TRUE((*r)->forward(b, &logits).ok());
    return std::vector<float>(logits.as<float>(), logits.as<float>() + logits.numel());
  };
  std::vector<float> alone;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const std::vector<float> one = run({i}, 1);
    alone.insert(alone.end(), one.begin(), one.end());
  }
  const std::vector<float> all = run({0, 1, 2}, 2);
  ASSERT_EQ(all.size(), alone.size());
  EXPECT_EQ(std::memcmp(all.data(), alone.data(), all.size() * sizeof(float)), 0);
  // Causal: the first 4 positions of sequence 1 are sequence 0 (the same tokens).
  EXPECT_EQ(std::memcmp(alone.data(), alone.data() + 4 * 512, 4 * 512 * sizeof(float)), 0);
}

}  // namespace
}  // namespace kite
