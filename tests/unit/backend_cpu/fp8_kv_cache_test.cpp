// The FP8 KV cache on the CPU (--kv-cache-dtype fp8): the quantizer, the cache's write and
// read against the F32 path over the dequantized values (bit for bit), the shipped TinyStories
// model with an FP8 cache against the F32 cache (logits bound, greedy agreement), and the
// per-layer k/v scales read from a checkpoint the test writes (used, and rejected when bad).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "backend/cpu/cpu_model_runner.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/sequence_runner.h"
#include "core/dtype.h"
#include "models/kv_cache_scales.h"
#include "models/load.h"
#include "support/test_util.h"
#include "unit/checkpoint/safetensors_writer.h"

namespace kite {
namespace {

namespace fs = std::filesystem;

const std::string kTiny = std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k";
const std::vector<int32_t> kPrompt = {1,   80,   875, 303, 1747, 238, 878, 203, 1898,
                                      489, 552,  609, 939, 1387, 202, 307, 790, 265,
                                      747, 1516, 666, 215, 253,  131, 77};

TEST(Fp8KvCacheTest, ParsesVllmSpellings) {
  EXPECT_EQ(*parse_kv_cache_dtype("fp8"), KvCacheDtype::kKvCacheDtypeFp8E4M3);
  EXPECT_EQ(*parse_kv_cache_dtype("fp8_e4m3"), KvCacheDtype::kKvCacheDtypeFp8E4M3);
  EXPECT_EQ(*parse_kv_cache_dtype("auto"), KvCacheDtype::kKvCacheDtypeAuto);
  EXPECT_EQ(*parse_kv_cache_dtype("float32"), KvCacheDtype::kKvCacheDtypeFloat32);
  EXPECT_EQ(*parse_kv_cache_dtype("bfloat16"), KvCacheDtype::kKvCacheDtypeBFloat16);
  const Status e5m2 = parse_kv_cache_dtype("fp8_e5m2").status();
  EXPECT_EQ(e5m2.code(), StatusCode::kUnimplemented);
  EXPECT_NE(e5m2.message().find("fp8_e5m2"), std::string::npos) << e5m2.message();
  const Status bad = parse_kv_cache_dtype("int8").status();
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("fp8_e4m3"), std::string::npos) << bad.message();
}

TEST(Fp8KvCacheTest, QuantizeRoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(cpu::quantize_kv_fp8(1.f, 1.f), 0x38);
  EXPECT_EQ(cpu::quantize_kv_fp8(2.f, 2.f), 0x38);      // x / scale
  EXPECT_EQ(cpu::quantize_kv_fp8(-0.5f, 0.25f), 0xc0);  // -2
  // 1.0625 is halfway between 1 (0x38) and 1.125 (0x39): ties to even (0x38); 1.1875 to 0x3a.
  EXPECT_EQ(cpu::quantize_kv_fp8(1.0625f, 1.f), 0x38);
  EXPECT_EQ(cpu::quantize_kv_fp8(1.1875f, 1.f), 0x3a);
  EXPECT_EQ(cpu::quantize_kv_fp8(1000.f, 1.f), 0x7e);  // +448
  EXPECT_EQ(cpu::quantize_kv_fp8(-1e30f, 1.f), 0xfe);  // -448
  EXPECT_EQ(cpu::quantize_kv_fp8(std::numeric_limits<float>::infinity(), 1.f), 0x7e);
  EXPECT_EQ(fp8e4m3_to_f32(cpu::quantize_kv_fp8(300.f, 0.5f)), 448.f);
}

// Attention over an FP8 cache equals the F32 path over a cache holding the dequantized values,
// bit for bit, on awkward sizes (GQA, a partial last block, a decode and a chunked prefill in
// one batch, a sliding window).
TEST(Fp8KvCacheTest, AttentionReadsTheDequantizedValues) {
  const int heads = 6, kv_heads = 2, head_dim = 24, block_size = 5;
  const int64_t kv_dim = kv_heads * head_dim;
  const std::vector<int32_t> seq_lens = {13, 7};
  const std::vector<int32_t> q_lens = {1, 4};  // seq 0 decodes, seq 1 prefills a chunk
  const std::vector<int32_t> query_start_loc = {0, 1, 5};
  const std::vector<int32_t> indptr = {0, 3, 5};
  const std::vector<int32_t> table = {4, 1, 6, 2, 5};
  const int64_t num_blocks = 7, num_slots = num_blocks * block_size;
  const float k_scale = 0.37f, v_scale = 1.9f;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.f, 2.f);
  std::vector<float> k(static_cast<size_t>(num_slots * kv_dim)), v(k.size());
  for (float& x : k) x = dist(rng);
  for (float& x : v) x = 4 * dist(rng);
  v[3] = 5000.f;  // saturates to 448 * v_scale
  std::vector<int32_t> slots(static_cast<size_t>(num_slots));
  for (int32_t i = 0; i < num_slots; ++i) slots[static_cast<size_t>(i)] = i;
  std::vector<uint8_t> k8(k.size()), v8(v.size());
  cpu::kv_cache_write_fp8(k.data(), kv_dim, v.data(), kv_dim, num_slots, kv_dim, slots.data(),
                          num_slots, k_scale, v_scale, k8.data(), v8.data());
  std::vector<float> kd(k.size()), vd(v.size());
  for (size_t i = 0; i < k.size(); ++i) {
    kd[i] = fp8e4m3_to_f32(k8[i]) * k_scale;
    vd[i] = fp8e4m3_to_f32(v8[i]) * v_scale;
    // Quantization error: half a step of 3 mantissa bits (relative 2^-4), or saturation.
    EXPECT_LE(std::fabs(kd[i] - k[i]), std::fabs(k[i]) / 16 + k_scale * 0.001f) << i;
  }
  EXPECT_EQ(vd[3], 448.f * v_scale);

