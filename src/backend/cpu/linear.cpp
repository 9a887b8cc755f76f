// y = x @ W^T (+ bias) on the CPU: register-blocked micro-kernels over k-chunks.
//
// Every output element is the same sum whatever m, the tile shape or the thread count:
//   y[i, j] = bias[j] + c_0 + c_1 + ...   (left to right)
// where c_t is the horizontal sum of 8-lane FMA partial sums over k-chunk t (kKc values, the
// last chunk adding its scalar tail). So a token's logits do not depend on what else is in the
// batch, and GEMV (decode) and GEMM (prefill) agree bit for bit.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/simd.h"
#include "checkpoint/dequant.h"
#include "core/check.h"
#include "core/thread_pool.h"

namespace kite::cpu {
namespace {

constexpr int kMr = 4;           // rows of x per micro-kernel
constexpr int kNr = 3;           // rows of W per micro-kernel (4 x 3 accumulators + 3 W regs)
constexpr int64_t kKc = 256;     // k-chunk: a 4 x 256 x tile and 3 x 256 W rows sit in L1
constexpr int64_t kNbGemm = 48;  // W rows per task in GEMM (multiple of kNr)
constexpr int64_t kNbGemv = 24;  // W rows per task in GEMV
constexpr int64_t kGemvMaxM = 4;

// y[r, c] += sum_{kk < kc} x[r, kk] * w[c, kk] for r < MR, c < NR (one k-chunk).
template <typename T, int MR, int NR>
void micro_kernel(const float* x, int64_t ldx, const T* w, int64_t ldw, int64_t kc, float* y,
                  int64_t ldy) {
  simd::V8 acc[MR][NR];
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < NR; ++c) acc[r][c] = simd::zero();
  }
  int64_t kk = 0;
  for (; kk + 8 <= kc; kk += 8) {
    simd::V8 wv[NR];
    for (int c = 0; c < NR; ++c) wv[c] = simd::load(w + c * ldw + kk);
    for (int r = 0; r < MR; ++r) {
      const simd::V8 xv = simd::load(x + r * ldx + kk);
      for (int c = 0; c < NR; ++c) acc[r][c] = simd::fmadd(xv, wv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < NR; ++c) {
      float s = simd::hsum(acc[r][c]);
      for (int64_t k2 = kk; k2 < kc; ++k2) s += x[r * ldx + k2] * simd::to_f32(w[c * ldw + k2]);
      y[r * ldy + c] += s;
    }
  }
}

template <typename T>
using KernelFn = void (*)(const float*, int64_t, const T*, int64_t, int64_t, float*, int64_t);

template <typename T, int MR>
constexpr KernelFn<T> pick_nr(int nr) {
  switch (nr) {
    case 1:
      return &micro_kernel<T, MR, 1>;
    case 2:
      return &micro_kernel<T, MR, 2>;
    default:
      return &micro_kernel<T, MR, 3>;
  }
}

template <typename T>
KernelFn<T> pick_kernel(int mr, int nr) {
  switch (mr) {
    case 1:
      return pick_nr<T, 1>(nr);
    case 2:
      return pick_nr<T, 2>(nr);
    case 3:
      return pick_nr<T, 3>(nr);
    default:
      return pick_nr<T, 4>(nr);
  }
}

// Computes columns [j0, j1) of y for all m rows. Loop order differs between GEMV and GEMM but
// each y element accumulates its k-chunks in increasing order either way.
template <typename T>
void linear_block(const float* x, int64_t m, int64_t ldx, const T* w, int64_t k, const float* bias,
                  float* y, int64_t ldy, int64_t j0, int64_t j1) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = j0; j < j1; ++j) y[i * ldy + j] = bias ? bias[j] : 0.0f;
  }
  if (m <= kGemvMaxM) {
    // GEMV: stream each W row tile once, all chunks.
    const int mr = static_cast<int>(m);
    for (int64_t j = j0; j < j1; j += kNr) {
      const int nr = static_cast<int>(std::min<int64_t>(kNr, j1 - j));
      const KernelFn<T> kernel = pick_kernel<T>(mr, nr);
      for (int64_t k0 = 0; k0 < k; k0 += kKc) {
        kernel(x + k0, ldx, w + j * k + k0, k, std::min(kKc, k - k0), y + j, ldy);
      }
    }
    return;
  }
  // GEMM: for each k-chunk, every x tile against every W tile of the block.
  for (int64_t k0 = 0; k0 < k; k0 += kKc) {
    const int64_t kc = std::min(kKc, k - k0);
    for (int64_t i = 0; i < m; i += kMr) {
      const int mr = static_cast<int>(std::min<int64_t>(kMr, m - i));
      for (int64_t j = j0; j < j1; j += kNr) {
        const int nr = static_cast<int>(std::min<int64_t>(kNr, j1 - j));
        pick_kernel<T>(mr, nr)(x + i * ldx + k0, ldx, w + j * k + k0, k, kc, y + i * ldy + j, ldy);
      }
    }
  }
}

