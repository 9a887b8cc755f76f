#!/usr/bin/env bash
# Installs a kite .deb into a clean Debian 12 (bookworm) chroot made with debootstrap from
# Debian's mirror, lets apt resolve its Depends there, and runs `kite generate` on the model
# shipped in the repo. Needs root and the network to the Debian mirror; takes minutes (the
# base system is cached in $KITE_CHROOT_CACHE after the first run), so it is a script, not
# part of CI (see docs/packaging.md).
#   scripts/test-deb-chroot.sh dist/kite_0.1.0_amd64.deb
#   scripts/test-deb-chroot.sh dist/kite-cuda_0.1.0_amd64.deb
# kite-cuda depends on NVIDIA's cuBLAS package, which only NVIDIA's CUDA repository has: here
# apt installs the Debian dependencies, dpkg the package, and the host's CUDA toolkit
# ($CUDA_HOME, default /usr/local/cuda) lends libcublas/libcublasLt as NVIDIA's package would
# install them; with no GPU in the chroot kite runs on the CPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deb="$(realpath "${1:?usage: scripts/test-deb-chroot.sh PACKAGE.deb}")"
mirror="${KITE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${KITE_CHROOT_CACHE:-/var/tmp/kite-bookworm-minbase.tar}"
root="$(mktemp -d /var/tmp/kite-chroot.XXXXXX)"
cleanup() {
  for m in proc dev/pts dev sys; do umount "$root/$m" 2>/dev/null || true; done
  rm -rf "$root"
}
trap cleanup EXIT
start=$SECONDS
if [ -f "$cache" ]; then
  tar -C "$root" -xf "$cache"
else
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
  tar -C "$root" -cf "$cache" .
fi
echo "test-deb-chroot: clean Debian 12 ready in $((SECONDS - start)) s"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t sysfs sys "$root/sys"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/"
cp -r tests/data/models/tinystories-656k "$root/tmp/"
step=$SECONDS
run_in() {
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    DEBIAN_FRONTEND=noninteractive "$@"
}
package="$(dpkg-deb -f "$deb" Package)"
if [ "$package" = kite-cuda ]; then
  cuda_home="${CUDA_HOME:-/usr/local/cuda}"
  debian_deps="$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | grep -v libcublas |
                 sed 's/(.*)//; s/ //g' | tr '\n' ' ')"
  run_in sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $debian_deps >/dev/null"
  run_in dpkg -i --force-depends "/tmp/$(basename "$deb")" >/dev/null
  mkdir -p "$root/usr/local/cuda/lib64"
  cp -a "$cuda_home"/lib64/libcublas*.so.* "$root/usr/local/cuda/lib64/"
  echo /usr/local/cuda/lib64 >"$root/etc/ld.so.conf.d/cuda.conf"
  run_in ldconfig
  echo "test-deb-chroot: apt installed the Debian dependencies, dpkg $(basename "$deb"), in $((SECONDS - step)) s (cuBLAS from $cuda_home)"
else
  run_in sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends /tmp/$(basename "$deb") >/dev/null"
  echo "test-deb-chroot: apt installed $(basename "$deb") and its dependencies in $((SECONDS - step)) s"
fi
chroot "$root" sh -c "ldd /usr/bin/kite | grep 'not found'" && { echo "test-deb-chroot: FAILED: missing libraries" >&2; exit 1; }
chroot "$root" dpkg-query -W -f='${Package} ${Version}\n  Depends: ${Depends}\n' "$package"
chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root kite version
out="$(chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root \
  kite generate /tmp/tinystories-656k --prompt "Once upon a time" --max-tokens 32)"
echo "$out"
[ -n "$out" ] || { echo "test-deb-chroot: FAILED: no text generated" >&2; exit 1; }
echo "test-deb-chroot: OK in $((SECONDS - start)) s"