  const int64_t num_tokens = 5;
  std::vector<float> q(static_cast<size_t>(num_tokens * heads * head_dim));
  for (float& x : q) x = dist(rng);
  for (int32_t window : {0, 4}) {
    std::vector<float> out_f32(q.size()), out_fp8(q.size());
    cpu::PagedAttentionParams p;
    p.q = q.data();
    p.q_stride = heads * head_dim;
    p.out_stride = heads * head_dim;
    p.num_blocks = num_blocks;
    p.num_heads = heads;
    p.num_kv_heads = kv_heads;
    p.head_dim = head_dim;
    p.block_size = block_size;
    p.scale = 1.f / std::sqrt(static_cast<float>(head_dim));
    p.sliding_window = window;
    p.num_seqs = 2;
    p.query_start_loc = query_start_loc.data();
    p.seq_lens = seq_lens.data();
    p.block_table_indptr = indptr.data();
    p.block_table = table.data();
    p.k_cache = kd.data();
    p.v_cache = vd.data();
    p.out = out_f32.data();
    cpu::paged_attention(p, nullptr);
    p.k_cache = p.v_cache = nullptr;
    p.k_cache_fp8 = k8.data();
    p.v_cache_fp8 = v8.data();
    p.k_scale = k_scale;
    p.v_scale = v_scale;
    p.out = out_fp8.data();
    cpu::paged_attention(p, nullptr);
    EXPECT_EQ(out_fp8, out_f32) << "window " << window;
  }
}

std::shared_ptr<const WeightStore> load(const std::string& path) {
  auto m = load_model(path);
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return m.ok() ? std::shared_ptr<const WeightStore>(std::move(*m)) : nullptr;
}

