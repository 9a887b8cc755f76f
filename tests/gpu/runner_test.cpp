// CudaModelRunner end to end on small random models of every family variant (biases, q/k norm,
// tied embeddings, GQA, head dims 128/64/16) against a float32 forward built from the CPU
// reference ops; CUDA-graph decode vs eager; chunked prefill; error paths.
//
// Bound for whole-model logits: every layer adds about six bf16 roundings of activations on the
// GPU (qkv, attention output, o-proj, residual, norm, MLP) that the float32 reference does not
// make; with two layers the logits' relative L2 error stays below 2^-5 (= 8 roundings' worth of
// unit roundoff), and the greedy token must agree wherever the reference's top-2 gap exceeds
// four times the largest logit error.
//
// The float32 compute mode (generic path) rounds nothing: the GPU and the reference differ only
// in summation order (dot products of <= 1000 terms: a few 2^-24 relative each) and the last ulp
// of exp; with two layers the logits stay within 2^-16 relative L2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_model_runner.h"
#include "backend/cpu/ops.h"
#include "backend/cuda/cuda_model_runner.h"
#include "checkpoint/config.h"
#include "core/dtype.h"
#include "core/thread_pool.h"
#include "gpu_test_util.h"
#include "models/load.h"

namespace kite::cuda::test {
namespace {

ThreadPool& pool() {
  static ThreadPool p(std::max(1u, std::thread::hardware_concurrency()));
  return p;
}

struct TinyModel {
  ModelConfig cfg;
  std::map<std::string, std::vector<uint16_t>> bf16;  // every tensor, bf16 bits
  std::map<std::string, std::vector<int64_t>> shapes;

  WeightLookup lookup() {
    return [this](std::string_view name) -> Result<TensorView> {
      auto it = bf16.find(std::string(name));
      if (it == bf16.end()) return not_found("no tensor " + std::string(name));
      const auto& s = shapes.at(std::string(name));
      return TensorView::contiguous(it->second.data(), DType::kBF16, s.data(),
                                    static_cast<int>(s.size()));
    };
  }
  std::vector<float> f(const std::string& name) const { return to_float(bf16.at(name)); }
  TensorView view(const std::string& name) {
    const auto& s = shapes.at(name);
    return TensorView::contiguous(bf16.at(name).data(), DType::kBF16, s.data(),
                                  static_cast<int>(s.size()));
  }
};

TinyModel make_model(ModelFamily family, int64_t hd, int64_t nq, int64_t nkv, bool tied,
                     uint32_t seed, int64_t hidden = 256, int64_t intermediate = 512) {
  TinyModel m;
  ModelConfig& c = m.cfg;
  c.architecture = "LlamaForCausalLM";
  c.family = family;
  c.vocab_size = 1000;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_hidden_layers = 2;
  c.num_attention_heads = nq;
  c.num_key_value_heads = nkv;
  c.head_dim = hd;
  c.max_position_embeddings = 4096;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = tied;
  c.attention_bias = family == ModelFamily::kQwen2;
  c.qk_norm = family == ModelFamily::kQwen3;
  std::mt19937 rng(seed);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float lo, float hi) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    m.bf16[name] = random_bf16(static_cast<size_t>(n), rng, lo, hi);
    m.shapes[name] = shape;
  };
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  add("model.embed_tokens.weight", {c.vocab_size, H}, -1.f, 1.f);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const float a = 1.f / std::sqrt(static_cast<float>(H));
    add(p + "input_layernorm.weight", {H}, 0.8f, 1.2f);
    add(p + "self_attn.q_proj.weight", {nq * hd, H}, -a, a);
    add(p + "self_attn.k_proj.weight", {nkv * hd, H}, -a, a);
    add(p + "self_attn.v_proj.weight", {nkv * hd, H}, -a, a);
    if (c.attention_bias) {
      add(p + "self_attn.q_proj.bias", {nq * hd}, -0.5f, 0.5f);
      add(p + "self_attn.k_proj.bias", {nkv * hd}, -0.5f, 0.5f);
      add(p + "self_attn.v_proj.bias", {nkv * hd}, -0.5f, 0.5f);
    }
    if (c.qk_norm) {
      add(p + "self_attn.q_norm.weight", {hd}, 0.8f, 1.2f);
      add(p + "self_attn.k_norm.weight", {hd}, 0.8f, 1.2f);
    }
    add(p + "self_attn.o_proj.weight", {H, nq * hd}, -a, a);
    add(p + "post_attention_layernorm.weight", {H}, 0.8f, 1.2f);
    add(p + "mlp.gate_proj.weight", {I, H}, -a, a);
    add(p + "mlp.up_proj.weight", {I, H}, -a, a);
    add(p + "mlp.down_proj.weight", {H, I}, -1.f / 16, 1.f / 16);
  }
  add("model.norm.weight", {H}, 0.8f, 1.2f);
  if (!tied) add("lm_head.weight", {c.vocab_size, H}, -1.f / 16, 1.f / 16);
  return m;
}

// A tiny Llama stored as an fp8 block-scaled checkpoint (Qwen3-8B-FP8's format: quant_method
// "fp8", weight_block_size [128, 128], dynamic activations): every *_proj weight E4M3 with one
// weight_scale_inv per 128x128 tile (amax / 448, quantize_fp8_rows' rule per tile), the rest
// (embeddings, norms, lm_head) bf16 as in base.
struct Fp8BlockModel {
  TinyModel base;
  std::map<std::string, std::vector<uint8_t>> fp8;
  std::map<std::string, std::vector<float>> scales;
  std::map<std::string, std::vector<int64_t>> scale_shapes;

  WeightLookup lookup() {
    return [this](std::string_view name) -> Result<TensorView> {
      const std::string n(name);
      if (auto it = fp8.find(n); it != fp8.end()) {
        const auto& s = base.shapes.at(n);
        return TensorView::contiguous(it->second.data(), DType::kF8E4M3, s.data(),
                                      static_cast<int>(s.size()));
      }
      if (auto it = scales.find(n); it != scales.end()) {
        const auto& s = scale_shapes.at(n);
        return TensorView::contiguous(it->second.data(), DType::kF32, s.data(),
                                      static_cast<int>(s.size()));
      }
      auto bit = base.bf16.find(n);
      if (bit == base.bf16.end()) return not_found("no tensor " + n);
      const auto& s = base.shapes.at(n);
      return TensorView::contiguous(bit->second.data(), DType::kBF16, s.data(),
                                    static_cast<int>(s.size()));
    };
  }
};

