// Built instead of the cuda backend when dlmem is configured without CUDA
// (-DDLMEM_CUDA=OFF, or no nvcc found): the entry points exist and say why they
// cannot work.
#include "runtime/backend.h"
#include "util/error.h"

namespace dlmem::runtime {

namespace {
constexpr const char* kNoCuda = "this dlmem was built without CUDA (configure with nvcc available, -DDLMEM_CUDA=ON)";
}

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions&) { throw Error(kNoCuda); }

CudaDeviceInfo cuda_device_info(int) {
  CudaDeviceInfo info;
  info.reason = kNoCuda;
  return info;
}

}  // namespace dlmem::runtime
