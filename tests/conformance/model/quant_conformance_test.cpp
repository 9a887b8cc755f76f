// GGUF against the `gguf` Python package: the parser (metadata and tensor infos as GGUFReader
// sees them), dequantisation of every supported type (bit-identical to gguf.quants.dequantize
// on random blocks and on real quantized weights), the Q/K un-permutation, and the shipped Q8_0
// model's greedy agreement with its F32 original.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_model_runner.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/sequence_runner.h"
#include "checkpoint/dequant.h"
#include "checkpoint/gguf.h"
#include "checkpoint/weights.h"
#include "models/load.h"
#include "support/test_util.h"

namespace kite {
namespace {

const std::string kData = std::string(KITE_SOURCE_DIR) + "/tests/data/models";
const std::string kConf = KITE_CONFORMANCE_DIR;

class QuantVectorsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<testing::TempDir>();
    if (!testing::have_python()) return;
    made_ = testing::run_python(kConf + "/gguf_quant_vectors.py",
                                {dir_->path(), kData + "/tinystories-656k/model.safetensors",
                                 kData + "/tinystories-656k-q8_0.gguf"},
                                &log_) == 0;
  }
  static void TearDownTestSuite() { dir_.reset(); }
  void SetUp() override {
    if (!testing::have_python()) GTEST_SKIP() << "no Python at " << KITE_PYTHON_EXECUTABLE;
    ASSERT_TRUE(made_) << log_;
  }

  // Dequantizes every tensor of `quant` with kite and compares with the same-named F32 tensor
  // of `expected`, bit for bit. Returns the number of values compared.
  static int64_t compare_all(const std::string& quant, const std::string& expected) {
    auto q = GgufFile::open(quant);
    auto e = GgufFile::open(expected);
    EXPECT_TRUE(q.ok() && e.ok()) << q.status().to_string() << e.status().to_string();
    if (!q.ok() || !e.ok()) return 0;
    int64_t compared = 0;
    for (const GgufTensorInfo& info : q->tensors()) {
      const GgufTensorInfo* ref = e->find_tensor(info.name);
      EXPECT_NE(ref, nullptr) << info.name;
      if (ref == nullptr) continue;
      auto view = q->tensor_view(info);
      EXPECT_TRUE(view.ok()) << view.status().to_string();
      auto got = dequantize_to_f32(*view);
      EXPECT_TRUE(got.ok()) << got.status().to_string();
      EXPECT_EQ(static_cast<int64_t>(got->size()), ref->numel) << info.name;
      EXPECT_EQ(ref->shape(), info.shape()) << info.name;
      if (!got.ok() || static_cast<int64_t>(got->size()) != ref->numel) continue;
      const float* want = reinterpret_cast<const float*>(e->tensor_data(*ref));
      int64_t mismatches = 0;
      for (size_t i = 0; i < got->size(); ++i) {
        uint32_t a, b;
        std::memcpy(&a, &(*got)[i], 4);
        std::memcpy(&b, &want[i], 4);
        if (a != b && ++mismatches <= 3) {
          ADD_FAILURE() << info.name << " (" << view->to_string() << ") value " << i << ": kite "
                        << (*got)[i] << ", gguf " << want[i];
        }
      }
      EXPECT_EQ(mismatches, 0) << info.name;
      compared += ref->numel;
    }
    return compared;
  }

  static std::unique_ptr<testing::TempDir> dir_;
  static bool made_;
  static std::string log_;
};
std::unique_ptr<testing::TempDir> QuantVectorsTest::dir_;
bool QuantVectorsTest::made_ = false;
std::string QuantVectorsTest::log_;

TEST_F(QuantVectorsTest, EveryTypeBitIdenticalToGgufPackage) {
  const int64_t n = compare_all(*dir_ / "quant.gguf", *dir_ / "expected.gguf");
  // 6 random types x 3072 values + 3 real x 49152 + 2 x 120.
  EXPECT_EQ(n, 6 * 3072 + 3 * 49152 + 2 * 120);
}

