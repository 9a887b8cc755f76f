// Runtime values -> compile-time constants for the launchers, over the sets of
// kernel_support.h: a dtype becomes the kernel's element type, a head dim / GQA group / GEMV row
// count / epilogue becomes a template argument. A value outside the set is a KITE_CHECK failure
// naming the op, what was dispatched and the value (the planners never produce one; reaching it
// is a bug, never user input).
//
//   KITE_DISPATCH_DTYPE("rms_norm", p.dtype, ElementwiseDTypes, T, {
//     launch(rms_norm_kernel<T>, ...);
//   });
//   KITE_DISPATCH_VALUE("attention_prefill", "head_dim", p.head_dim, TensorCoreHeadDims, kHd, {
//     launch(prefill_kernel<kHd>, ...);
//   });
#pragma once

#include <cuda_bf16.h>

#include <type_traits>

#include "backend/cuda/kernel_support.h"
#include "core/check.h"

namespace kite::cuda {

// The element type a kernel instantiation uses for a DType.
template <DType kDType>
struct ElementOf;
template <>
struct ElementOf<DType::kBF16> {
  using type = __nv_bfloat16;
};
template <>
struct ElementOf<DType::kF32> {
  using type = float;
};

template <typename T>
constexpr bool kIsF32 = std::is_same_v<T, float>;

// KITE_CHECK-fails unless `value` is in the set (for kernels with a single instantiation, e.g.
// the bf16-only tensor-core attention).
template <auto... kValues, typename V>
void check_supported(const char* op, const char* what, V value, ValueSet<kValues...> set) {
  KITE_CHECK(set.contains(value)) << op << ": " << what << " " << value_name(value)
                                  << " is not supported (" << set.to_string() << ")";
}

// Calls f.operator()<v>() for the member v of the set equal to `value`.
template <auto... kValues, typename V, typename F>
void dispatch_value(const char* op, const char* what, V value, ValueSet<kValues...> set, F&& f) {
  const bool hit = ((value == kValues ? (f.template operator()<kValues>(), true) : false) || ...);
  KITE_CHECK(hit) << op << ": " << what << " " << value_name(value) << " is not supported ("
                  << set.to_string() << ")";
}

// Calls f.operator()<v>() for the smallest member v >= `value` (the set is ascending): a kernel
// instantiated for v serves every value up to it.
template <auto... kValues, typename V, typename F>
void dispatch_at_least(const char* op, const char* what, V value, ValueSet<kValues...> set, F&& f) {
  const bool hit = ((value <= kValues ? (f.template operator()<kValues>(), true) : false) || ...);
  KITE_CHECK(hit) << op << ": " << what << " " << value_name(value) << " exceeds the largest ("
                  << set.to_string() << ")";
}

// Calls f.operator()<T>() with T the element type of `dtype`, one of the set's dtypes.
template <auto... kDTypes, typename F>
void dispatch_dtype(const char* op, DType dtype, ValueSet<kDTypes...> set, F&& f) {
  dispatch_value(op, "dtype", dtype, set,
                 [&]<DType kD>() { f.template operator()<typename ElementOf<kD>::type>(); });
}

// clang-format off
// Runs the statements (__VA_ARGS__) with the type `T` the element type of DTYPE, one of SET's
// dtypes.
#define KITE_DISPATCH_DTYPE(OP, DTYPE, SET, T, ...) \
  ::kite::cuda::dispatch_dtype(OP, DTYPE, SET{}, [&]<typename T>() { __VA_ARGS__ })

// Runs the statements with the constant `NAME` equal to VALUE, one of SET's members.
#define KITE_DISPATCH_VALUE(OP, WHAT, VALUE, SET, NAME, ...) \
  ::kite::cuda::dispatch_value(OP, WHAT, VALUE, SET{}, [&]<auto NAME>() { __VA_ARGS__ })

// Runs the statements with the constant `NAME` the smallest member of SET >= VALUE.
#define KITE_DISPATCH_AT_LEAST(OP, WHAT, VALUE, SET, NAME, ...) \
  ::kite::cuda::dispatch_at_least(OP, WHAT, VALUE, SET{}, [&]<auto NAME>() { __VA_ARGS__ })
// clang-format on

}  // namespace kite::cuda
