// The FP8 KV cache's write on the GPU (rope_kv_write with kv_fp8) against the CPU emulation
// (cpu::quantize_kv_fp8, backend/cpu/ops.h): every cached byte is e4m3(v / scale) of the value
// the kernel left in its qkv row (k, rotated) or read from it (v), exactly — round to nearest
// even, saturation at +-448 included — in both compute dtypes, on awkward token counts, block
// sizes and head dims, with skipped slots left untouched. (The attention kernels' FP8 reads are
// in attention_test.cpp, the GEMV epilogue's FP8 write in kernels_test.cpp.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cuda/rope.h"
#include "core/dtype.h"
#include "gpu_test_util.h"

namespace kite::cuda::test {
namespace {

struct Fp8WriteCase {
  int num_tokens, nq, nkv, head_dim, block_size;
  bool qk_norm;
  DType dtype;
  float k_scale, v_scale;
};

TEST(CudaKvFp8, RopeKvWriteStoresTheCpuEmulationsBytes) {
  KITE_REQUIRE_GPU();
  const Fp8WriteCase cases[] = {
      {1, 32, 8, 128, 16, false, DType::kBF16, 1.f, 1.f},
      {17, 28, 4, 128, 16, true, DType::kBF16, 0.37f, 2.5f},
      {1000, 32, 8, 64, 32, false, DType::kBF16, 0.004f, 0.004f},  // many saturate
      {3, 16, 4, 256, 5, true, DType::kBF16, 3.f, 0.125f},
      {129, 8, 4, 16, 16, false, DType::kF32, 0.37f, 2.5f},
      {4, 8, 4, 8, 8, true, DType::kF32, 0.01f, 1.f},
  };
  std::mt19937 rng(17);
  for (const Fp8WriteCase& c : cases) {
    SCOPED_TRACE("tokens " + std::to_string(c.num_tokens) + " hd " + std::to_string(c.head_dim) +
                 " " + std::string(dtype_name(c.dtype)));
    const bool f32 = c.dtype == DType::kF32;
    ModelConfig cfg;
    cfg.head_dim = c.head_dim;
    cfg.rope_theta = 10000.0;
    const int T = c.num_tokens, hd = c.head_dim;
    const int qkv_dim = (c.nq + 2 * c.nkv) * hd, kv_dim = c.nkv * hd;
    const auto qkv_bits = random_bf16(static_cast<size_t>(T) * qkv_dim, rng, -3.f, 3.f);
    const auto qn = random_bf16(hd, rng, 0.5f, 1.5f), kn = random_bf16(hd, rng, 0.5f, 1.5f);
    std::vector<int32_t> pos(T), slots(T);
    const int num_blocks = (T + c.block_size - 1) / c.block_size + 3;
    std::vector<int32_t> perm(static_cast<size_t>(num_blocks) * c.block_size);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int t = 0; t < T; ++t) {
      pos[t] = static_cast<int32_t>(rng() % 20000);
      slots[t] = (t % 5 == 4) ? -1 : perm[t];
    }
    const size_t cache_elems = static_cast<size_t>(num_blocks) * c.block_size * kv_dim;
    // The qkv rows and norm weights in the compute dtype (f32: the bf16 values widened).
    const std::vector<float> qkv_f = to_float(qkv_bits), qn_f = to_float(qn), kn_f = to_float(kn);
    DeviceArray<uint16_t> d_qkv16(qkv_bits), d_qn16(qn), d_kn16(kn);
    DeviceArray<float> d_qkv32(qkv_f), d_qn32(qn_f), d_kn32(kn_f);
    DeviceArray<uint8_t> d_kc(std::vector<uint8_t>(cache_elems, 0xff)),
        d_vc(std::vector<uint8_t>(cache_elems, 0xff));
    DeviceArray<int32_t> d_pos(pos), d_slots(slots);
    DeviceArray<float> d_inv(rope_inv_freq(cfg));
    DeviceArray<double> d_inv64(rope_inv_freq64(cfg));
    RopeKvWriteParams p;
    p.qkv = f32 ? static_cast<void*>(d_qkv32.get()) : static_cast<void*>(d_qkv16.get());
    p.qkv_stride = qkv_dim;
    p.positions = d_pos.get();
    p.slot_mapping = d_slots.get();
    p.inv_freq = d_inv.get();
    p.inv_freq64 = d_inv64.get();
    if (c.qk_norm) {
      p.q_norm = f32 ? static_cast<void*>(d_qn32.get()) : static_cast<void*>(d_qn16.get());
      p.k_norm = f32 ? static_cast<void*>(d_kn32.get()) : static_cast<void*>(d_kn16.get());
    }
    p.k_cache = d_kc.get();
    p.v_cache = d_vc.get();
    p.num_tokens = T;
    p.num_q_heads = c.nq;
    p.num_kv_heads = c.nkv;
    p.head_dim = hd;
    p.block_size = c.block_size;
    p.eps = 1e-6f;
    p.dtype = c.dtype;
    p.kv_fp8 = true;
    p.k_scale = c.k_scale;
    p.v_scale = c.v_scale;
    rope_kv_write(p, test_device(), nullptr);

    // The row after the kernel: k rotated (and normed), v as it was.
    const std::vector<float> row = f32 ? d_qkv32.download() : to_float(d_qkv16.download());
    const auto kc = d_kc.download(), vc = d_vc.download();
    size_t written = 0, saturated = 0;
    for (int t = 0; t < T; ++t) {
      if (slots[t] < 0) continue;
      const int64_t s = slots[t], blk = s / c.block_size, off = s % c.block_size;
      for (int h = 0; h < c.nkv; ++h) {
        for (int d = 0; d < hd; ++d) {
          const int64_t mine = ((blk * c.nkv + h) * c.block_size + off) * hd + d;
          const int64_t r = static_cast<int64_t>(t) * qkv_dim;
          const float k = row[r + (c.nq + h) * hd + d];
          const float v = row[r + (c.nq + c.nkv + h) * hd + d];
          ASSERT_EQ(v, qkv_f[r + (c.nq + c.nkv + h) * hd + d]) << "v is not modified";
          EXPECT_EQ(kc[mine], cpu::quantize_kv_fp8(k, c.k_scale))
              << "k " << t << " " << h << " " << d;
          EXPECT_EQ(vc[mine], cpu::quantize_kv_fp8(v, c.v_scale))
              << "v " << t << " " << h << " " << d;
          saturated += (vc[mine] & 0x7f) == 0x7e ? 1 : 0;
          ++written;
        }
      }
    }
    if (c.v_scale < 0.01f) {
      EXPECT_GT(saturated, 0u) << "the case meant to saturate did not";
    }
    size_t untouched = 0;
    for (uint8_t b : vc) untouched += b == 0xff ? 1 : 0;
    EXPECT_EQ(untouched, cache_elems - written);
  }
}

}  // namespace
}  // namespace kite::cuda::test
