// Calibration: what a backend achieves on this machine -- GEMM FLOP/s, streaming
// kernel bandwidth, copy-stream bandwidth each way and the fixed cost of a kernel --
// measured through the Backend interface, so the figures are those the executor sees.
// `dlmem calibrate` turns them into the `host` device profile (sim::host_profile_from).
//
//   auto be = runtime::make_cpu_backend({.threads = 2});
//   runtime::Calibration c = runtime::calibrate(*be);
//   c.gemm_flops, c.h2d_bandwidth ...
#pragma once

#include <cstdint>

#include "runtime/backend.h"

namespace dlmem::runtime {

struct CalibrationOptions {
  int64_t gemm_size = 1024;            // M = N = K of the timed f32 GEMM
  uint64_t stream_bytes = 32ull << 20;  // bytes read (and written) by the timed elementwise kernel
  uint64_t copy_bytes = 64ull << 20;    // bytes of each timed copy
  int repeats = 5;                      // timed runs (after one warm-up); the median is kept
};

struct Calibration {
  double gemm_flops = 0;        // f32 FLOP/s
  double memory_bandwidth = 0;  // bytes read + written per second by a streaming kernel
  double h2d_bandwidth = 0;     // copy streams, bytes/s
  double d2h_bandwidth = 0;
  double launch_seconds = 0;    // a kernel on 64 elements
  uint64_t memory_bytes = 0;    // physical memory of the machine
  double seconds = 0;           // how long calibration took
};

// dlmem::Error when an option is not positive.
Calibration calibrate(Backend&, const CalibrationOptions& = {});

}  // namespace dlmem::runtime
