#!/usr/bin/env bash
# Fetches the C++ core of xgrammar (the grammar engine behind structured outputs, src/structured/)
# from the pinned `xgrammar` source distribution on PyPI into DEST (default .deps/xgrammar),
# checking its sha256, and prints the source directory CMake builds from:
#
#   cmake --preset ci -DKITE_XGRAMMAR_SOURCE_DIR=$(scripts/fetch-xgrammar.sh)
#
# CMake runs this itself at configure time when KITE_XGRAMMAR_SOURCE_DIR is not given. The sdist
# carries everything the core needs: cpp/*.cc, include/xgrammar/*.h and its two third-party
# header-only pieces, 3rdparty/picojson and 3rdparty/dlpack. Only those are extracted; the
# Python bindings (cpp/tvm_ffi, python/) are not used. Needs python3 -m pip (PyPI reachable).
set -euo pipefail
version=0.2.9
sha256=87b466bca2475e29bb0323abc62c6c33cbcbcff47e5fb800a3e2099ac9620b90
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$root/.deps/xgrammar}"
src="$dest/$version"
if [ -f "$src/.kite-complete" ]; then
  echo "$src"
  exit 0
fi
python="${KITE_FETCH_PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# --no-binary=xgrammar: the source archive, not a wheel; pip still prepares its metadata with
# binary build dependencies (scikit-build-core, setuptools-scm), which takes seconds.
"$python" -m pip download --quiet --no-deps --no-binary=xgrammar -d "$tmp" \
  "xgrammar==$version" >&2
sdist="$tmp/xgrammar-$version.tar.gz"
echo "$sha256  $sdist" | sha256sum -c --quiet - >&2
top="xgrammar-$version"
tar -xzf "$sdist" -C "$tmp" "$top/cpp" "$top/include" "$top/3rdparty/picojson" \
  "$top/3rdparty/dlpack/include" "$top/LICENSE" "$top/NOTICE"
rm -rf "$src"
mkdir -p "$dest"
mv "$tmp/$top" "$src"
touch "$src/.kite-complete"
echo "$src"