TEST_F(QuantVectorsTest, ShippedQ8_0FileBitIdenticalToGgufPackage) {
  const int64_t n = compare_all(kData + "/tinystories-656k-q8_0.gguf", *dir_ / "expected_q8.gguf");
  EXPECT_GT(n, 600000);
}

// linear() over quantized weights equals linear() over their dequantized F32 copy, bit for bit
// (the chunked on-the-fly dequantisation changes nothing), for GEMV and GEMM shapes.
TEST_F(QuantVectorsTest, LinearOnQuantizedWeightsEqualsDequantized) {
  auto q = GgufFile::open(*dir_ / "quant.gguf");
  ASSERT_TRUE(q.ok());
  ThreadPool pool(2);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (const GgufTensorInfo& info : q->tensors()) {
    auto w = q->tensor_view(info);
    ASSERT_TRUE(w.ok());
    if (!dtype_info(w->dtype).quantized) continue;
    auto deq = dequantize_to_f32(*w);
    ASSERT_TRUE(deq.ok());
    TensorView wf(deq->data(), DType::kF32, {w->dim(0), w->dim(1)});
    for (int64_t m : {1, 3, 9}) {
      std::vector<float> x(static_cast<size_t>(m * w->dim(1)));
      for (float& v : x) v = dist(rng);
      std::vector<float> y1(static_cast<size_t>(m * w->dim(0))), y2(y1.size());
      cpu::linear(x.data(), m, *w, nullptr, y1.data(), &pool);
      cpu::linear(x.data(), m, wf, nullptr, y2.data(), nullptr);
      ASSERT_EQ(y1, y2) << info.name << " m=" << m;
    }
    // Embedding rows of a quantized table.
    const int32_t ids[2] = {0, static_cast<int32_t>(w->dim(0) - 1)};
    std::vector<float> e(static_cast<size_t>(2 * w->dim(1)));
    cpu::embedding(*w, ids, 2, e.data(), nullptr);
    for (int64_t j = 0; j < w->dim(1); ++j) {
      ASSERT_EQ(e[static_cast<size_t>(j)], (*deq)[static_cast<size_t>(j)]);
      ASSERT_EQ(e[static_cast<size_t>(w->dim(1) + j)],
                (*deq)[static_cast<size_t>((w->dim(0) - 1) * w->dim(1) + j)]);
    }
  }
}