// Hidden 512 and intermediate 1024: every FP8 linear's k is a multiple of 4 x 128 columns, the
// block-scaled GEMM's requirement (else the runner falls back to dequantized weights).
Fp8BlockModel make_fp8_block_model(uint32_t seed) {
  Fp8BlockModel f;
  f.base = make_model(ModelFamily::kLlama, 128, 8, 2, false, seed, 512, 1024);
  Result<QuantizationConfig> q = parse_quantization_config(
      R"({"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",)"
      R"( "weight_block_size": [128, 128]})");
  KITE_CHECK(q.ok()) << q.status().to_string();
  f.base.cfg.quantization = *q;
  constexpr int64_t kB = 128;
  const std::string suffix = ".weight";
  for (const auto& [name, bits] : f.base.bf16) {
    if (name.find("_proj.weight") == std::string::npos) continue;
    const std::vector<int64_t>& shape = f.base.shapes.at(name);
    const int64_t rows = shape[0], cols = shape[1];
    const int64_t br = (rows + kB - 1) / kB, bc = (cols + kB - 1) / kB;
    const std::vector<float> w = to_float(bits);
    std::vector<uint8_t> qb(w.size());
    std::vector<float> sc(static_cast<size_t>(br * bc));
    for (int64_t i = 0; i < br; ++i) {
      for (int64_t j = 0; j < bc; ++j) {
        const int64_t r1 = std::min(rows, (i + 1) * kB), c1 = std::min(cols, (j + 1) * kB);
        float amax = 0.f;
        for (int64_t r = i * kB; r < r1; ++r) {
          for (int64_t c = j * kB; c < c1; ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
        }
        const float s = amax > 0.f ? amax / 448.f : 1.f;
        sc[static_cast<size_t>(i * bc + j)] = s;
        for (int64_t r = i * kB; r < r1; ++r) {
          for (int64_t c = j * kB; c < c1; ++c) {
            qb[static_cast<size_t>(r * cols + c)] = f32_to_fp8e4m3(w[r * cols + c] / s);
          }
        }
      }
    }
    const std::string module = name.substr(0, name.size() - suffix.size());
    f.fp8[name] = std::move(qb);
    f.scales[module + ".weight_scale_inv"] = std::move(sc);
    f.scale_shapes[module + ".weight_scale_inv"] = {br, bc};
  }
  return f;
}

// Float32 reference forward over the same paged layout (CPU cache layout [slot, head, d]).
class CpuReference {
 public:
  CpuReference(TinyModel& m, int64_t num_slots) : m_(m), num_slots_(num_slots) {
    const ModelConfig& c = m.cfg;
    kv_.assign(
        static_cast<size_t>(c.num_hidden_layers),
        {std::vector<float>(num_slots * c.kv_size()), std::vector<float>(num_slots * c.kv_size())});
    inv_ = cpu::rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling);
  }
  std::vector<float> forward(const ForwardBatch& b, int block_size) {
    const ModelConfig& c = m_.cfg;
    const int64_t T = b.num_tokens(), H = c.hidden_size, I = c.intermediate_size;
    const int64_t qkv_dim = c.q_size() + 2 * c.kv_size();
    const float eps = static_cast<float>(c.rms_norm_eps);
    std::vector<float> res(T * H), x(T * H), qkv(T * qkv_dim), att(T * c.q_size()), d(T * H),
        gu(T * 2 * I), act(T * I);
    cpu::embedding(m_.view("model.embed_tokens.weight"), b.token_ids.data(), T, res.data(),
                   nullptr);
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      if (l == 0) {
        cpu::rms_norm(res.data(), m_.f(p + "input_layernorm.weight").data(), T, H, eps, x.data(),
                      nullptr);
      } else {
        cpu::add_rms_norm(res.data(), d.data(), m_.f(p + "input_layernorm.weight").data(), T, H,
                          eps, x.data(), nullptr);
      }
      auto lin = [&](const std::string& w, const std::string& bias, float* y, int64_t ldy) {
        std::vector<float> bv;
        if (!bias.empty()) bv = m_.f(bias);
        cpu::linear(x.data(), T, H, m_.view(w), bias.empty() ? nullptr : bv.data(), y, ldy,
                    &pool());
      };
      const bool qb = c.attention_bias;
      lin(p + "self_attn.q_proj.weight", qb ? p + "self_attn.q_proj.bias" : "", qkv.data(),
          qkv_dim);
      lin(p + "self_attn.k_proj.weight", qb ? p + "self_attn.k_proj.bias" : "",
          qkv.data() + c.q_size(), qkv_dim);
      lin(p + "self_attn.v_proj.weight", qb ? p + "self_attn.v_proj.bias" : "",
          qkv.data() + c.q_size() + c.kv_size(), qkv_dim);
      if (c.qk_norm) {
        cpu::head_rms_norm(qkv.data(), T, qkv_dim, c.num_attention_heads, c.head_dim,
                           m_.f(p + "self_attn.q_norm.weight").data(), eps, nullptr);
        cpu::head_rms_norm(qkv.data() + c.q_size(), T, qkv_dim, c.num_key_value_heads, c.head_dim,
                           m_.f(p + "self_attn.k_norm.weight").data(), eps, nullptr);
      }
      cpu::rope_neox(qkv.data(), T, qkv_dim, c.num_attention_heads, c.head_dim, b.positions.data(),
                     inv_.data(), nullptr);
      cpu::rope_neox(qkv.data() + c.q_size(), T, qkv_dim, c.num_key_value_heads, c.head_dim,
                     b.positions.data(), inv_.data(), nullptr);
      cpu::kv_cache_write(qkv.data() + c.q_size(), qkv_dim, qkv.data() + c.q_size() + c.kv_size(),
                          qkv_dim, T, c.kv_size(), b.slot_mapping.data(), num_slots_,
                          kv_[l].first.data(), kv_[l].second.data());
      cpu::PagedAttentionParams ap;
      ap.q = qkv.data();
      ap.q_stride = qkv_dim;
      ap.k_cache = kv_[l].first.data();
      ap.v_cache = kv_[l].second.data();
      ap.out = att.data();
      ap.out_stride = c.q_size();
      ap.num_blocks = num_slots_ / block_size;
      ap.num_heads = static_cast<int>(c.num_attention_heads);
      ap.num_kv_heads = static_cast<int>(c.num_key_value_heads);
      ap.head_dim = static_cast<int>(c.head_dim);
      ap.block_size = block_size;
      ap.scale = 1.f / std::sqrt(static_cast<float>(c.head_dim));
      ap.num_seqs = b.num_seqs();
      ap.query_start_loc = b.query_start_loc.data();
      ap.seq_lens = b.seq_lens.data();
      ap.block_table_indptr = b.block_table_indptr.data();
      ap.block_table = b.block_table.data();
      cpu::paged_attention(ap, &pool());
      cpu::linear(att.data(), T, c.q_size(), m_.view(p + "self_attn.o_proj.weight"), nullptr,
                  d.data(), H, &pool());
      cpu::add_rms_norm(res.data(), d.data(), m_.f(p + "post_attention_layernorm.weight").data(), T,
                        H, eps, x.data(), nullptr);
      lin(p + "mlp.gate_proj.weight", "", gu.data(), 2 * I);
      lin(p + "mlp.up_proj.weight", "", gu.data() + I, 2 * I);
      cpu::silu_mul(gu.data(), T, I, act.data(), nullptr);
      cpu::linear(act.data(), T, I, m_.view(p + "mlp.down_proj.weight"), nullptr, d.data(), H,
                  &pool());
    }
    const int64_t L = b.num_logits();
    std::vector<float> rows(L * H), normed(L * H), logits(L * c.vocab_size);
    for (int64_t i = 0; i < L; ++i) {
      const int64_t t = b.logits_indices[i];
      for (int64_t j = 0; j < H; ++j) rows[i * H + j] = res[t * H + j] + d[t * H + j];
    }
    cpu::rms_norm(rows.data(), m_.f("model.norm.weight").data(), L, H, eps, normed.data(), nullptr);
    x = normed;
    cpu::linear(normed.data(), L, H,
                m_.view(c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"),
                nullptr, logits.data(), c.vocab_size, &pool());
    return logits;
  }

 private:
  TinyModel& m_;
  int64_t num_slots_;
  std::vector<std::pair<std::vector<float>, std::vector<float>>> kv_;
  std::vector<double> inv_;
};

// Sequences with their own blocks (block ids handed out from 1 upward).
struct Seqs {
  int block_size = 16;
  int next_block = 1;
  std::vector<std::vector<int32_t>> blocks;
  std::vector<std::vector<int32_t>> tokens;
  std::vector<int> computed;

