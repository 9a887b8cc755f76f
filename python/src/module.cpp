// NB_MODULE(_core): the compiled half of the `kite` package.
#include "binding.h"

NB_MODULE(_core, m) {
  m.doc() =
      "kite._core: bindings of kite's public C++ API (include/kite). Use the `kite` package "
      "(kite.LLM, kite.SamplingParams) rather than this module.";
  kite::python::bind_status(m);
  kite::python::bind_sampling(m);
  kite::python::bind_engine(m);
  kite::python::bind_batch(m);
}
