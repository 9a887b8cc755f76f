// Device half of the FlashInfer prefill path (see flashinfer_prefill.h). Compiled against
// FlashInfer's headers only when KITE_HAVE_FLASHINFER is defined (CMake option
// KITE_FLASHINFER_INCLUDE); otherwise the path reports itself unavailable.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_context.h"
#include "backend/cuda/flashinfer_prefill.h"
#include "backend/cuda/kernel_support.h"
#include "core/check.h"

#ifdef KITE_HAVE_FLASHINFER
#include <flashinfer/attention/hopper/variants.cuh>
#include <flashinfer/attention/mask.cuh>
#include <flashinfer/cutlass_utils.cuh>

namespace kite::cuda {
namespace {

using FiDType = cutlass::bfloat16_t;

// The parameter block FlashInfer's sm90 paged prefill reads (the fields its
// BatchPrefillWithPagedKVCacheDispatched template accesses; shapes as in our layout).
struct FiPagedParams {
  using DTypeQ = FiDType;
  using DTypeKV = FiDType;
  using DTypeO = FiDType;
  using IdType = int32_t;
  DTypeQ* q_ptr;   // token t, q head h at q_ptr + t * q_stride_n + h * q_stride_h
  DTypeKV* k_ptr;  // [num_blocks, num_kv_heads, block_size, head_dim] (HND pages)
  DTypeKV* v_ptr;
  DTypeO* o_ptr;            // [num_tokens, num_q_heads, head_dim]
  float* lse_ptr;           // unused (nullptr)
  IdType* qo_tile_indices;  // [num_works] and the following: the plan's arrays
  IdType* qo_indptr;
  IdType* kv_indptr;
  IdType* kv_indices;  // our block_table (CSR block ids)
  IdType* qo_lens;
  IdType* kv_lens;
  IdType* head_indices;
  IdType* work_indptr;  // [num_ctas + 1]
  IdType* batch_indices;
  struct AdditionalParams {
    float* maybe_scale_v;
    double logits_soft_cap;
    double sm_scale;
    double scale_v_scalar;
  } additional_params;
  int64_t q_stride_n, k_stride_n, v_stride_n, o_stride_n;
  int64_t q_stride_h, k_stride_h, v_stride_h, o_stride_h;
  int64_t nnz_qo;
  int64_t k_page_stride, v_page_stride;  // elements between blocks
  int head_dim;
  int num_qo_heads;
  int num_kv_heads;
  int group_size;
  int page_size;
  int window_left;  // -1 = no window
  bool causal;
};

}  // namespace
}  // namespace kite::cuda

#include <flashinfer/attention/hopper/prefill_sm90.cuh>

namespace kite::cuda {

bool flashinfer_prefill_available(const DeviceContext& dev) {
  return dev.cc_major() == kFlashInferCcMajor;  // the kernels are built for sm_90a only
}

void flashinfer_prefill(const AttentionParams& p, const int32_t* work_device, int num_ctas,
                        int num_works, const DeviceContext& dev, cudaStream_t stream) {
  KITE_CHECK(p.dtype == DType::kBF16 && flashinfer_prefill_supports(p.head_dim))
      << "flashinfer_prefill: dtype " << dtype_name(p.dtype) << " head_dim " << p.head_dim
      << " is not supported (bf16, head_dim " << FlashInferHeadDims::to_string() << ")";
  // Built without logit soft-capping: CudaModelRunner::create keeps soft-capping models off it.
  KITE_CHECK(p.softcap == 0.f) << "flashinfer_prefill: logit soft-capping is not supported";
  KITE_CHECK(num_ctas == dev.num_sms()) << "flashinfer plan was made for " << num_ctas << " CTAs";
  if (num_works == 0) return;
  FiPagedParams f{};
  auto* w = const_cast<int32_t*>(work_device);
  const size_t n = num_works;
  f.work_indptr = w;
  f.qo_tile_indices = w + num_ctas + 1;
  f.qo_indptr = f.qo_tile_indices + n;
  f.kv_indptr = f.qo_indptr + n;
  f.qo_lens = f.kv_indptr + n;
  f.kv_lens = f.qo_lens + n;
  f.head_indices = f.kv_lens + n;
  f.batch_indices = f.head_indices + n;
  f.q_ptr = static_cast<FiDType*>(const_cast<void*>(p.q));
  f.k_ptr = static_cast<FiDType*>(const_cast<void*>(p.k_cache));
  f.v_ptr = static_cast<FiDType*>(const_cast<void*>(p.v_cache));
  f.o_ptr = static_cast<FiDType*>(p.out);
  f.lse_ptr = nullptr;
  f.kv_indices = const_cast<int32_t*>(p.block_table);
  f.additional_params.maybe_scale_v = nullptr;
  f.additional_params.logits_soft_cap = 0.0;
  f.additional_params.sm_scale = p.scale;
  f.additional_params.scale_v_scalar = 1.0;
  f.q_stride_n = p.q_stride;
  f.q_stride_h = p.head_dim;
  f.o_stride_n = static_cast<int64_t>(p.num_q_heads) * p.head_dim;
  f.o_stride_h = p.head_dim;
  f.k_stride_n = f.v_stride_n = p.head_dim;
  f.k_stride_h = f.v_stride_h = static_cast<int64_t>(p.block_size) * p.head_dim;
  f.k_page_stride = f.v_page_stride = f.k_stride_h * p.num_kv_heads;
  f.nnz_qo = p.num_tokens;
  f.head_dim = p.head_dim;
  f.num_qo_heads = p.num_q_heads;
  f.num_kv_heads = p.num_kv_heads;
  f.group_size = p.num_q_heads / p.num_kv_heads;
  f.page_size = p.block_size;
  f.window_left = p.sliding_window > 0 ? p.sliding_window - 1 : -1;
  f.causal = true;
  using Variant = flashinfer::DefaultAttention</*use_logits_soft_cap=*/false>;
  constexpr auto kCausal = flashinfer::MaskMode::kCausal;
  cudaError_t err = cudaSuccess;
  const bool window = p.sliding_window > 0;
  switch (p.head_dim * 2 + (window ? 1 : 0)) {
    case 128:
      err = flashinfer::BatchPrefillWithPagedKVCacheDispatched<64, 64, kCausal, false, false,
                                                               Variant>(f, false, stream);
      break;
    case 129:
      err =
          flashinfer::BatchPrefillWithPagedKVCacheDispatched<64, 64, kCausal, true, false, Variant>(
              f, false, stream);
      break;
    case 256:
      err = flashinfer::BatchPrefillWithPagedKVCacheDispatched<128, 128, kCausal, false, false,
                                                               Variant>(f, false, stream);
      break;
    case 257:
      err = flashinfer::BatchPrefillWithPagedKVCacheDispatched<128, 128, kCausal, true, false,
                                                               Variant>(f, false, stream);
      break;
    default:
      KITE_CHECK(false) << "flashinfer prefill: head_dim " << p.head_dim;
  }
  KITE_CUDA_CHECK(err);
}

}  // namespace kite::cuda

#else  // !KITE_HAVE_FLASHINFER

namespace kite::cuda {

bool flashinfer_prefill_available(const DeviceContext&) { return false; }

void flashinfer_prefill(const AttentionParams&, const int32_t*, int, int, const DeviceContext&,
                        cudaStream_t) {
  KITE_CHECK(false) << "flashinfer prefill: this build has no FlashInfer (KITE_FLASHINFER_INCLUDE)";
}

}  // namespace kite::cuda

#endif  // KITE_HAVE_FLASHINFER