  int add(std::vector<int32_t> prompt) {
    tokens.push_back(std::move(prompt));
    blocks.emplace_back();
    computed.push_back(0);
    return static_cast<int>(tokens.size()) - 1;
  }
  // A step over `which` sequences, each scheduling up to `chunk` of its pending tokens.
  ForwardBatch step(const std::vector<int>& which, int chunk) {
    ForwardBatch b;
    b.query_start_loc = {0};
    b.block_table_indptr = {0};
    for (int s : which) {
      const int start = computed[s];
      const int end = std::min<int>(static_cast<int>(tokens[s].size()), start + chunk);
      while (static_cast<int>(blocks[s].size()) * block_size < end) {
        blocks[s].push_back(next_block++);
      }
      for (int i = start; i < end; ++i) {
        b.token_ids.push_back(tokens[s][i]);
        b.positions.push_back(i);
        b.slot_mapping.push_back(blocks[s][i / block_size] * block_size + i % block_size);
      }
      b.query_start_loc.push_back(static_cast<int32_t>(b.token_ids.size()));
      b.seq_lens.push_back(end);
      b.block_table.insert(b.block_table.end(), blocks[s].begin(), blocks[s].end());
      b.block_table_indptr.push_back(static_cast<int32_t>(b.block_table.size()));
      b.logits_indices.push_back(static_cast<int32_t>(b.token_ids.size()) - 1);
      b.max_query_len = std::max(b.max_query_len, end - start);
      b.max_seq_len = std::max(b.max_seq_len, end);
      computed[s] = end;
    }
    return b;
  }
};

void expect_logits_close(const std::vector<float>& got, const std::vector<float>& ref,
                         int64_t vocab, const std::string& what, double bound) {
  const ErrorStats s = compare(got, ref);
  EXPECT_TRUE(s.nan == 0 && s.rel_l2 <= bound) << what << ": " << s.to_string();
  double max_err = 0;
  for (size_t i = 0; i < got.size(); ++i)
    max_err = std::max<double>(max_err, std::abs(got[i] - ref[i]));
  const int64_t rows = static_cast<int64_t>(ref.size()) / vocab;
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = got.data() + r * vocab;
    const float* c = ref.data() + r * vocab;
    std::vector<int32_t> order(static_cast<size_t>(vocab));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 2, order.end(),
                      [&](int32_t a, int32_t b) { return c[a] > c[b]; });
    if (c[order[0]] - c[order[1]] > 4 * max_err) {
      EXPECT_EQ(cpu::argmax(g, vocab), order[0]) << what << " row " << r;
    }
  }
}

struct Variant {
  std::string name;
  ModelFamily family;
  int64_t hd, nq, nkv;
  bool tied;
  DType dtype = DType::kBF16;
  double bound() const { return dtype == DType::kF32 ? 1.0 / 65536 : 1.0 / 32; }
};

class CudaRunnerTest : public ::testing::TestWithParam<Variant> {};

