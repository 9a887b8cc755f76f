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

set(_kite_gencode "")
foreach(arch IN LISTS KITE_CUDA_GENCODE)
  string(APPEND _kite_gencode " -gencode=arch=compute_${arch},code=sm_${arch}")
endforeach()
set(CMAKE_CUDA_FLAGS "${CMAKE_CUDA_FLAGS}${_kite_gencode} --expt-relaxed-constexpr -lineinfo")
if(KITE_WERROR)
  set(CMAKE_CUDA_FLAGS "${CMAKE_CUDA_FLAGS} -Werror all-warnings")
endif()
add_compile_definitions(KITE_WITH_CUDA=1)
# Binaries find their non-system shared libraries next to them (scripts/gpu-bundle.sh copies
# them to <bundle>/lib) and cuBLASLt in the GPU machine's toolkit.
list(APPEND CMAKE_BUILD_RPATH "\$ORIGIN/../lib" "${CUDAToolkit_LIBRARY_DIR}" "/usr/local/cuda/lib64")
