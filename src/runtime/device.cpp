// Choosing a backend by name: "cpu" (oneDNN, always built) or "cuda" (when built).
#include "runtime/backend.h"
#include "util/error.h"

namespace dlmem::runtime {

DeviceKind parse_device(std::string_view s) {
  if (s == "cpu") return DeviceKind::cpu;
  if (s == "cuda") return DeviceKind::cuda;
  throw Error("unknown device '", s, "'; use cpu (oneDNN kernels) or cuda (an NVIDIA GPU with cuDNN and cuBLAS)");
}

std::string_view device_name(DeviceKind k) { return k == DeviceKind::cuda ? "cuda" : "cpu"; }

std::unique_ptr<Backend> make_backend(DeviceKind k, int cpu_threads, const CudaOptions& cuda) {
  if (k == DeviceKind::cuda) return make_cuda_backend(cuda);
  return make_cpu_backend({.threads = cpu_threads});
}

}  // namespace dlmem::runtime