TEST_P(CudaRunnerTest, MatchesCpuReferenceAcrossPrefillChunksAndGraphDecode) {
  KITE_REQUIRE_GPU();
  const Variant& v = GetParam();
  TinyModel m = make_model(v.family, v.hd, v.nq, v.nkv, v.tied, 7);
  const int64_t V = m.cfg.vocab_size;
  CudaRunnerOptions opts;
  opts.max_graph_batch = 32;
  opts.dtype = v.dtype;
  auto runner = CudaModelRunner::create(m.cfg, m.lookup(), opts);
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();
  CudaModelRunner& r = **runner;
  KvCacheConfig kc;
  kc.block_size = 16;
  kc.dtype = DType::kBF16;
  kc.max_num_seqs = 32;
  kc.max_num_batched_tokens = 2048;
  kc.gpu_memory_utilization = 0.5;
  auto nb = r.determine_num_kv_blocks(kc);
  ASSERT_TRUE(nb.ok()) << nb.status().to_string();
  const int64_t blocks = std::min<int64_t>(*nb, 4096);
  ASSERT_TRUE(r.allocate_kv_cache(blocks, kc).ok());
  EXPECT_FALSE(r.decode_graph_sizes().empty());
  CpuReference ref(m, blocks * kc.block_size);

  std::mt19937 rng(11);
  Seqs seqs;
  std::vector<int> all;
  for (int len : {1, 15, 16, 17, 300, 1000, 5, 64, 33, 2, 200, 77, 8, 9, 10, 11, 12}) {
    std::vector<int32_t> p(static_cast<size_t>(len));
    for (auto& t : p) t = static_cast<int32_t>(rng() % V);
    all.push_back(seqs.add(std::move(p)));
  }
  // Prefill in chunks of at most 256 tokens per sequence: long prompts take several steps.
  for (int round = 0; round < 4; ++round) {
    std::vector<int> pending;
    for (int s : all) {
      if (seqs.computed[s] < static_cast<int>(seqs.tokens[s].size())) pending.push_back(s);
    }
    if (pending.empty()) break;
    ForwardBatch b = seqs.step(pending, 256);
    TensorView logits;
    ASSERT_TRUE(r.forward(b, &logits).ok());
    EXPECT_FALSE(r.last_forward_used_graph());
    std::vector<float> got(static_cast<size_t>(b.num_logits()) * V);
    ASSERT_TRUE(r.logits_to_host(logits, got.data()).ok());
    expect_logits_close(got, ref.forward(b, kc.block_size), V,
                        v.name + " prefill round " + std::to_string(round), v.bound());
  }
  // Greedy decode steps through CUDA graphs at batch 17 (padded to 24), 3 and 1.
  for (int batch : {17, 3, 1}) {
    for (int step = 0; step < 3; ++step) {
      std::vector<int> which(all.begin(), all.begin() + batch);
      // Append the greedy token of the previous step (or a random one) and decode it.
      for (int s : which) seqs.tokens[s].push_back(static_cast<int32_t>(rng() % V));
      ForwardBatch b = seqs.step(which, 1);
      TensorView logits;
      ASSERT_TRUE(r.forward(b, &logits).ok());
      EXPECT_TRUE(r.last_forward_used_graph()) << "batch " << batch;
      std::vector<float> got(static_cast<size_t>(b.num_logits()) * V);
      ASSERT_TRUE(r.logits_to_host(logits, got.data()).ok());
      expect_logits_close(got, ref.forward(b, kc.block_size), V,
                          v.name + " decode batch " + std::to_string(batch), v.bound());
      // Sampling on the device agrees with the host argmax of the same logits.
      SamplingBatch sb;
      for (int i = 0; i < batch; ++i) {
        sb.temperature.push_back(0.f);
        sb.top_k.push_back(0);
        sb.top_p.push_back(1.f);
        sb.min_p.push_back(0.f);
        sb.repetition_penalty.push_back(1.f);
        sb.frequency_penalty.push_back(0.f);
        sb.presence_penalty.push_back(0.f);
        sb.seed.push_back(i);
        sb.step.push_back(0);
        sb.num_logprobs.push_back(-1);
      }
      sb.all_greedy = true;
      SamplerOutput so;
      ASSERT_TRUE(r.sample(logits, sb, &so).ok());
      for (int i = 0; i < batch; ++i) {
        EXPECT_EQ(so.token_ids[i], cpu::argmax(got.data() + static_cast<int64_t>(i) * V, V));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Families, CudaRunnerTest,
    ::testing::Values(
        Variant{"llama_gqa_hd128", ModelFamily::kLlama, 128, 8, 2, false},
        Variant{"qwen2_bias_hd64", ModelFamily::kQwen2, 64, 7, 1, false},
        Variant{"qwen3_qknorm_hd128", ModelFamily::kQwen3, 128, 4, 2, true},
        Variant{"llama_mha_hd64_tied", ModelFamily::kLlama, 64, 4, 4, true},
        Variant{"generic_hd16", ModelFamily::kLlama, 16, 8, 4, true},
        Variant{"generic_hd16_f32", ModelFamily::kLlama, 16, 8, 4, true, DType::kF32},
        Variant{"qwen3_qknorm_hd8_f32", ModelFamily::kQwen3, 8, 4, 2, false, DType::kF32},
        Variant{"qwen2_bias_hd32_f32", ModelFamily::kQwen2, 32, 7, 1, false, DType::kF32}),
    [](const ::testing::TestParamInfo<Variant>& i) { return i.param.name; });

TEST(CudaRunner, GraphReplayEqualsEagerAndErrorsAreStatuses) {
  KITE_REQUIRE_GPU();
  TinyModel m = make_model(ModelFamily::kLlama, 128, 8, 2, false, 9);
  KvCacheConfig kc;
  kc.dtype = DType::kBF16;
  kc.max_num_seqs = 8;
  kc.max_num_batched_tokens = 512;
  CudaRunnerOptions with_graphs, without;
  without.use_cuda_graphs = false;
  auto a = CudaModelRunner::create(m.cfg, m.lookup(), with_graphs);
  auto e = CudaModelRunner::create(m.cfg, m.lookup(), without);
  ASSERT_TRUE(a.ok() && e.ok());
  ForwardBatch none;
  TensorView logits;
  EXPECT_EQ((*a)->forward(none, &logits).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*a)->allocate_kv_cache(256, kc).ok());
  ASSERT_TRUE((*e)->allocate_kv_cache(256, kc).ok());
  EXPECT_TRUE((*e)->decode_graph_sizes().empty());

  Seqs s1, s2;
  std::mt19937 rng(3);
  for (int i = 0; i < 5; ++i) {
    std::vector<int32_t> p(static_cast<size_t>(20 + 13 * i));
    for (auto& t : p) t = static_cast<int32_t>(rng() % 1000);
    s1.add(p);
    s2.add(p);
  }
  const std::vector<int> which = {0, 1, 2, 3, 4};
  for (int step = 0; step < 4; ++step) {
    ForwardBatch b1 = s1.step(which, 1000), b2 = s2.step(which, 1000);
    TensorView l1, l2;
    ASSERT_TRUE((*a)->forward(b1, &l1).ok());
    std::vector<float> g1(static_cast<size_t>(b1.num_logits()) * 1000), g2(g1.size());
    ASSERT_TRUE((*a)->logits_to_host(l1, g1.data()).ok());
    ASSERT_TRUE((*e)->forward(b2, &l2).ok());
    ASSERT_TRUE((*e)->logits_to_host(l2, g2.data()).ok());
    if (step > 0) {
      EXPECT_TRUE((*a)->last_forward_used_graph());
    }
    EXPECT_FALSE((*e)->last_forward_used_graph());
    // Same kernels, same per-row arithmetic; only the decode split count may differ (graphs
    // plan without knowing the lengths): fp32 merge order only.
    EXPECT_TRUE(within(compare(g1, g2), 1e-3)) << "step " << step;
    for (int i : which) {
      s1.tokens[i].push_back(cpu::argmax(g1.data() + i * 1000, 1000));
      s2.tokens[i].push_back(s1.tokens[i].back());
    }
  }
  // Bad input is a Status, never a crash.
  ForwardBatch bad = s1.step({0}, 1);
  bad.token_ids[0] = 1000;
  EXPECT_EQ((*a)->forward(bad, &logits).code(), StatusCode::kInvalidArgument);
  bad.token_ids[0] = 1;
  bad.block_table[0] = 256;
  EXPECT_EQ((*a)->forward(bad, &logits).code(), StatusCode::kInvalidArgument);
  ForwardBatch big;
  for (int i = 0; i < 600; ++i) {
    big.token_ids.push_back(1);
    big.positions.push_back(i);
    big.slot_mapping.push_back(-1);
  }
  big.query_start_loc = {0, 600};
  big.seq_lens = {600};
  big.block_table_indptr = {0, 38};
  big.block_table.assign(38, 1);
  big.logits_indices = {599};
  big.max_query_len = big.max_seq_len = 600;
  EXPECT_EQ((*a)->forward(big, &logits).code(), StatusCode::kOutOfRange);
  // A missing tensor names itself.
  TinyModel broken = make_model(ModelFamily::kLlama, 128, 8, 2, false, 9);
  broken.bf16.erase("model.layers.1.mlp.up_proj.weight");
  auto br = CudaModelRunner::create(broken.cfg, broken.lookup());
  ASSERT_FALSE(br.ok());
  EXPECT_NE(br.status().message().find("model.layers.1.mlp.up_proj.weight"), std::string::npos);
  // float32 compute is the generic path's: refused for head_dim 128, chosen by auto only for F32
  // checkpoints on the generic path.
  CudaRunnerOptions f32;
  f32.dtype = DType::kF32;
  EXPECT_EQ(CudaModelRunner::create(m.cfg, m.lookup(), f32).status().code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(choose_compute_dtype(m.cfg, m.lookup(), "float32").status().code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(choose_compute_dtype(m.cfg, m.lookup(), "half").status().code(),
            StatusCode::kInvalidArgument);
  TinyModel small = make_model(ModelFamily::kLlama, 16, 8, 4, true, 5);
  auto bf16_auto = choose_compute_dtype(small.cfg, small.lookup(), "auto");
  ASSERT_TRUE(bf16_auto.ok());
  EXPECT_EQ(*bf16_auto, DType::kBF16);  // its checkpoint is BF16
  const std::vector<float> embed_f32 = small.f("model.embed_tokens.weight");
  WeightLookup f32_lookup = [&](std::string_view name) -> Result<TensorView> {
    if (name != "model.embed_tokens.weight") return small.lookup()(name);
    const auto& sh = small.shapes.at(std::string(name));
    return TensorView::contiguous(const_cast<float*>(embed_f32.data()), DType::kF32, sh.data(),
                                  static_cast<int>(sh.size()));
  };
  auto f32_auto = choose_compute_dtype(small.cfg, f32_lookup, "auto");
  ASSERT_TRUE(f32_auto.ok());
  EXPECT_EQ(*f32_auto, DType::kF32);
  EXPECT_EQ(*choose_compute_dtype(m.cfg, f32_lookup, "auto"), DType::kBF16);  // hd 128
}

// The step profiler (set_step_profiling): a profiled step runs eagerly and computes what the
// unprofiled eager step computes; its profile has time in every phase the step has (prefill
// and decode, unfused: 5 rows > gemv_max_m) and sums to its device time; off again, decode steps
// replay their graphs.
TEST(CudaRunner, StepProfilerTimesEveryPhaseWithoutChangingTheStep) {
  KITE_REQUIRE_GPU();
  TinyModel m = make_model(ModelFamily::kLlama, 128, 8, 2, false, 9);
  KvCacheConfig kc;
  kc.dtype = DType::kBF16;
  kc.max_num_seqs = 8;
  kc.max_num_batched_tokens = 512;
  auto a = CudaModelRunner::create(m.cfg, m.lookup());
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  CudaModelRunner& r = **a;
  ASSERT_TRUE(r.allocate_kv_cache(256, kc).ok());
  EXPECT_EQ(r.take_step_profile().status().code(), StatusCode::kFailedPrecondition);
  Seqs s;
  std::mt19937 rng(4);
  for (int i = 0; i < 5; ++i) {
    std::vector<int32_t> p(static_cast<size_t>(20 + 7 * i));
    for (auto& t : p) t = static_cast<int32_t>(rng() % 1000);
    s.add(p);
  }
  const std::vector<int> which = {0, 1, 2, 3, 4};
  SamplingBatch sb;
  sb.temperature.assign(5, 0.f);
  sb.top_k.assign(5, 0);
  sb.top_p.assign(5, 1.f);
  sb.min_p.assign(5, 0.f);
  sb.repetition_penalty.assign(5, 1.f);
  sb.frequency_penalty.assign(5, 0.f);
  sb.presence_penalty.assign(5, 0.f);
  sb.seed.assign(5, 0);
  sb.step.assign(5, 0);
  sb.num_logprobs.assign(5, -1);
  sb.all_greedy = true;
  for (int step = 0; step < 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const ForwardBatch b = s.step(which, 1000);
    // The unprofiled eager step, then the same step profiled (the KV writes are the same).
    r.set_graph_replay(false);
    TensorView l0, l1;
    ASSERT_TRUE(r.forward(b, &l0).ok());
    std::vector<float> ref(static_cast<size_t>(b.num_logits()) * 1000), got(ref.size());
    ASSERT_TRUE(r.logits_to_host(l0, ref.data()).ok());
    r.set_graph_replay(true);
    ASSERT_TRUE(r.set_step_profiling(true, /*lead_us=*/2000).ok());
    ASSERT_TRUE(r.forward(b, &l1).ok());
    EXPECT_FALSE(r.last_forward_used_graph());
    SamplerOutput so;
    ASSERT_TRUE(r.sample(l1, sb, &so).ok());
    ASSERT_TRUE(r.logits_to_host(l1, got.data()).ok());
    Result<StepProfile> p = r.take_step_profile();
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    EXPECT_EQ(r.take_step_profile().status().code(), StatusCode::kFailedPrecondition);
    ASSERT_TRUE(r.set_step_profiling(false).ok());
    // Same kernels on the same inputs (bit-identical in practice; fp32 order is all that could
    // differ).
    EXPECT_TRUE(within(compare(got, ref), 1e-6));
    for (int i : which) {
      EXPECT_EQ(so.token_ids[static_cast<size_t>(i)], cpu::argmax(ref.data() + i * 1000, 1000));
    }
    auto phase = [&](StepPhase ph) { return p->phase_ms[static_cast<size_t>(ph)]; };
    for (StepPhase ph :
         {StepPhase::kGemm, StepPhase::kAttention, StepPhase::kNorm, StepPhase::kRopeKv,
          StepPhase::kActivation, StepPhase::kEmbedding, StepPhase::kSampling}) {
      EXPECT_GT(phase(ph), 0.0) << step_phase_name(ph);
    }
    double sum = 0;
    for (double ms : p->phase_ms) sum += ms;
    EXPECT_NEAR(sum, p->device_ms, 1e-6);
    EXPECT_GT(p->detail_ms.count("gemm/qkv_proj"), 0u);
    EXPECT_GT(p->detail_ms.count("gemm/lm_head"), 0u);
    EXPECT_GT(p->detail_ms.count(step == 0 ? "attention/prefill" : "attention/decode") +
                  p->detail_ms.count("attention/flashinfer_prefill"),
              0u);
    EXPECT_GT(p->host_forward_ms, 0.0);
    for (int i : which) s.tokens[i].push_back(so.token_ids[static_cast<size_t>(i)]);
  }
  // Off: a decode step replays its graph.
  TensorView l;
  ASSERT_TRUE(r.forward(s.step(which, 1000), &l).ok());
  EXPECT_TRUE(r.last_forward_used_graph());

  // KITE_STEP_PROFILE=2: a runner made under it profiles (eagerly) every other step and logs
  // it; the steps between replay their graphs.
  setenv("KITE_STEP_PROFILE", "2:1000", 1);
  auto ap = CudaModelRunner::create(m.cfg, m.lookup());
  unsetenv("KITE_STEP_PROFILE");
  ASSERT_TRUE(ap.ok()) << ap.status().to_string();
  ASSERT_TRUE((*ap)->allocate_kv_cache(256, kc).ok());
  Seqs s2;
  for (int i = 0; i < 5; ++i) {
    std::vector<int32_t> p(static_cast<size_t>(16 + 5 * i));
    for (auto& t : p) t = static_cast<int32_t>(rng() % 1000);
    s2.add(p);
  }
  for (int step = 0; step < 5; ++step) {
    const ForwardBatch b = s2.step(which, 1000);
    TensorView la;
    ASSERT_TRUE((*ap)->forward(b, &la).ok());
    // Steps 0, 2, 4 profiled (eager); 1 and 3 are decodes that replay their graphs.
    EXPECT_EQ((*ap)->last_forward_used_graph(), step % 2 == 1) << "step " << step;
    SamplerOutput so;
    ASSERT_TRUE((*ap)->sample(la, sb, &so).ok());
    for (int i : which) {
      s2.tokens[static_cast<size_t>(i)].push_back(so.token_ids[static_cast<size_t>(i)]);
    }
  }
  EXPECT_EQ((*ap)->take_step_profile().status().code(), StatusCode::kFailedPrecondition);
}

// One step of two runners over the same sequences (a ran s1's batch into l1, b s2's into l2):
// the same path (graph replays from step 4 on), bit-identical logits, and every sequence of
// `which` extended in both by a's greedy token.
void expect_identical_step(CudaModelRunner& a, const TensorView& l1, CudaModelRunner& b,
                           const TensorView& l2, int num_logits, int64_t V, int step,
                           const std::vector<int>& which, Seqs* s1, Seqs* s2) {
  std::vector<float> g1(static_cast<size_t>(num_logits) * V), g2(g1.size());
  ASSERT_TRUE(a.logits_to_host(l1, g1.data()).ok());
  ASSERT_TRUE(b.logits_to_host(l2, g2.data()).ok());
  EXPECT_EQ(a.last_forward_used_graph(), b.last_forward_used_graph()) << "step " << step;
  if (step >= 4) {
    EXPECT_TRUE(a.last_forward_used_graph()) << "step " << step;
    EXPECT_TRUE(b.last_forward_used_graph()) << "step " << step;
  }
  ASSERT_EQ(g1.size(), g2.size());
  EXPECT_EQ(std::memcmp(g1.data(), g2.data(), g1.size() * sizeof(float)), 0)
      << "step " << step << ": " << compare(g2, g1).to_string();
  for (int i : which) {
    const int32_t next = cpu::argmax(g1.data() + static_cast<int64_t>(i) * V, V);
    s1->tokens[i].push_back(next);
    s2->tokens[i].push_back(next);
  }
}

// Two runners in one process, each with its own DeviceContext (on one GPU here; on N GPUs each
// holds its own device): the per-device state (PDL, SM count, the prefill kernel's shared-memory
// opt-in, GEMV occupancy, cuBLASLt handle and plans, streams) lives in the contexts, so the
// second runner's setup changes nothing for the first. Steps interleaved between them, prefill
// chunks (tensor-core prefill kernel, cuBLASLt) and graph-replayed decodes (fused GEMVs, split-KV
// decode), give bit-identical logits.
TEST(CudaRunner, TwoRunnersInOneProcessGiveIdenticalLogits) {
  KITE_REQUIRE_GPU();
  TinyModel m = make_model(ModelFamily::kQwen2, 128, 8, 2, false, 13);
  const int64_t V = m.cfg.vocab_size;
  KvCacheConfig kc;
  kc.dtype = DType::kBF16;
  kc.max_num_seqs = 8;
  kc.max_num_batched_tokens = 512;
  CudaRunnerOptions opts;
  opts.max_graph_batch = 8;
  auto a = CudaModelRunner::create(m.cfg, m.lookup(), opts);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE((*a)->allocate_kv_cache(256, kc).ok());
  auto b = CudaModelRunner::create(m.cfg, m.lookup(), opts);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  ASSERT_TRUE((*b)->allocate_kv_cache(256, kc).ok());

  Seqs s1, s2;
  std::mt19937 rng(17);
  for (int len : {300, 37, 5, 130}) {
    std::vector<int32_t> p(static_cast<size_t>(len));
    for (auto& t : p) t = static_cast<int32_t>(rng() % V);
    s1.add(p);
    s2.add(p);
  }
  const std::vector<int> which = {0, 1, 2, 3};
  for (int step = 0; step < 6; ++step) {
    // Chunks of 128 tokens: three prefill steps, then decodes (graph replays).
    ForwardBatch b1 = s1.step(which, 128), b2 = s2.step(which, 128);
    TensorView l1, l2;
    // The second runner goes first on even steps.
    if (step % 2 == 0) {
      ASSERT_TRUE((*b)->forward(b2, &l2).ok());
    }
    ASSERT_TRUE((*a)->forward(b1, &l1).ok());
    if (step % 2 == 1) {
      ASSERT_TRUE((*b)->forward(b2, &l2).ok());
    }
    ASSERT_NO_FATAL_FAILURE(
        expect_identical_step(**a, l1, **b, l2, b1.num_logits(), V, step, which, &s1, &s2));
  }
}

// --quantization fp8 on the GPU: every linear but the LM head quantized per row at load; decode
// steps (graph replays of the fused FP8 GEMV) and prefill chunks (per-token FP8 activations and
// cuBLASLt's scaled FP8 GEMM, or its dequantized fallback) against the bf16 runner on the same
// weights. E4M3 keeps 3 mantissa bits (relative error <= 2^-4 per weight and per activation,
// about 2^-6 on average); through two layers the logits stay within 0.1 relative L2 of bf16's,
// and the greedy token agrees wherever bf16's top-2 gap is wide. Run under both GEMM paths.
TEST(CudaRunner, Fp8WeightsStayCloseToBf16) {
  KITE_REQUIRE_GPU();
  TinyModel m = make_model(ModelFamily::kLlama, 128, 8, 2, false, 21);
  const int64_t V = m.cfg.vocab_size;
  KvCacheConfig kc;
  kc.dtype = DType::kBF16;
  kc.max_num_seqs = 8;
  kc.max_num_batched_tokens = 512;
  for (const char* gemm : {"scaled", "dequant"}) {
    SCOPED_TRACE(gemm);
    if (std::string(gemm) == "dequant") {
      setenv("KITE_FP8_GEMM", "dequant", 1);
    } else {
      unsetenv("KITE_FP8_GEMM");
    }
    CudaRunnerOptions opts;
    opts.max_graph_batch = 8;
    auto bf16 = CudaModelRunner::create(m.cfg, m.lookup(), opts);
    ASSERT_TRUE(bf16.ok()) << bf16.status().to_string();
    ASSERT_TRUE((*bf16)->allocate_kv_cache(256, kc).ok());
    opts.fp8_online = true;
    auto fp8 = CudaModelRunner::create(m.cfg, m.lookup(), opts);
    ASSERT_TRUE(fp8.ok()) << fp8.status().to_string();
    ASSERT_TRUE((*fp8)->allocate_kv_cache(256, kc).ok());
    Seqs s1, s2;
    std::mt19937 rng(5);
    for (int len : {300, 37, 5, 130}) {
      std::vector<int32_t> p(static_cast<size_t>(len));
      for (auto& t : p) t = static_cast<int32_t>(rng() % V);
      s1.add(p);
      s2.add(p);
    }
    const std::vector<int> which = {0, 1, 2, 3};
    for (int step = 0; step < 6; ++step) {
      ForwardBatch b1 = s1.step(which, 128), b2 = s2.step(which, 128);
      TensorView l1, l2;
      ASSERT_TRUE((*bf16)->forward(b1, &l1).ok());
      ASSERT_TRUE((*fp8)->forward(b2, &l2).ok());
      std::vector<float> g1(static_cast<size_t>(b1.num_logits()) * V), g2(g1.size());
      ASSERT_TRUE((*bf16)->logits_to_host(l1, g1.data()).ok());
      ASSERT_TRUE((*fp8)->logits_to_host(l2, g2.data()).ok());
      if (step >= 4) {
        EXPECT_TRUE((*fp8)->last_forward_used_graph()) << "step " << step;
      }
      expect_logits_close(g2, g1, V, "fp8 step " + std::to_string(step), 0.1);
      for (int i : which) {  // both follow bf16's greedy tokens
        const int32_t next = cpu::argmax(g1.data() + static_cast<int64_t>(i) * V, V);
        s1.tokens[i].push_back(next);
        s2.tokens[i].push_back(next);
      }
    }
  }
  unsetenv("KITE_FP8_GEMM");
}

// The producers' FP8 copies (op_runner.cpp: the RMSNorms and SiLU·mul write the E4M3 input and
// per-token scales of the qkv, gate_up and down projections when those take the scaled FP8 GEMM)
// are the standalone quantization's bytes: the same FP8 runner with KITE_FP8_FUSED_QUANT=0 (each
// linear quantizes its own input) gives bit-identical logits — on prefill chunks (eager) and on
// decode steps of 6 sequences, above the GEMV's 4 rows (graph replays of the plain op list, so
// the fused kernels run inside CUDA graphs). Per-channel weights quantized at load (per-token
// activation scales) and a 128x128 block-scaled checkpoint (1x128 group scales, group-major).
// The same FP8 model in two runners, the second with KITE_FP8_FUSED_QUANT=0: bit-identical
// logits over prefill chunks and graph-replayed decode steps of 6 sequences.
void expect_fused_fp8_quantization_bit_identical(const ModelConfig& cfg, const WeightLookup& lookup,
                                                 bool fp8_online) {
  const int64_t V = cfg.vocab_size;
  KvCacheConfig kc;
  kc.dtype = DType::kBF16;
  kc.max_num_seqs = 8;
  kc.max_num_batched_tokens = 512;
  unsetenv("KITE_FP8_GEMM");
  CudaRunnerOptions opts;
  opts.max_graph_batch = 8;
  opts.fp8_online = fp8_online;
  setenv("KITE_FP8_FUSED_QUANT", "0", 1);
  auto unfused = CudaModelRunner::create(cfg, lookup, opts);
  unsetenv("KITE_FP8_FUSED_QUANT");
  ASSERT_TRUE(unfused.ok()) << unfused.status().to_string();
  ASSERT_TRUE((*unfused)->allocate_kv_cache(256, kc).ok());
  auto fused = CudaModelRunner::create(cfg, lookup, opts);
  ASSERT_TRUE(fused.ok()) << fused.status().to_string();
  ASSERT_TRUE((*fused)->allocate_kv_cache(256, kc).ok());
  Seqs s1, s2;
  std::mt19937 rng(31);
  for (int len : {300, 37, 5, 130, 64, 9}) {
    std::vector<int32_t> p(static_cast<size_t>(len));
    for (auto& t : p) t = static_cast<int32_t>(rng() % V);
    s1.add(p);
    s2.add(p);
  }
  const std::vector<int> which = {0, 1, 2, 3, 4, 5};
  for (int step = 0; step < 6; ++step) {
    ForwardBatch b1 = s1.step(which, 128), b2 = s2.step(which, 128);
    TensorView l1, l2;
    ASSERT_TRUE((*unfused)->forward(b1, &l1).ok());
    ASSERT_TRUE((*fused)->forward(b2, &l2).ok());
    ASSERT_NO_FATAL_FAILURE(expect_identical_step(**unfused, l1, **fused, l2, b1.num_logits(), V,
                                                  step, which, &s1, &s2));
  }
}

TEST(CudaRunner, Fp8FusedActivationQuantizationIsBitIdentical) {
  KITE_REQUIRE_GPU();
  {
    SCOPED_TRACE("--quantization fp8: per-channel weights, per-token activation scales");
    TinyModel m = make_model(ModelFamily::kLlama, 128, 8, 2, false, 29);
    expect_fused_fp8_quantization_bit_identical(m.cfg, m.lookup(), true);
  }
  {
    SCOPED_TRACE("fp8 128x128 block checkpoint: 1x128 group activation scales");
    Fp8BlockModel f = make_fp8_block_model(37);
    expect_fused_fp8_quantization_bit_identical(f.base.cfg, f.lookup(), false);
  }
}

// The FP8 KV cache (--kv-cache-dtype fp8) on the tensor-core path against the bf16 cache on the
// same weights: 1 byte per KV element (kv_block_bytes halves), prefill chunks (our prefill
// kernel: FlashInfer is not used with an FP8 cache) and graph-replayed decodes (fused GEMV
// RoPE + KV epilogue, split-KV decode), per-layer scales of 0.5 and 2. E4M3 keeps 3 mantissa
// bits (relative error <= 2^-4 per cached value); the logits stay within 0.1 relative L2 of the
// bf16 cache's and the greedy token agrees wherever bf16's top-2 gap is wide.
TEST(CudaRunner, Fp8KvCacheStaysCloseToBf16Cache) {
  KITE_REQUIRE_GPU();
  TinyModel m = make_model(ModelFamily::kLlama, 128, 8, 2, false, 23);
  const int64_t V = m.cfg.vocab_size;
  KvCacheConfig kc;
  kc.max_num_seqs = 8;
  kc.max_num_batched_tokens = 512;
  CudaRunnerOptions opts;
  opts.max_graph_batch = 8;
  auto bf16 = CudaModelRunner::create(m.cfg, m.lookup(), opts);
  ASSERT_TRUE(bf16.ok()) << bf16.status().to_string();
  ASSERT_TRUE((*bf16)->allocate_kv_cache(256, kc).ok());
  opts.kv_cache_dtype = DType::kF8E4M3;
  const size_t layers = static_cast<size_t>(m.cfg.num_hidden_layers);
  opts.kv_scales.k.assign(layers, 0.5f);
  opts.kv_scales.v.assign(layers, 2.f);
  auto fp8 = CudaModelRunner::create(m.cfg, m.lookup(), opts);
  ASSERT_TRUE(fp8.ok()) << fp8.status().to_string();
  EXPECT_EQ((*fp8)->kv_cache_dtype(), DType::kF8E4M3);
  EXPECT_EQ((*bf16)->kv_cache_dtype(), DType::kBF16);
  EXPECT_EQ(2 * (*fp8)->kv_block_bytes(16), (*bf16)->kv_block_bytes(16));
  ASSERT_TRUE((*fp8)->allocate_kv_cache(256, kc).ok());
  Seqs s1, s2;
  std::mt19937 rng(6);
  for (int len : {300, 37, 5, 130}) {
    std::vector<int32_t> p(static_cast<size_t>(len));
    for (auto& t : p) t = static_cast<int32_t>(rng() % V);
    s1.add(p);
    s2.add(p);
  }
  const std::vector<int> which = {0, 1, 2, 3};
  for (int step = 0; step < 6; ++step) {
    ForwardBatch b1 = s1.step(which, 128), b2 = s2.step(which, 128);
    TensorView l1, l2;
    ASSERT_TRUE((*bf16)->forward(b1, &l1).ok());
    ASSERT_TRUE((*fp8)->forward(b2, &l2).ok());
    std::vector<float> g1(static_cast<size_t>(b1.num_logits()) * V), g2(g1.size());
    ASSERT_TRUE((*bf16)->logits_to_host(l1, g1.data()).ok());
    ASSERT_TRUE((*fp8)->logits_to_host(l2, g2.data()).ok());
    if (step >= 4) {
      EXPECT_TRUE((*fp8)->last_forward_used_graph()) << "step " << step;
    }
    expect_logits_close(g2, g1, V, "fp8 kv step " + std::to_string(step), 0.1);
    for (int i : which) {  // both follow bf16's greedy tokens
      const int32_t next = cpu::argmax(g1.data() + static_cast<int64_t>(i) * V, V);
      s1.tokens[i].push_back(next);
      s2.tokens[i].push_back(next);
    }
  }
  // Scales must match the layer count.
  opts.kv_scales.k.pop_back();
  EXPECT_EQ(CudaModelRunner::create(m.cfg, m.lookup(), opts).status().code(),
            StatusCode::kInvalidArgument);
}

// The shipped TinyStories model (F32 checkpoint: float32 compute, the generic attention path)
// with an FP8 KV cache against the CPU runner's FP8 cache (the emulation), same scales: both
// quantize the same float32 K/V (up to summation order), so the logits agree as closely as the
// float32 runners' do (2^-16 relative L2 there; 2^-10 allowed here for the rare value that
// rounds to the neighbouring E4M3 code), far closer than either is to the float32 cache.
TEST(CudaRunner, Fp8KvCacheMatchesTheCpuRunnersEmulation) {
  KITE_REQUIRE_GPU();
  const std::string path = std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k";
  auto store = load_model(path, LoadOptions{});
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  std::shared_ptr<const WeightStore> ws(std::move(*store));
  const ModelConfig& cfg = ws->config();
  const int64_t V = cfg.vocab_size;
  const KvCacheScales scales{{0.25f, 1.5f}, {0.75f, 0.5f}, 0};
  KvCacheConfig kc;
  kc.max_num_seqs = 8;
  kc.max_num_batched_tokens = 256;
  CpuRunnerOptions co;
  co.kv_cache_dtype = DType::kF8E4M3;
  co.kv_scales = scales;
  auto cpu8 = CpuModelRunner::create(ws, co);
  ASSERT_TRUE(cpu8.ok()) << cpu8.status().to_string();
  ASSERT_TRUE((*cpu8)->allocate_kv_cache(64, kc).ok());
  auto cpu32 = CpuModelRunner::create(ws);
  ASSERT_TRUE(cpu32.ok());
  ASSERT_TRUE((*cpu32)->allocate_kv_cache(64, kc).ok());
  WeightLookup lookup = [&](std::string_view name) { return ws->get(name); };
  CudaRunnerOptions opts;
  opts.dtype = DType::kF32;
  opts.max_graph_batch = 8;
  opts.kv_cache_dtype = DType::kF8E4M3;
  opts.kv_scales = scales;
  auto gpu = CudaModelRunner::create(cfg, lookup, opts);
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  ASSERT_TRUE((*gpu)->allocate_kv_cache(64, kc).ok());
  Seqs sc, s32, sg;
  std::mt19937 rng(7);
  for (int len : {70, 9, 33}) {
    std::vector<int32_t> p(static_cast<size_t>(len));
    for (auto& t : p) t = static_cast<int32_t>(rng() % V);
    sc.add(p);
    s32.add(p);
    sg.add(p);
  }
  const std::vector<int> which = {0, 1, 2};
  for (int step = 0; step < 6; ++step) {
    ForwardBatch bc = sc.step(which, 40), b32 = s32.step(which, 40), bg = sg.step(which, 40);
    TensorView lc, l32, lg;
    ASSERT_TRUE((*cpu8)->forward(bc, &lc).ok());
    ASSERT_TRUE((*cpu32)->forward(b32, &l32).ok());
    const Status st = (*gpu)->forward(bg, &lg);
    ASSERT_TRUE(st.ok()) << st.to_string();
    std::vector<float> gc(static_cast<size_t>(bc.num_logits()) * V), g32(gc.size()), gg(gc.size());
    ASSERT_TRUE((*cpu8)->logits_to_host(lc, gc.data()).ok());
    ASSERT_TRUE((*cpu32)->logits_to_host(l32, g32.data()).ok());
    ASSERT_TRUE((*gpu)->logits_to_host(lg, gg.data()).ok());
    const ErrorStats vs_emulation = compare(gg, gc), vs_f32 = compare(gg, g32);
    EXPECT_EQ(vs_emulation.nan, 0u);
    EXPECT_LT(vs_emulation.rel_l2, 1.0 / 1024)
        << "step " << step << " " << vs_emulation.to_string();
    EXPECT_GT(vs_f32.rel_l2, 4 * vs_emulation.rel_l2) << "step " << step << ": is the cache FP8?";
    for (int i : which) {  // all follow the emulation's greedy tokens
      const int32_t next = cpu::argmax(gc.data() + static_cast<int64_t>(i) * V, V);
      sc.tokens[i].push_back(next);
      s32.tokens[i].push_back(next);
      sg.tokens[i].push_back(next);
    }
  }
}

// Pooling rows (embeddings, ForwardBatch::num_pooling_rows) on the shipped TinyStories model
// (an F32 checkpoint: the CUDA runner computes in float32, so it differs from the CPU runner
// only in summation order): the final-norm rows the CUDA runner returns equal the CPU runner's
// within 2^-16 relative L2, over two prefill chunks of a long sequence (every row pooled, as
// mean pooling asks) beside a short one with an ordinary logits row, whose logits match too.
TEST(CudaRunner, PoolingRowsMatchTheCpuRunner) {
  KITE_REQUIRE_GPU();
  const std::string path = std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k";
  auto store = load_model(path, LoadOptions{});
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  std::shared_ptr<const WeightStore> ws(std::move(*store));
  const ModelConfig& cfg = ws->config();
  const int64_t H = cfg.hidden_size, V = cfg.vocab_size;
  KvCacheConfig kc;
  kc.block_size = 16;
  kc.max_num_seqs = 8;
  kc.max_num_batched_tokens = 256;
  kc.memory_budget_bytes = 64ll << 20;
  auto cpu = CpuModelRunner::create(ws);
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  ASSERT_TRUE((*cpu)->allocate_kv_cache(64, kc).ok());
  WeightLookup lookup = [&](std::string_view name) { return ws->get(name); };
  auto dtype = choose_compute_dtype(cfg, lookup, "auto");
  ASSERT_TRUE(dtype.ok()) << dtype.status().to_string();
  ASSERT_EQ(*dtype, DType::kF32);
  CudaRunnerOptions opts;
  opts.dtype = *dtype;
  auto gpu = CudaModelRunner::create(cfg, lookup, opts);
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  kc.dtype = DType::kF32;
  ASSERT_TRUE((*gpu)->allocate_kv_cache(64, kc).ok());
  ASSERT_TRUE((*gpu)->supports_pooling());

  std::mt19937 rng(5);
  std::vector<int32_t> a(70), b(9);
  for (auto& t : a) t = static_cast<int32_t>(rng() % V);
  for (auto& t : b) t = static_cast<int32_t>(rng() % V);
  // Sequence a (blocks 1..5) in chunks [0, 40) and [40, 70); sequence b (block 6) whole in the
  // first step, with a logits row for its last token and that row pooled too.
  auto step = [&](int a_start, int a_end, bool with_b) {
    ForwardBatch fb;
    fb.query_start_loc.push_back(0);
    fb.block_table_indptr.push_back(0);
    auto add = [&](const std::vector<int32_t>& p, int start, int end, int first_block) {
      for (int pos = start; pos < end; ++pos) {
        fb.token_ids.push_back(p[static_cast<size_t>(pos)]);
        fb.positions.push_back(pos);
        fb.slot_mapping.push_back((first_block + pos / 16) * 16 + pos % 16);
      }
      fb.query_start_loc.push_back(fb.num_tokens());
      fb.seq_lens.push_back(end);
      for (int k = 0; k < (end + 15) / 16; ++k) fb.block_table.push_back(first_block + k);
      fb.block_table_indptr.push_back(static_cast<int32_t>(fb.block_table.size()));
      fb.max_query_len = std::max(fb.max_query_len, end - start);
      fb.max_seq_len = std::max(fb.max_seq_len, end);
    };
    add(a, a_start, a_end, 1);
    const int a_rows = a_end - a_start;
    if (with_b) {
      add(b, 0, static_cast<int>(b.size()), 6);
      fb.logits_indices.push_back(fb.num_tokens() - 1);  // b's last token: an ordinary row
    }
    for (int r = 0; r < a_rows; ++r) fb.logits_indices.push_back(r);  // a: every row pooled
    if (with_b) fb.logits_indices.push_back(fb.num_tokens() - 1);     // b: its last row pooled
    fb.num_pooling_rows = a_rows + (with_b ? 1 : 0);
    return fb;
  };
  for (const ForwardBatch& fb : {step(0, 40, true), step(40, 70, false)}) {
    TensorView lc, lg;
    ASSERT_TRUE((*cpu)->forward(fb, &lc).ok());
    const Status st = (*gpu)->forward(fb, &lg);
    ASSERT_TRUE(st.ok()) << st.to_string();
    const int64_t n_logits = fb.num_logits() - fb.num_pooling_rows;
    ASSERT_EQ(lg.dim(0), n_logits);
    std::vector<float> hc(static_cast<size_t>(fb.num_pooling_rows * H)), hg(hc.size());
    ASSERT_TRUE((*cpu)->hidden_states_to_host(0, fb.num_pooling_rows, hc.data()).ok());
    ASSERT_TRUE((*gpu)->hidden_states_to_host(0, fb.num_pooling_rows, hg.data()).ok());
    const ErrorStats e = compare(hg, hc);
    EXPECT_LT(e.rel_l2, 1.0 / 65536) << e.to_string();
    EXPECT_EQ(e.nan, 0u);
    if (n_logits > 0) {
      std::vector<float> gc(static_cast<size_t>(n_logits * V)), gg(gc.size());
      ASSERT_TRUE((*cpu)->logits_to_host(lc, gc.data()).ok());
      ASSERT_TRUE((*gpu)->logits_to_host(lg, gg.data()).ok());
      EXPECT_LT(compare(gg, gc).rel_l2, 1.0 / 65536) << compare(gg, gc).to_string();
    }
  }
}

}  // namespace
}  // namespace kite::cuda::test
