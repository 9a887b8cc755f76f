#!/usr/bin/env bash
# Builds `kite` with a sanitizer and runs the server's e2e load and fault tests against it; any
# sanitizer report fails the run (the server exits non-zero on the first report, which the tests'
# clean-exit checks see, and the logs are searched for reports as well).
#   asan — AddressSanitizer + UndefinedBehaviorSanitizer, LeakSanitizer at exit (build-asan/)
#   tsan — ThreadSanitizer (build-tsan/)
# Usage: scripts/sanitize.sh asan|tsan [extra pytest args]
#        KITE_JOBS=2 scripts/sanitize.sh tsan -k load
# Prints the build and test times. Suppressions live in tests/sanitizers/<kind>.supp, each with
# its reason.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
kind="${1:-}"
case "$kind" in
  asan|tsan) shift ;;
  *) echo "usage: $0 asan|tsan [pytest args]" >&2; exit 2 ;;
esac
jobs="${KITE_JOBS:-$(nproc)}"
supp="$PWD/tests/sanitizers/$kind.supp"
logs="$(mktemp -d "${TMPDIR:-/tmp}/kite-$kind.XXXXXX")"

start=$SECONDS
cmake --preset "$kind" >/dev/null && cmake --build --preset "$kind" -j "$jobs" --target kite || exit 1
build_s=$((SECONDS - start))

# halt_on_error + exitcode: the first report ends the server with a non-zero status, which every
# test that stops its server checks. log_path keeps each process' report in $logs as well.
if [ "$kind" = asan ]; then
  export ASAN_OPTIONS="halt_on_error=1:exitcode=86:detect_leaks=1:abort_on_error=0:log_path=$logs/asan:suppressions=$supp"
  export UBSAN_OPTIONS="halt_on_error=1:exitcode=86:print_stacktrace=1:log_path=$logs/ubsan"
  export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp"
else
  export TSAN_OPTIONS="halt_on_error=1:exitcode=86:second_deadlock_stack=1:log_path=$logs/tsan:suppressions=$supp"
fi

tests=(tests/e2e/test_serve_load.py tests/e2e/test_serve_hardening.py
       tests/e2e/test_serve_errors.py tests/e2e/test_serve_lifecycle.py)
start=$SECONDS
KITE_BIN="$PWD/build-$kind/bin/kite" KITE_SANITIZER="$kind" \
  .venv/bin/python -m pytest -q "${tests[@]}" "$@"
status=$?
test_s=$((SECONDS - start))

reports=$(find "$logs" -type f -size +0 | wc -l)
if [ "$reports" -ne 0 ]; then
  echo "=== $kind reports ($logs) ==="
  for f in "$logs"/*; do [ -s "$f" ] && { echo "--- $f"; head -60 "$f"; }; done
  status=1
fi
echo "$kind: build ${build_s} s, tests ${test_s} s, ${reports} sanitizer report(s), status $status"
exit $status
