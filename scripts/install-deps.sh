#!/usr/bin/env bash
# Installs exactly what kite's build and tests need on Debian 12: apt packages, then a Python
# venv (.venv at the repo root) with pinned test-oracle packages from PyPI. Idempotent.
#   scripts/install-deps.sh            # apt + venv
#   KITE_SKIP_APT=1 scripts/install-deps.sh   # venv only
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

apt_packages=(
  build-essential cmake ninja-build ccache pkg-config git
  clang clang-format clang-tidy lld libclang-rt-dev   # libFuzzer + sanitizers, formatting
  libboost1.81-dev libboost-json1.81-dev              # Beast, Asio, JSON
  libcli11-dev libspdlog-dev libfmt-dev
  prometheus-cpp-dev
  libpcre2-dev libicu-dev libxxhash-dev
  libcurl4-openssl-dev libssl-dev                     # Hub downloads, OTLP export, HTTPS serving
  openssl                                             # the HTTPS tests' throwaway certificates
  libgtest-dev libgmock-dev libbenchmark-dev
  openmpi-bin libopenmpi-dev                          # tensor parallelism over MPI (CPU ranks)
  python3-dev python3-venv
  chromium                                            # chat-page test (headless)
)

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

if [ "${KITE_SKIP_APT:-0}" != "1" ]; then
  missing=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: apt packages to install: ${missing[*]}"
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}"
  else
    echo "install-deps: apt packages present"
  fi
fi

python_bin="${KITE_PYTHON:-python3}"
venv="$root/.venv"
req="$root/scripts/requirements-test.txt"
stamp="$venv/.kite-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  "$python_bin" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r "$req"
  echo "$want" >"$stamp"
  echo "install-deps: venv ready at $venv"
else
  echo "install-deps: venv up to date"
fi
