// kite._core: the nanobind binding of the public C++ API (include/kite/*.h). Thin by design:
// the vLLM-shaped API lives in python/kite/*.py. Only public headers are included here, so the
// module builds against a prebuilt libkite.so and include/kite alone.
#pragma once

#include <nanobind/nanobind.h>

#include "kite/status.h"

namespace kite::python {

namespace nb = nanobind;

// Raises the Python exception for a non-OK Status, carrying its message unchanged:
//   kInvalidArgument, kOutOfRange -> ValueError
//   kUnimplemented                -> NotImplementedError
//   kNotFound                     -> FileNotFoundError (a missing model or file)
//   anything else                 -> kite.EngineError (a RuntimeError) with .code, e.g.
//                                    "resource_exhausted"
// Must be called with the GIL held.
[[noreturn]] void raise_status(const Status& status);

// Returns the value of a Result or raises its Status (GIL held).
template <typename T>
T value_or_raise(Result<T> result) {
  if (!result.ok()) raise_status(result.status());
  return std::move(result).value();
}

void bind_status(nb::module_& m);
void bind_sampling(nb::module_& m);
void bind_engine(nb::module_& m);
void bind_batch(nb::module_& m);

}  // namespace kite::python
