#!/usr/bin/env bash
# Builds the CUDA preset and gathers everything scripts/gpu-check.sh needs on the GPU machine
# into one folder (kept under 32 MiB, so that it travels beside the repository within the device
# tool's 64 MiB): the GPU test binaries, the benchmark and model-check tools and the non-system
# shared libraries they load (found with ldd; the binaries carry an $ORIGIN/../lib rpath), as
# bin.tar.xz, plus gpu-check.sh and the transformers comparison driver.
# CUDA libraries (cudart is static; cuBLASLt) come from the GPU machine's own toolkit.
#
#   scripts/gpu-bundle.sh [OUT_DIR]        (default build-cuda/bundle)
#   KITE_CUDA_GENCODE=90a scripts/gpu-bundle.sh   # Hopper only, for a faster build
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/build-cuda/bundle}"
cd "$root"

configure=(cmake --preset cuda)
if [ -n "${KITE_CUDA_GENCODE:-}" ]; then configure+=("-DKITE_CUDA_GENCODE=${KITE_CUDA_GENCODE}"); fi
"${configure[@]}" >/dev/null
targets=(kite cuda_kernels_test cuda_ops_test cuda_runner_test cuda_nccl_test kite_cuda_bench
         kite_cuda_model_check)
known=$(cmake --build --preset cuda --target help | sed -n 's/^\([A-Za-z0-9_]*\):.*/\1/p')
present=()
for t in "${targets[@]}"; do
  if grep -qx "$t" <<<"$known"; then present+=("$t"); else echo "gpu-bundle: no target $t" >&2; fi
done
cmake --build --preset cuda -j "${KITE_JOBS:-2}" --target "${present[@]}"

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
bins=(build-cuda/bin/kite build-cuda/tests/gpu/cuda_kernels_test build-cuda/tests/gpu/cuda_ops_test
      build-cuda/tests/gpu/cuda_runner_test build-cuda/tests/gpu/cuda_nccl_test
      build-cuda/bin/kite_cuda_bench
      build-cuda/bin/kite_cuda_model_check)
for b in "${bins[@]}"; do
  [ -f "$b" ] || continue
  cp "$b" "$out/bin/"
  strip --strip-debug "$out/bin/$(basename "$b")"
done

# Shared libraries that are not part of the base system or the CUDA toolkit.
# NCCL (libnccl.so.2, 200+ MiB; kite loads it at run time) comes from the GPU machine too: its
# CUDA toolkit or the nvidia-nccl-cu13 wheel (gpu-check.sh adds the wheel's folder to
# LD_LIBRARY_PATH).
system_re='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libgcc_s\.|libstdc\+\+\.|libcuda\.|libcublas|libcudart|libnvidia|libnccl)'
for b in "${bins[@]}"; do
  [ -f "$b" ] || continue
  ldd "$b" | awk '/=>/ {print $1, $3}' | while read -r name path; do
    if [[ "$name" =~ $system_re ]] || [ ! -f "$path" ]; then continue; fi
    cp -L "$path" "$out/lib/$name"
  done
done

# Open MPI for gpu-check.sh's tp1 step (`mpirun -np 1 kite ...`) on a GPU machine that has none:
# mpirun (orterun), Open MPI's and PMIx's components, their help files and the libraries they
# load, relocated at run time by OPAL_PREFIX and PMIX_MCA_mca_base_component_path (gpu-check.sh
# sets both when it takes this copy). KITE_BUNDLE_MPI=0 leaves it out.
ompi_lib=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
pmix_lib=/usr/lib/x86_64-linux-gnu/pmix2/lib/pmix
if [ "${KITE_BUNDLE_MPI:-1}" = "1" ] && command -v mpirun >/dev/null && [ -d "$ompi_lib" ]; then
  mkdir -p "$out/mpi/bin" "$out/mpi/lib/x86_64-linux-gnu/openmpi/lib" "$out/mpi/share"
  cp -L "$(readlink -f "$(command -v mpirun)")" "$out/mpi/bin/mpirun"
  cp -rL "$ompi_lib" "$out/mpi/lib/x86_64-linux-gnu/openmpi/lib/"
  cp -rL /usr/share/openmpi "$out/mpi/share/"
  if [ -d "$pmix_lib" ]; then cp -rL "$pmix_lib" "$out/mpi/pmix"; fi
  for f in "$out/mpi/bin/mpirun" "$out/mpi"/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/*.so \
           "$out/mpi"/pmix/*.so; do
    [ -f "$f" ] || continue
    ldd "$f" | awk '/=>/ {print $1, $3}' | while read -r name path; do
      if [[ "$name" =~ $system_re ]] || [ ! -f "$path" ] || [ -f "$out/lib/$name" ]; then continue; fi
      cp -L "$path" "$out/lib/$name"
    done
  done
fi

cp tests/gpu/hf_compare.py tests/gpu/torch_attention_ref.py scripts/gpu-check.sh "$out/"
# The binaries are mostly device code, and each test binary links the same kernels: xz -9's 64 MiB
# window finds the repeats across binaries (about 40% smaller than xz's default 8 MiB window; the
# carried tree shares 64 MiB with the repository); gpu-check.sh unpacks bin.tar.xz. The test models come from the repository's
# tests/data on the GPU machine.
parts=(bin lib)
if [ -d "$out/mpi" ]; then parts+=(mpi); fi
tar -C "$out" -c "${parts[@]}" | xz -9 -T2 > "$out/bin.tar.xz"
rm -rf "${out:?}/bin" "${out:?}/lib" "${out:?}/mpi" "${out:?}/data"
size_kb=$(du -sk "$out" | cut -f1)
echo "gpu-bundle: $out ($((size_kb / 1024)) MiB): $(tar -tJf "$out/bin.tar.xz" | tr '\n' ' ')"
if [ "$size_kb" -gt $((32 * 1024)) ]; then
  echo "gpu-bundle: larger than 32 MiB; the device tool carries at most 64 MiB with the repo" >&2
  exit 1
fi
