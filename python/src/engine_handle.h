// EngineHandle: what a kite._core.Engine Python object holds. Batches share the engine, so it
// lives until the last of them is gone even after shutdown() dropped the handle's reference.
#pragma once

#include <memory>

#include "binding.h"
#include "kite/engine.h"

namespace kite::python {

struct EngineHandle {
  std::shared_ptr<Engine> engine;  // null after shutdown()

  // The engine; raises RuntimeError after shutdown() (GIL held).
  const std::shared_ptr<Engine>& get() const;
};

}  // namespace kite::python