std::unique_ptr<CpuModelRunner> runner(std::shared_ptr<const WeightStore> w, DType kv,
                                       KvCacheScales scales = {}) {
  CpuRunnerOptions o;
  o.num_threads = 2;
  o.kv_cache_dtype = kv;
  o.kv_scales = std::move(scales);
  auto r = CpuModelRunner::create(std::move(w), o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE((*r)->allocate_kv_cache(8, KvCacheConfig{}).ok());
  return std::move(*r);
}

// Logits of every prompt position, the prompt fed in two chunks (the second reads the first's
// cached FP8 keys and values).
std::vector<float> prompt_logits(CpuModelRunner* r) {
  SequenceRunner seq(r, 16, r->num_kv_blocks());
  auto a = seq.feed(std::span<const int32_t>(kPrompt.data(), 10), /*all_logits=*/true);
  auto b = seq.feed(std::span<const int32_t>(kPrompt.data() + 10, kPrompt.size() - 10), true);
  EXPECT_TRUE(a.ok() && b.ok());
  a->insert(a->end(), b->begin(), b->end());
  return *a;
}

// Greedy tokens after the prompt, one decode step each.
std::vector<int32_t> greedy(CpuModelRunner* r, int n) {
  SequenceRunner seq(r, 16, r->num_kv_blocks());
  auto l = seq.feed(kPrompt);
  EXPECT_TRUE(l.ok());
  std::vector<int32_t> out;
  for (int i = 0; i < n && l.ok(); ++i) {
    out.push_back(cpu::argmax(l->data(), static_cast<int64_t>(l->size())));
    l = seq.feed(std::span<const int32_t>(&out.back(), 1));
  }
  return out;
}

// TinyStories-656k (F32 weights, 2 layers, 4 KV heads of 16) with the FP8 cache (scales 1.0)
// against the F32 cache, over the prompt and the F32 cache's 48 greedy tokens fed to both
// (teacher forcing: 73 positions, the last 48 read a cache of one prefill + decode writes).
// Measured: max |logit difference| 1.13 (largest |logit| ~20); the argmax agrees at 67 of 73
// positions, and each of the 6 flips is where the F32 logits' top two are within 0.17 of each
// other. Free-running greedy generations agree on the first token only (a near-tie follows:
// this tiny model's distributions are flat). The bounds leave margin.
TEST(Fp8KvCacheTest, TinyStoriesFp8CacheAgainstF32Cache) {
  auto w = load(kTiny);
  ASSERT_NE(w, nullptr);
  auto f32 = runner(w, DType::kF32);
  std::vector<int32_t> tokens = kPrompt;
  const std::vector<int32_t> ref_greedy = greedy(f32.get(), 48);
  tokens.insert(tokens.end(), ref_greedy.begin(), ref_greedy.end());
  auto forced = [&](DType kv) {
    auto r = runner(w, kv);
    SequenceRunner seq(r.get(), 16, r->num_kv_blocks());
    auto prompt = seq.feed(kPrompt, /*all_logits=*/true);
    EXPECT_TRUE(prompt.ok());
    std::vector<float> all = *prompt;
    for (size_t i = kPrompt.size(); i < tokens.size(); ++i) {
      auto l = seq.feed(std::span<const int32_t>(&tokens[i], 1));
      EXPECT_TRUE(l.ok());
      all.insert(all.end(), l->begin(), l->end());
    }
    return all;
  };
  const std::vector<float> ref = forced(DType::kF32), got = forced(DType::kF8E4M3);
  const int64_t vocab = 2048;
  ASSERT_EQ(ref.size(), tokens.size() * vocab);
  ASSERT_EQ(got.size(), ref.size());
  double max_diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(ref[i] - got[i])));
  }
  int agree = 0;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const float* a = ref.data() + t * vocab;
    const int32_t ia = cpu::argmax(a, vocab), ib = cpu::argmax(got.data() + t * vocab, vocab);
    if (ia == ib) {
      ++agree;
      continue;
    }
    std::vector<float> sorted(a, a + vocab);
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<>());
    // A flip only where F32's top two are closer than the FP8 cache moves logits.
    EXPECT_LT(sorted[0] - sorted[1], 2 * max_diff) << "position " << t;
  }
  std::printf("fp8 vs f32 KV cache: max |logit diff| %.4f; argmax agrees at %d of %zu\n", max_diff,
              agree, tokens.size());
  EXPECT_GT(max_diff, 0.0);  // the cache really is FP8
  EXPECT_LT(max_diff, 2.0);
  EXPECT_GE(agree, 62);

  auto fp8 = runner(w, DType::kF8E4M3);
  const std::vector<int32_t> free_running = greedy(fp8.get(), 48);
  int prefix = 0;
  while (prefix < 48 &&
         free_running[static_cast<size_t>(prefix)] == ref_greedy[static_cast<size_t>(prefix)]) {
    ++prefix;
  }
  std::printf("free-running greedy: %d of 48 tokens agree before the first difference\n", prefix);
  EXPECT_GE(prefix, 1);
}

