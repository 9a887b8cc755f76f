# Install rules and the Debian package (cpack -G DEB; scripts/package-deb.sh drives it).
#   CPU build  -> kite_<version>_<arch>.deb
#   CUDA build -> kite-cuda_<version>_<arch>.deb (Provides/Conflicts kite)
# The package holds the `kite` binary (the layers are static libraries, linked in), the Grafana
# dashboard and the README. Its Depends come from dpkg-shlibdeps (the Debian packages of the
# shared libraries kite links: Boost.JSON, fmt, spdlog, ICU, PCRE2, xxHash, libcurl, OpenSSL,
# prometheus-cpp, libstdc++); the CUDA build adds NVIDIA's cuBLAS package (from NVIDIA's CUDA
# repository for Debian 12; the CUDA runtime is linked statically) and recommends the driver.
include(GNUInstallDirs)
install(TARGETS kite RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT kite)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/grafana/kite-dashboard.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/kite/grafana COMPONENT kite)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT kite)

set(CPACK_GENERATOR DEB)
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};kite;kite;/")  # the kite component only
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "kite maintainers <kite@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "LLM inference and serving engine (OpenAI-compatible server, offline batch, benchmarks)")
set(CPACK_PACKAGE_DESCRIPTION
    "kite serves and runs Hugging Face (safetensors) and GGUF language models with a paged KV \
cache, continuous batching and prefix caching: an OpenAI-compatible HTTP API, kite chat, kite \
generate and kite bench, in one native binary.")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")  # HTTPS to the Hugging Face Hub
if(KITE_CUDA)
  set(CPACK_PACKAGE_NAME kite-cuda)
  set(CPACK_DEBIAN_PACKAGE_PROVIDES kite)
  set(CPACK_DEBIAN_PACKAGE_CONFLICTS kite)
  set(CPACK_DEBIAN_PACKAGE_REPLACES kite)
  # libcublasLt.so.<major> is NVIDIA's (not dpkg-registered here): name its package by hand.
  set(_cuda_pkg "${CUDAToolkit_VERSION_MAJOR}-${CUDAToolkit_VERSION_MINOR}")
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libcublas-${_cuda_pkg}")
  set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates, libcuda1 | cuda-drivers")
else()
  set(CPACK_PACKAGE_NAME kite)
endif()
include(CPack)
