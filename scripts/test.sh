#!/usr/bin/env bash
# Builds kite (warnings as errors) and runs every CPU test:
#   1. ctest  — C++ unit, conformance and end-to-end tests (label "gpu" excluded)
#   2. ctest  — short libFuzzer runs of the parsers (clang build, fuzz preset)
#   3. pytest — Python tests (server with the openai client, Python package, oracles)
# Usage: scripts/test.sh            (installs dependencies first; idempotent)
#        KITE_SKIP_DEPS=1 scripts/test.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
jobs="${KITE_JOBS:-$(nproc)}"

if [ "${KITE_SKIP_DEPS:-0}" != "1" ]; then
  scripts/install-deps.sh || exit 1
fi

status=0
cmake --preset ci >/dev/null && cmake --build --preset ci -j "$jobs" || exit 1
echo "=== ctest (unit, conformance, e2e) ==="
ctest --preset ci -j "$jobs" || status=1

if [ -f tests/fuzz/CMakeLists.txt ]; then
  echo "=== ctest (fuzz smoke runs) ==="
  if cmake --preset fuzz >/dev/null && cmake --build --preset fuzz -j "$jobs" --target kite_fuzzers; then
    ctest --preset fuzz -j "$jobs" || status=1
  else
    status=1
  fi
fi

if find tests -name 'test_*.py' | grep -q .; then
  echo "=== pytest ==="
  KITE_BIN="$PWD/build/bin/kite" .venv/bin/python -m pytest -q || status=1
fi
exit $status