// A copy of TinyStories with `extra` tensors added to its safetensors file (and, when given, a
// quantization_config in its config.json).
void write_tiny_with(const std::string& dir, const std::vector<testing::StEntry>& extra,
                     const std::string& quantization_config = "") {
  fs::copy_file(kTiny + "/generation_config.json", dir + "/generation_config.json");
  std::string config = testing::read_text(kTiny + "/config.json");
  if (!quantization_config.empty()) {
    const size_t brace = config.rfind('}');
    config = config.substr(0, brace) + ", \"quantization_config\": " + quantization_config + "}";
  }
  testing::write_text(dir + "/config.json", config);
  auto f = SafetensorsFile::open(kTiny + "/model.safetensors");
  ASSERT_TRUE(f.ok());
  std::vector<testing::StEntry> entries = testing::entries_of(*f);
  entries.insert(entries.end(), extra.begin(), extra.end());
  std::map<std::string, std::string> meta(f->metadata().begin(), f->metadata().end());
  const auto bytes = testing::safetensors_bytes(entries, meta);
  testing::write_bytes(dir + "/model.safetensors", bytes.data(), bytes.size());
}

testing::StEntry f32_scale(const std::string& name, float x, std::vector<int64_t> shape = {}) {
  testing::StEntry e{name, "F32", std::move(shape), std::vector<uint8_t>(4)};
  std::memcpy(e.data.data(), &x, 4);
  return e;
}

testing::StEntry bf16_scale(const std::string& name, float x) {
  testing::StEntry e{name, "BF16", {1}, std::vector<uint8_t>(2)};
  const bf16_t b = f32_to_bf16(x);
  std::memcpy(e.data.data(), &b, 2);
  return e;
}

