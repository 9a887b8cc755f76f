// Must compile with the same flags as upward_include.cpp: the scheduler's own headers and those
// of the layers it declares (runtime, kv_cache, core).
#include "kv_cache/kv_cache_manager.h"
#include "runtime/model_step_output.h"
#include "scheduler/scheduler.h"