// Q8_0 GEMV micro-kernel: y[r, c] += sum_{kk < kc} x[r, kk] * w[c, k0 + kk] for W rows stored
// as Q8_0 blocks (34 bytes: F16 scale d, 32 int8 q; row c starts at w + c * row_bytes). Each
// group of 8 weights is dequantized in registers to d * q (one F32 multiply, exactly what
// dequantize_row stores) and fed to the same FMA sequence as micro_kernel over an F32 panel,
// so the result equals linear_panel's bit for bit without writing the panel to memory.
// REQUIRES: k0 and kc multiples of 32.
template <int MR, int NR>
void q8_0_kernel(const float* x, int64_t ldx, const uint8_t* w, int64_t row_bytes, int64_t k0,
                 int64_t kc, float* y, int64_t ldy) {
  constexpr int64_t kBlock = 32, kBlockBytes = 34;
  simd::V8 acc[MR][NR];
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < NR; ++c) acc[r][c] = simd::zero();
  }
  for (int64_t kk = 0; kk < kc; kk += kBlock) {
    simd::V8 d[NR];
    const int8_t* q[NR];
    for (int c = 0; c < NR; ++c) {
      const uint8_t* block = w + c * row_bytes + (k0 + kk) / kBlock * kBlockBytes;
      uint16_t scale;
      std::memcpy(&scale, block, 2);
      d[c] = simd::set1(simd::f16_scalar(scale));
      q[c] = reinterpret_cast<const int8_t*>(block + 2);
    }
    for (int64_t g = 0; g < kBlock; g += 8) {
      simd::V8 wv[NR];
      for (int c = 0; c < NR; ++c) wv[c] = simd::mul(d[c], simd::load(q[c] + g));
      for (int r = 0; r < MR; ++r) {
        const simd::V8 xv = simd::load(x + r * ldx + kk + g);
        for (int c = 0; c < NR; ++c) acc[r][c] = simd::fmadd(xv, wv[c], acc[r][c]);
      }
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < NR; ++c) y[r * ldy + c] += simd::hsum(acc[r][c]);
  }
}

using Q8KernelFn = void (*)(const float*, int64_t, const uint8_t*, int64_t, int64_t, int64_t,
                            float*, int64_t);

template <int MR>
Q8KernelFn pick_q8_nr(int nr) {
  switch (nr) {
    case 1:
      return &q8_0_kernel<MR, 1>;
    case 2:
      return &q8_0_kernel<MR, 2>;
    default:
      return &q8_0_kernel<MR, 3>;
  }
}

Q8KernelFn pick_q8_kernel(int mr, int nr) {
  switch (mr) {
    case 1:
      return pick_q8_nr<1>(nr);
    case 2:
      return pick_q8_nr<2>(nr);
    case 3:
      return pick_q8_nr<3>(nr);
    default:
      return pick_q8_nr<4>(nr);
  }
}

// GEMV (m <= kGemvMaxM) over Q8_0 weights, in the chunk order of linear_panel.
void linear_q8_0_gemv(const float* x, int64_t m, int64_t ldx, const TensorView& w,
                      const float* bias, float* y, int64_t ldy, ThreadPool* pool) {
  const int64_t n = w.dim(0);
  const int64_t k = w.dim(1);
  const int64_t row_bytes = w.row_bytes();
  const auto* wbytes = static_cast<const uint8_t*>(w.data);
  const int64_t num_blocks = (n + kNbGemv - 1) / kNbGemv;
  const int mr = static_cast<int>(m);
  auto run = [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t j0 = b * kNbGemv;
      const int64_t j1 = std::min(n, j0 + kNbGemv);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = j0; j < j1; ++j) y[i * ldy + j] = bias ? bias[j] : 0.0f;
      }
      for (int64_t j = j0; j < j1; j += kNr) {
        const Q8KernelFn kernel =
            pick_q8_kernel(mr, static_cast<int>(std::min<int64_t>(kNr, j1 - j)));
        for (int64_t k0 = 0; k0 < k; k0 += kKc) {
          kernel(x + k0, ldx, wbytes + j * row_bytes, row_bytes, k0, std::min(kKc, k - k0), y + j,
                 ldy);
        }
      }
    }
  };
  const int64_t block_work = kNbGemv * m * k;
  if (pool == nullptr || num_blocks * block_work <= (1 << 16)) {
    run(0, num_blocks);
    return;
  }
  pool->parallel_for(num_blocks, run, std::max<int64_t>(1, (1 << 16) / block_work));
}

template <typename T>
void linear_typed(const float* x, int64_t m, int64_t ldx, const T* w, int64_t n, int64_t k,
                  const float* bias, float* y, int64_t ldy, ThreadPool* pool) {
  const int64_t nb = m <= kGemvMaxM ? kNbGemv : kNbGemm;
  const int64_t num_blocks = (n + nb - 1) / nb;
  auto run = [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      linear_block(x, m, ldx, w, k, bias, y, ldy, b * nb, std::min(n, (b + 1) * nb));
    }
  };
  // Each block is nb * m * k multiply-adds; give a thread at least ~64K of them.
  const int64_t block_work = nb * m * k;
  if (pool == nullptr || num_blocks * block_work <= (1 << 16)) {
    run(0, num_blocks);
    return;
  }
  pool->parallel_for(num_blocks, run, std::max<int64_t>(1, (1 << 16) / block_work));
}