// Scales in vLLM's layouts: compressed-tensors' self_attn.k_scale (layer 0), the older
// k_proj.output_scale in BF16 (layer 1, whose V scale is absent: 1.0). The runner uses them:
// its logits are those of a runner given the same scales by hand, and differ from 1.0's.
TEST(Fp8KvCacheTest, ScalesFromTheCheckpointAreUsed) {
  testing::TempDir dir;
  write_tiny_with(dir.path(), {f32_scale("model.layers.0.self_attn.k_scale", 0.25f),
                               f32_scale("model.layers.0.self_attn.v_scale", 0.5f, {1}),
                               bf16_scale("model.layers.1.self_attn.k_proj.output_scale", 2.f)});
  auto w = load(dir.path());
  ASSERT_NE(w, nullptr);
  auto scales = read_kv_cache_scales(*w, 2);
  ASSERT_TRUE(scales.ok()) << scales.status().to_string();
  EXPECT_EQ(scales->k, (std::vector<float>{0.25f, 2.f}));
  EXPECT_EQ(scales->v, (std::vector<float>{0.5f, 1.f}));
  EXPECT_EQ(scales->num_from_checkpoint, 3);

  auto tiny = load(kTiny);
  ASSERT_NE(tiny, nullptr);
  auto no_scales = read_kv_cache_scales(*tiny, 2);
  ASSERT_TRUE(no_scales.ok());
  EXPECT_EQ(no_scales->k, (std::vector<float>{1.f, 1.f}));
  EXPECT_EQ(no_scales->num_from_checkpoint, 0);

  const std::vector<float> from_file = prompt_logits(runner(w, DType::kF8E4M3, *scales).get());
  KvCacheScales by_hand{{0.25f, 2.f}, {0.5f, 1.f}, 0};
  EXPECT_EQ(prompt_logits(runner(tiny, DType::kF8E4M3, by_hand).get()), from_file);
  EXPECT_NE(prompt_logits(runner(tiny, DType::kF8E4M3).get()), from_file);
  // The deprecated kv_scale sets both; ModelOpt's k_proj.k_scale is read too.
  testing::TempDir dir2;
  write_tiny_with(dir2.path(), {f32_scale("model.layers.0.self_attn.kv_scale", 3.f),
                                f32_scale("model.layers.1.self_attn.k_proj.k_scale", 0.125f)});
  auto w2 = load(dir2.path());
  ASSERT_NE(w2, nullptr);
  auto s2 = read_kv_cache_scales(*w2, 2);
  ASSERT_TRUE(s2.ok()) << s2.status().to_string();
  EXPECT_EQ(s2->k, (std::vector<float>{3.f, 0.125f}));
  EXPECT_EQ(s2->v, (std::vector<float>{3.f, 1.f}));
}

TEST(Fp8KvCacheTest, BadScalesAreLoadErrorsNamingTheTensor) {
  const std::string name = "model.layers.1.self_attn.v_scale";
  testing::StEntry i32{name, "I32", {}, std::vector<uint8_t>(4)};
  testing::StEntry two = f32_scale(name, 1.f, {2});
  two.data.resize(8);
  for (const testing::StEntry& bad :
       {f32_scale(name, 0.f), f32_scale(name, -1.f),
        f32_scale(name, std::numeric_limits<float>::quiet_NaN()),
        f32_scale(name, std::numeric_limits<float>::infinity()), two, i32}) {
    testing::TempDir dir;
    write_tiny_with(dir.path(), {bad});
    auto w = load(dir.path());
    ASSERT_NE(w, nullptr);
    const Status s = read_kv_cache_scales(*w, 2).status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
    EXPECT_NE(s.message().find(name), std::string::npos) << s.message();
  }
}

// A checkpoint whose quantization_config declares a kv_cache_scheme (llm-compressor's FP8 KV
// scales, float weights) must carry every layer's scales: a missing one names the tensor.
TEST(Fp8KvCacheTest, KvCacheSchemeRequiresEveryScale) {
  const std::string scheme = R"({"quant_method": "compressed-tensors", "format": "float-quantized",
      "kv_cache_scheme": {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": false}})";
  std::vector<testing::StEntry> scales;
  for (int l = 0; l < 2; ++l) {
    for (const char* kv : {"k", "v"}) {
      scales.push_back(
          f32_scale("model.layers." + std::to_string(l) + ".self_attn." + kv + "_scale", 0.5f));
    }
  }
  testing::TempDir full;
  write_tiny_with(full.path(), scales, scheme);
  auto w = load(full.path());
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->config().quantization.kv_cache_scales);
  EXPECT_FALSE(w->config().quantization.enabled());
  auto s = read_kv_cache_scales(*w, 2);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->num_from_checkpoint, 4);

  scales.pop_back();  // layer 1's v_scale
  testing::TempDir missing;
  write_tiny_with(missing.path(), scales, scheme);
  auto w2 = load(missing.path());
  ASSERT_NE(w2, nullptr);
  const Status st = read_kv_cache_scales(*w2, 2).status();
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("model.layers.1.self_attn.v_scale"), std::string::npos)
      << st.message();
}

}  // namespace
}  // namespace kite
