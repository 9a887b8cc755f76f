# CUDA backend: Hopper first (sm_90a, for wgmma/TMA), plus sm_80 and sm_89.
# KITE_CUDA_GENCODE can narrow this for quick iteration (e.g. "90a").
set(KITE_CUDA_GENCODE "90a;80;89" CACHE STRING "CUDA targets (compute capability, 'a' suffix allowed)")
set(CMAKE_CUDA_ARCHITECTURES OFF)
if(NOT CMAKE_CUDA_COMPILER)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
# CMake 3.25 does not know nvcc's C++20 flag (nvcc 12+ has it): teach it, after the compiler
# checks, so CUDA sources follow CMAKE_CXX_STANDARD like C++ ones.
if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
endif()
set(CMAKE_CUDA_STANDARD 20)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_EXTENSIONS OFF)

# The targets go in the directory's compile options (not CMAKE_CUDA_FLAGS) so that a target can
# replace them: FlashInfer's prefill is built for sm_90a alone (src/backend/cuda/CMakeLists.txt).
foreach(arch IN LISTS KITE_CUDA_GENCODE)
  add_compile_options("$<$<COMPILE_LANGUAGE:CUDA>:SHELL:-gencode=arch=compute_${arch},code=sm_${arch}>")
endforeach()
set(CMAKE_CUDA_FLAGS "${CMAKE_CUDA_FLAGS} --expt-relaxed-constexpr -lineinfo")
if(KITE_WERROR)
  set(CMAKE_CUDA_FLAGS "${CMAKE_CUDA_FLAGS} -Werror all-warnings")
endif()
# KITE_WITH_CUDA=1 is set only on the targets that branch on it (the runner seam in kite_executor,
# the CUDA backend, the kite binary), so every other layer compiles exactly as in the CPU presets
# and ccache (CCACHE_BASEDIR) shares those objects between build/ and build-cuda/.
# Binaries find their non-system shared libraries next to them (scripts/gpu-bundle.sh copies
# them to <bundle>/lib) and cuBLASLt in the GPU machine's toolkit.
list(APPEND CMAKE_BUILD_RPATH "\$ORIGIN/../lib" "${CUDAToolkit_LIBRARY_DIR}" "/usr/local/cuda/lib64")
