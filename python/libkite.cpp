// libkite.so: the layer archives linked into one shared library (python/CMakeLists.txt). This
// translation unit only gives the target a source; the public API (include/kite/*.h) comes
// from the archives, and libkite.map decides what is exported.
#include "kite/engine.h"
