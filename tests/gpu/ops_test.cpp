// cuda_ops_test: every case of the op table (op_table.h: op x dtype x shape) against the CPU
// reference ops, plus host-side checks that the planners and the kernels' dispatch read one
// shapes table (kernel_support.h).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "backend/cuda/attention.h"
#include "backend/cuda/flashinfer_prefill.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/kernel_support.h"
#include "gpu_test_util.h"
#include "op_table.h"

namespace kite::cuda::test {
namespace {

// A seed from the case's name (FNV-1a), so a case's inputs do not depend on its table position.
uint32_t seed_of(const std::string& name) {
  uint32_t h = 2166136261u;
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  return h;
}

class CudaOps : public ::testing::TestWithParam<size_t> {};

TEST_P(CudaOps, MatchesCpuReference) {
  KITE_REQUIRE_GPU();
  const OpCase& c = op_table()[GetParam()];
  const DeviceContext& dev = test_device();
  if (c.skip) {
    const std::string why = c.skip(dev);
    if (!why.empty()) GTEST_SKIP() << why;
  }
  std::unique_ptr<OpRun> run = c.make(dev, seed_of(c.name()));
  run->launch(dev, nullptr);
  KITE_TEST_CUDA(cudaDeviceSynchronize());
  const OpCheck r = run->check();
  EXPECT_TRUE(r.ok) << c.name() << ": " << r.detail;
}

INSTANTIATE_TEST_SUITE_P(Table, CudaOps, ::testing::Range<size_t>(0, op_table().size()),
                         [](const ::testing::TestParamInfo<size_t>& i) {
                           return op_table()[i.param].name();
                         });

// Host only. Every op of the backend is in the table in every dtype the shapes table gives it;
// names are unique (gtest would refuse duplicates, this says which).
TEST(CudaOpTable, CoversEveryOpInEveryDtype) {
  std::set<std::string> names;
  std::map<std::string, std::set<DType>> dtypes;
  for (const OpCase& c : op_table()) {
    EXPECT_TRUE(names.insert(c.name()).second) << "duplicate case " << c.name();
    dtypes[c.op].insert(c.dtype);
  }
  const std::set<DType> both = {DType::kBF16, DType::kF32};
  for (const char* op : {"embedding", "rms_norm", "rope_kv_write", "silu_mul", "attention"}) {
    EXPECT_EQ(dtypes[op], both) << op;
  }
  EXPECT_EQ(dtypes["gemm"], (std::set<DType>{DType::kBF16, DType::kF32, DType::kF8E4M3}));
  EXPECT_EQ(dtypes["gemv"], (std::set<DType>{DType::kBF16, DType::kF8E4M3}));
  EXPECT_EQ(dtypes["quantize_fp8"], std::set<DType>{DType::kBF16});
  EXPECT_EQ(dtypes["dequantize_fp8"], std::set<DType>{DType::kF8E4M3});
  EXPECT_EQ(dtypes["flashinfer_prefill"], std::set<DType>{DType::kBF16});
  EXPECT_EQ(dtypes["argmax"], std::set<DType>{DType::kF32});
}

// Host only. The planners accept exactly what the kernels are instantiated for.
TEST(CudaShapesTable, PlannersAgreeWithTheKernelTable) {
  for (int hd = 1; hd <= 512; ++hd) {
    const Result<AttentionPath> p = attention_path(hd, 32, 8);
    if (TensorCoreHeadDims::contains(hd)) {
      ASSERT_TRUE(p.ok()) << hd;
      EXPECT_EQ(*p, AttentionPath::kTensorCore) << hd;
    } else if (generic_attention_supports(hd)) {
      ASSERT_TRUE(p.ok()) << hd;
      EXPECT_EQ(*p, AttentionPath::kGeneric) << hd;
    } else {
      EXPECT_EQ(p.status().code(), StatusCode::kUnimplemented) << hd;
    }
    EXPECT_EQ(flashinfer_prefill_supports(hd), FlashInferHeadDims::contains(hd)) << hd;
  }
  EXPECT_TRUE(attention_path(128, kPrefillMaxGroup, 1).ok());
  EXPECT_EQ(attention_path(128, 2 * kPrefillMaxGroup, 1).status().code(),
            StatusCode::kUnimplemented);
  EXPECT_TRUE(attention_path_supports(AttentionPath::kGeneric, DType::kF32));
  EXPECT_FALSE(attention_path_supports(AttentionPath::kTensorCore, DType::kF32));
  EXPECT_TRUE(attention_path_supports(AttentionPath::kTensorCore, DType::kBF16));
  // Decode groups above the decode kernel's largest go to the prefill kernel.
  const std::vector<int32_t> qsl = {0, 1}, sl = {100};
  for (int group = 1; group <= 16; ++group) {
    const AttentionPlan plan = plan_attention(qsl.data(), sl.data(), 1, 100, group, 1, 132);
    EXPECT_EQ(plan.num_decode, group <= kDecodeMaxGroup ? 1 : 0) << group;
  }
  // GEMV: every m up to kGemvMaxM, k in steps of kGemvKAlign, bf16 only.
  alignas(16) static const uint16_t buf[64] = {};
  GemvParams g;
  g.x = buf;
  g.w = buf;
  g.y = const_cast<uint16_t*>(buf);
  g.n = 4;
  g.k = kGemvKAlign;
  g.x_stride = kGemvKAlign;
  g.y_stride = 4;
  for (int m = 0; m <= kGemvMaxM + 1; ++m) {
    g.m = m;
    EXPECT_EQ(gemv_supported(g), m >= 1 && m <= kGemvMaxM) << m;
  }
  g.m = 1;
  g.k = kGemvKAlign + 1;
  EXPECT_FALSE(gemv_supported(g));
  g.k = kGemvKAlign;
  g.dtype = DType::kF32;
  EXPECT_FALSE(gemv_supported(g));
  g.dtype = DType::kBF16;
  g.out_dtype = DType::kF32;
  EXPECT_TRUE(gemv_supported(g));
  g.epilogue = GemvEpilogue::kSiluMul;
  EXPECT_FALSE(gemv_supported(g));  // the SiLU epilogue writes bf16 only
  EXPECT_TRUE(gemm_supports(DType::kBF16, DType::kF32));
  EXPECT_FALSE(gemm_supports(DType::kF32, DType::kBF16));
  EXPECT_TRUE(gemm_supports(DType::kF8E4M3, DType::kBF16));
  EXPECT_FALSE(gemm_supports(DType::kF8E4M3, DType::kF32));
  // FP8 weights: only with their scales, per row or in 128x128 blocks.
  g.epilogue = GemvEpilogue::kNone;
  g.out_dtype = DType::kBF16;
  g.w_dtype = DType::kF8E4M3;
  EXPECT_FALSE(gemv_supported(g));
  const float scale[4] = {1, 1, 1, 1};
  g.w_scale = scale;
  EXPECT_TRUE(gemv_supported(g));
  g.w_scale_block = 64;
  EXPECT_FALSE(gemv_supported(g));
  g.w_scale_block = kGemvFp8ScaleBlock;
  EXPECT_TRUE(gemv_supported(g));
}

}  // namespace
}  // namespace kite::cuda::test