// The parser sees what GGUFReader sees: every key with its type and value, every tensor with
// its type, shape and offset.
void compare_with_reader(const std::string& path) {
  testing::TempDir tmp;
  std::string log;
  ASSERT_EQ(testing::run_python(kConf + "/gguf_dump.py", {path, tmp / "dump.json"}, &log), 0)
      << log;
  auto doc = boost::json::parse(testing::read_text(tmp / "dump.json")).as_object();
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  const auto& meta = doc.at("metadata").as_object();
  EXPECT_EQ(meta.size(), f->metadata().size()) << path;
  for (const auto& [key, value] : f->metadata()) {
    auto it = meta.find(key);
    ASSERT_NE(it, meta.end()) << key;
    const auto& ref = it->value().as_object();
    EXPECT_EQ(ref.at("type").as_string(), gguf_type_name(value.type)) << key;
    const auto& v = ref.at("value");
    switch (value.type) {
      case GgufType::kString:
        EXPECT_EQ(v.as_string(), value.str) << key;
        break;
      case GgufType::kFloat32:
      case GgufType::kFloat64:
        EXPECT_EQ(v.to_number<double>(), value.f64) << key;
        break;
      case GgufType::kBool:
        EXPECT_EQ(v.as_bool(), value.u64 != 0) << key;
        break;
      case GgufType::kArray: {
        EXPECT_EQ(ref.at("elem").as_string(), gguf_type_name(value.elem_type)) << key;
        EXPECT_EQ(ref.at("count").to_number<uint64_t>(), value.count) << key;
        if (value.elem_type == GgufType::kString) {
          auto strings = f->get_array_strings(key);
          ASSERT_TRUE(strings.ok());
          const auto& arr = v.as_array();
          ASSERT_EQ(arr.size(), strings->size());
          for (size_t i = 0; i < arr.size(); ++i) EXPECT_EQ(arr[i].as_string(), (*strings)[i]);
        } else if (value.elem_type == GgufType::kFloat32) {
          auto floats = f->get_array_f32(key);
          ASSERT_TRUE(floats.ok());
          const auto& arr = v.as_array();
          for (size_t i = 0; i < arr.size(); ++i) {
            EXPECT_EQ(static_cast<float>(arr[i].to_number<double>()), (*floats)[i]);
          }
        } else if (value.is_numeric_array()) {
          auto ints = f->get_array_i64(key);
          ASSERT_TRUE(ints.ok());
          const auto& arr = v.as_array();
          for (size_t i = 0; i < arr.size(); ++i)
            EXPECT_EQ(arr[i].to_number<int64_t>(), (*ints)[i]);
        }
        break;
      }
      default:
        if (value.is_integer()) {
          EXPECT_EQ(v.to_number<int64_t>(), *f->get_int(key)) << key;
        }
    }
  }
  const auto& tensors = doc.at("tensors").as_array();
  ASSERT_EQ(tensors.size(), f->tensors().size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& ref = tensors[i].as_object();
    const GgufTensorInfo& t = f->tensors()[i];
    EXPECT_EQ(ref.at("name").as_string(), t.name);
    EXPECT_EQ(ref.at("type").to_number<uint32_t>(), t.ggml_type) << t.name;
    std::vector<int64_t> shape;
    for (const auto& d : ref.at("shape").as_array()) shape.push_back(d.to_number<int64_t>());
    EXPECT_EQ(shape, t.shape()) << t.name;
    EXPECT_EQ(ref.at("abs_offset").to_number<uint64_t>(), f->data_offset() + t.offset) << t.name;
  }
}

TEST_F(QuantVectorsTest, ParserAgreesWithGgufReader) {
  compare_with_reader(kData + "/stories260k/stories260K.gguf");
  compare_with_reader(kData + "/tinystories-656k-q8_0.gguf");
  compare_with_reader(*dir_ / "quant.gguf");
}

// The Q8_0 GGUF was converted from the safetensors model by llama.cpp, which permutes Q/K rows
// for its interleaved RoPE; after kite's un-permutation each value must be within half a
// quantisation step of the original: |d16 * round(w / d) - w| <= d / 2 + 127 * |d16 - d|, with
// d = max|block| / 127 and d16 its F16 rounding (relative error <= 2^-11), so <= d * (0.5 +
// 127 / 2048). A wrong row order would be off by the weights' own magnitude.
TEST(GgufLayoutTest, QkRowsMatchTheSafetensorsOriginal) {
  auto q8 = load_model(kData + "/tinystories-656k-q8_0.gguf");
  auto f32 = load_model(kData + "/tinystories-656k");
  ASSERT_TRUE(q8.ok() && f32.ok());
  for (const std::string name : {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                 "self_attn.v_proj.weight", "mlp.down_proj.weight"}) {
    for (int l = 0; l < 2; ++l) {
      const std::string full = "model.layers." + std::to_string(l) + "." + name;
      auto a = (*q8)->get(full);
      auto b = (*f32)->get(full);
      ASSERT_TRUE(a.ok() && b.ok()) << full;
      ASSERT_EQ(a->dtype, DType::kQ8_0);
      auto deq = dequantize_to_f32(*a);
      ASSERT_TRUE(deq.ok());
      const float* ref = b->as<float>();
      for (int64_t blk = 0; blk < b->numel() / 32; ++blk) {
        float amax = 0;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(ref[blk * 32 + i]));
        const float bound = amax / 127.0f * (0.5f + 127.0f / 2048.0f) + 1e-7f;
        for (int i = 0; i < 32; ++i) {
          ASSERT_LE(std::fabs((*deq)[blk * 32 + i] - ref[blk * 32 + i]), bound)
              << full << " value " << blk * 32 + i;
        }
      }
    }
  }
}

