// Shared by the GPU tests (tests/gpu, ctest label `gpu`): skip with the CUDA runtime's
// reason when no device can be used.
#pragma once

#include <gtest/gtest.h>

#include "runtime/backend.h"

#define DLMEM_REQUIRE_GPU()                                                              \
  do {                                                                                   \
    const ::dlmem::runtime::CudaDeviceInfo info_ = ::dlmem::runtime::cuda_device_info(); \
    if (!info_.available) GTEST_SKIP() << "no usable CUDA device: " << info_.reason;     \
  } while (0)