// Converts n values of one W row chunk to F32 (vectorised for F16/BF16).
void to_f32_panel(DType dtype, const uint8_t* src, float* dst, int64_t n) {
  if (dtype == DType::kBF16 || dtype == DType::kF16) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      simd::store(dst + i, dtype == DType::kBF16
                               ? simd::load(reinterpret_cast<const bf16_t*>(src) + i)
                               : simd::load(reinterpret_cast<const f16_t*>(src) + i));
    }
    if (i < n) dequantize_row(dtype, src + 2 * i, dst + i, n - i);
    return;
  }
  dequantize_row(dtype, src, dst, n);
}

// W stored as anything but F32 in a GEMM (quantized GGUF blocks always; F16/BF16 when m is
// large enough that converting W once beats converting it per x tile): each k-chunk of a
// block's W rows is converted into an F32 panel once and fed to the F32 kernels, so the
// result equals linear() over the converted matrix bit for bit, while the weights stay in
// their dtype in memory.
void linear_panel(const float* x, int64_t m, int64_t ldx, const TensorView& w, const float* bias,
                  float* y, int64_t ldy, ThreadPool* pool) {
  const int64_t n = w.dim(0);
  const int64_t k = w.dim(1);
  const int64_t row_bytes = w.row_bytes();
  const auto* wbytes = static_cast<const uint8_t*>(w.data);
  const int64_t nb = m <= kGemvMaxM ? kNbGemv : kNbGemm;
  const int64_t num_blocks = (n + nb - 1) / nb;
  auto run = [&](int64_t b0, int64_t b1) {
    std::vector<float> panel(static_cast<size_t>(nb * kKc));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t j0 = b * nb;
      const int64_t j1 = std::min(n, j0 + nb);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = j0; j < j1; ++j) y[i * ldy + j] = bias ? bias[j] : 0.0f;
      }
      for (int64_t k0 = 0; k0 < k; k0 += kKc) {
        const int64_t kc = std::min(kKc, k - k0);
        const int64_t chunk_offset = dtype_bytes(w.dtype, k0);
        for (int64_t j = j0; j < j1; ++j) {
          to_f32_panel(w.dtype, wbytes + j * row_bytes + chunk_offset,
                       panel.data() + (j - j0) * kKc, kc);
        }
        for (int64_t i = 0; i < m; i += kMr) {
          const int mr = static_cast<int>(std::min<int64_t>(kMr, m - i));
          for (int64_t j = j0; j < j1; j += kNr) {
            const int nr = static_cast<int>(std::min<int64_t>(kNr, j1 - j));
            pick_kernel<float>(mr, nr)(x + i * ldx + k0, ldx, panel.data() + (j - j0) * kKc, kKc,
                                       kc, y + i * ldy + j, ldy);
          }
        }
      }
    }
  };
  const int64_t block_work = nb * m * k;
  if (pool == nullptr || num_blocks * block_work <= (1 << 16)) {
    run(0, num_blocks);
    return;
  }
  pool->parallel_for(num_blocks, run, std::max<int64_t>(1, (1 << 16) / block_work));
}

}  // namespace

void linear(const float* x, int64_t m, int64_t ldx, const TensorView& w, const float* bias,
            float* y, int64_t ldy, ThreadPool* pool) {
  KITE_CHECK_EQ(w.ndim, 2);
  KITE_CHECK(w.is_contiguous()) << w.to_string();
  const int64_t n = w.dim(0);
  const int64_t k = w.dim(1);
  KITE_CHECK_GE(ldx, k);
  KITE_CHECK_GE(ldy, n);
  if (m <= 0) return;
  switch (w.dtype) {
    case DType::kF32:
      linear_typed(x, m, ldx, w.as<float>(), n, k, bias, y, ldy, pool);
      break;
    case DType::kF16:
      if (m > kGemvMaxM) {
        linear_panel(x, m, ldx, w, bias, y, ldy, pool);
      } else {
        linear_typed(x, m, ldx, w.as<f16_t>(), n, k, bias, y, ldy, pool);
      }
      break;
    case DType::kBF16:
      if (m > kGemvMaxM) {
        linear_panel(x, m, ldx, w, bias, y, ldy, pool);
      } else {
        linear_typed(x, m, ldx, w.as<bf16_t>(), n, k, bias, y, ldy, pool);
      }
      break;
    case DType::kQ8_0:
      if (m <= kGemvMaxM) {
        linear_q8_0_gemv(x, m, ldx, w, bias, y, ldy, pool);
      } else {
        linear_panel(x, m, ldx, w, bias, y, ldy, pool);
      }
      break;
    default:
      KITE_CHECK(can_dequantize(w.dtype)) << "linear weight dtype " << dtype_name(w.dtype);
      linear_panel(x, m, ldx, w, bias, y, ldy, pool);
  }
}

}  // namespace kite::cpu