std::vector<int32_t> greedy(CpuModelRunner* runner, const std::vector<int32_t>& prompt, int steps) {
  SequenceRunner seq(runner, 16, runner->num_kv_blocks());
  std::vector<int32_t> out;
  std::vector<int32_t> next = prompt;
  for (int s = 0; s < steps; ++s) {
    auto logits = seq.feed(next);
    EXPECT_TRUE(logits.ok()) << logits.status().to_string();
    if (!logits.ok()) break;
    out.push_back(cpu::argmax(logits->data(), runner->config().vocab_size));
    next = {out.back()};
  }
  return out;
}

std::unique_ptr<CpuModelRunner> make_runner(const std::string& path) {
  auto loaded = load_model(path);
  EXPECT_TRUE(loaded.ok()) << loaded.status().to_string();
  if (!loaded.ok()) return nullptr;
  auto runner = CpuModelRunner::create(std::shared_ptr<const WeightStore>(std::move(*loaded)),
                                       {.num_threads = 2});
  EXPECT_TRUE(runner.ok());
  EXPECT_TRUE((*runner)->allocate_kv_cache(8, KvCacheConfig{}).ok());
  return std::move(*runner);
}

// Q8_0 keeps ~8 bits per weight, so its logits differ from F32 by quantisation noise; greedy
// paths agree until a near-tie flips, after which the stories may diverge entirely. So we
// measure two things over 4 prompts x 64 tokens:
//   - free-running: the fraction of positions where the two greedy continuations agree;
//   - teacher-forced: feeding the F32 continuation to the Q8_0 model, how often its argmax
//     picks F32's next token (quantisation noise alone, without divergence cascades).
// Measured on this model: see the printed rates. The floors leave room for a different
// thread count or compiler but fail on a broken Q8_0 path (a wrong scale, row order or block
// layout gives near-random tokens: agreement ~1/2048).
TEST(Q8AgreementTest, GreedyContinuationStaysClose) {
  auto f32 = make_runner(kData + "/tinystories-656k");
  auto q8 = make_runner(kData + "/tinystories-656k-q8_0.gguf");
  ASSERT_TRUE(f32 && q8);
  const std::vector<std::vector<int32_t>> prompts = {
      {1},
      {1, 80, 147, 201, 282, 57},
      {1, 80, 247, 476},
      {1, 80, 875, 303, 1747, 238, 878, 203, 1898, 489, 552, 609, 939}};
  constexpr int kSteps = 64;
  int same = 0, total = 0, forced_same = 0, forced_total = 0;
  for (const auto& prompt : prompts) {
    const auto a = greedy(f32.get(), prompt, kSteps);
    const auto b = greedy(q8.get(), prompt, kSteps);
    size_t prefix = 0;
    while (prefix < a.size() && a[prefix] == b[prefix]) ++prefix;
    for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
    total += static_cast<int>(a.size());
    // Teacher forcing: Q8_0 logits along the F32 sequence.
    std::vector<int32_t> seq_ids = prompt;
    seq_ids.insert(seq_ids.end(), a.begin(), a.end() - 1);
    SequenceRunner seq(q8.get(), 16, q8->num_kv_blocks());
    auto all = seq.feed(seq_ids, /*all_logits=*/true);
    ASSERT_TRUE(all.ok());
    const int64_t vocab = q8->config().vocab_size;
    for (size_t i = 0; i < a.size(); ++i) {
      const size_t row = prompt.size() - 1 + i;
      forced_same += cpu::argmax(all->data() + row * vocab, vocab) == a[i];
      ++forced_total;
    }
    std::printf("[ q8_0     ] prompt of %zu tokens: common prefix %zu / %d tokens\n", prompt.size(),
                prefix, kSteps);
  }
  const double free_rate = static_cast<double>(same) / total;
  const double forced_rate = static_cast<double>(forced_same) / forced_total;
  std::printf("[ q8_0     ] agreement with F32: free-running %.3f, teacher-forced %.3f\n",
              free_rate, forced_rate);
  EXPECT_GE(forced_rate, 0.90);
  EXPECT_GE(free_rate, 0.30);
}

}  // namespace
}  // namespace kite
