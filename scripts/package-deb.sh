#!/usr/bin/env bash
# Builds the Debian package of kite from a build tree: the CPU build (default, build/) or the
# CUDA build (build-cuda/, preset cuda).
#   scripts/package-deb.sh                 # cpu preset -> dist/kite_<version>_<arch>.deb
#   scripts/package-deb.sh cuda            # cuda preset -> dist/kite-cuda_<version>_<arch>.deb
# The package's Depends come from dpkg-shlibdeps (cmake/KitePackaging.cmake). Test it in a clean
# Debian 12 with scripts/test-deb-chroot.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
preset="${1:-cpu}"
jobs="${KITE_JOBS:-$(nproc)}"
cmake --preset "$preset" >/dev/null
case "$preset" in
  cpu|ci) build_dir=build ;;
  cuda) build_dir=build-cuda ;;
  cuda-ci) build_dir=build-cuda-ci ;;
  *) echo "package-deb: unknown preset $preset (cpu, ci, cuda, cuda-ci)" >&2; exit 2 ;;
esac
cmake --build "$build_dir" -j "$jobs" --target kite
mkdir -p dist
(cd "$build_dir" && cpack -G DEB -B "$PWD/../dist" >/dev/null)
rm -rf dist/_CPack_Packages
ls -1 dist/*.deb
