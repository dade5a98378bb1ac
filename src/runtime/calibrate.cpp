#include "runtime/calibrate.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "util/error.h"

namespace dlmem::runtime {

namespace {

using clock = std::chrono::steady_clock;

double seconds_since(clock::time_point t0) { return std::chrono::duration<double>(clock::now() - t0).count(); }

// Median of `repeats` timings of f() after one untimed warm-up run.
template <typename F>
double median_seconds(int repeats, F&& f) {
  f();
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  std::sort(t.begin(), t.end());
  return std::max(t[t.size() / 2], 1e-9);
}

// Device memory owned for the duration of one measurement.
class DeviceBuffer {
 public:
  DeviceBuffer(Backend& be, Space s, uint64_t bytes) : be_(be), space_(s), p_(be.allocate(s, std::max<uint64_t>(bytes, 64))) {
    std::memset(p_, 0, bytes);
  }
  ~DeviceBuffer() { be_.deallocate(space_, p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return p_; }

 private:
  Backend& be_;
  Space space_;
  void* p_;
};

// Times one node of a single-node graph through Backend::run.
double time_node(Backend& be, ir::Graph& g, ir::NodeId id, int repeats) {
  const ir::Node& n = g.node(id);
  std::vector<std::unique_ptr<DeviceBuffer>> bufs;
  std::vector<void*> ins, outs;
  for (ir::ValueId v : n.inputs) {
    bufs.push_back(std::make_unique<DeviceBuffer>(be, Space::device, g.value(v).type.bytes()));
    ins.push_back(bufs.back()->get());
  }
  for (ir::ValueId v : n.outputs) {
    bufs.push_back(std::make_unique<DeviceBuffer>(be, Space::device, g.value(v).type.bytes()));
    outs.push_back(bufs.back()->get());
  }
  const uint64_t ws = be.workspace_bytes(g, n);
  std::unique_ptr<DeviceBuffer> scratch;
  if (ws) scratch = std::make_unique<DeviceBuffer>(be, Space::device, ws);
  const KernelArgs args{ins, outs, scratch ? scratch->get() : nullptr, 0, false};
  return median_seconds(repeats, [&] {
    be.run(g, g.node(id), args);
    be.synchronize();
  });
}

}  // namespace

Calibration calibrate(Backend& be, const CalibrationOptions& o) {
  if (o.gemm_size <= 0 || o.stream_bytes < 1024 || o.copy_bytes < 1024 || o.repeats <= 0)
    throw Error("calibration options must be positive (gemm size ", o.gemm_size, ", stream bytes ", o.stream_bytes,
                ", copy bytes ", o.copy_bytes, ", repeats ", o.repeats, ")");
  const auto t0 = clock::now();
  Calibration c;
  {
    // f32 GEMM: 2 M N K FLOPs.
    ir::Graph g;
    const int64_t s = o.gemm_size;
    auto a = g.add_value("a", {{s, s}}, ir::Role::input);
    auto b = g.add_value("b", {{s, s}}, ir::Role::input);
    auto n = g.add_node(ir::OpKind::matmul, "gemm", {}, {a, b}, ir::Role::activation);
    c.gemm_flops = 2.0 * static_cast<double>(s) * static_cast<double>(s) * static_cast<double>(s) /
                   time_node(be, g, n, o.repeats);
  }
  {
    // A streaming kernel: relu reads and writes every element once.
    ir::Graph g;
    const int64_t elems = static_cast<int64_t>(o.stream_bytes / 4);
    auto x = g.add_value("x", {{elems}}, ir::Role::input);
    auto n = g.add_node(ir::OpKind::relu, "stream", {}, {x}, ir::Role::activation);
    c.memory_bandwidth = 2.0 * static_cast<double>(elems * 4) / time_node(be, g, n, o.repeats);
    ir::Graph tiny;
    auto t = tiny.add_value("x", {{64}}, ir::Role::input);
    auto m = tiny.add_node(ir::OpKind::relu, "launch", {}, {t}, ir::Role::activation);
    c.launch_seconds = time_node(be, tiny, m, std::max(o.repeats, 1) * 40);
  }
  {
    DeviceBuffer dev(be, Space::device, o.copy_bytes), host(be, Space::host, o.copy_bytes);
    for (Stream s : {Stream::h2d, Stream::d2h}) {
      void* dst = s == Stream::h2d ? dev.get() : host.get();
      const void* src = s == Stream::h2d ? host.get() : dev.get();
      const double t = median_seconds(o.repeats, [&] {
        Event e = be.copy_async(s, dst, src, o.copy_bytes);
        be.wait_event(Stream::compute, e);
      });
      (s == Stream::h2d ? c.h2d_bandwidth : c.d2h_bandwidth) = static_cast<double>(o.copy_bytes) / t;
    }
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  c.memory_bytes = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
  c.seconds = seconds_since(t0);
  return c;
}

}  // namespace dlmem::runtime
