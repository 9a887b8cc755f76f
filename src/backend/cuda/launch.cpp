#include "backend/cuda/launch.h"

#include <cstdlib>
#include <cstring>

#include "backend/cuda/cuda_check.h"

namespace kite::cuda {

namespace {
struct DeviceInfo {
  bool pdl = false;
  int sms = 1;
};

const DeviceInfo& device_info() {
  static const DeviceInfo info = [] {
    DeviceInfo d;
    int dev = 0;
    KITE_CUDA_CHECK(cudaGetDevice(&dev));
    int major = 0;
    KITE_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    KITE_CUDA_CHECK(cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, dev));
    const char* env = std::getenv("KITE_CUDA_PDL");
    d.pdl = major >= 9 && !(env != nullptr && std::strcmp(env, "0") == 0);
    return d;
  }();
  return info;
}
}  // namespace

bool pdl_enabled() { return device_info().pdl; }

int num_sms() { return device_info().sms; }

void check_launch(cudaError_t err, dim3 grid, dim3 block, size_t smem_bytes) {
  KITE_CHECK(err == cudaSuccess) << "kernel launch grid=(" << grid.x << "," << grid.y << ","
                                 << grid.z << ") block=(" << block.x << "," << block.y << ","
                                 << block.z << ") smem=" << smem_bytes << ": "
                                 << cudaGetErrorName(err) << " (" << cudaGetErrorString(err) << ")";
}

}  // namespace kite::cuda
