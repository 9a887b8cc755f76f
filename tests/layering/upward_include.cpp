// Must NOT compile: the scheduler layer includes the engine, which is above it. The layering
// test builds this with kite_scheduler's include directories and expects the missing header.
#include "engine/engine_core.h"
