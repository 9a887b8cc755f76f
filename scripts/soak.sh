#!/usr/bin/env bash
# Soak test of `kite serve` on the CPU (tests/e2e/soak.py says what it does and checks):
#   scripts/soak.sh                      30 minutes (the figures in docs/serving.md)
#   scripts/soak.sh --minutes 2          the length CI runs (tests/e2e/test_soak.py)
#   scripts/soak.sh --json soak.json     also writes the summary as JSON
# KITE_BIN picks the binary (default build/bin/kite). Exit status 1 when a check failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec .venv/bin/python tests/e2e/soak.py "$@"
