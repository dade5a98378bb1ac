// The executor interprets a Plan on a Backend. It allocates the device arena once, of
// exactly the capacity (the plan's budget, or its arena when it has none), so a plan
// that does not fit is an out-of-memory error, as on a GPU; it places every buffer at
// its planned offset (or, with ExecOptions::allocator = pool, in a block of a pooled
// allocator over the same arena) and keeps its own accounting of resident bytes, which
// tests compare against the plan's prediction.
//
//   runtime::Executor ex(graph, plan, *backend);
//   ex.write(graph.find("input"), images);      // bound values: inputs, weights, ...
//   ex.run_step(step);
//   float loss = ex.read_f32(graph.loss)[0];
//   ex.stats().peak_device                      // measured, == plan.stats.peak_device
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "analysis/memory.h"
#include "plan/plan.h"
#include "runtime/backend.h"
#include "runtime/pool_allocator.h"

namespace dlmem::codec {
class Codec;
}

namespace dlmem::runtime {

// Where device buffers live. `planned` ("static"): at the offsets the plan's placement
// gave them. `pool`: the planned offsets are ignored; each buffer gets a block of a
// PoolAllocator over the arena when it becomes resident and gives it back at its Free
// -- execution without a static placement, as a framework's caching allocator runs.
enum class AllocatorKind : uint8_t { planned, pool };
std::string_view allocator_name(AllocatorKind);  // "static", "pool"
// dlmem::Error naming the known allocators for anything else.
AllocatorKind parse_allocator(std::string_view);

struct ExecOptions {
  uint64_t capacity = 0;        // device arena bytes; 0: plan.budget, else plan.device_arena
  bool poison_freed = false;    // fill freed buffers with NaN bytes (tests: catches reads of dead memory)
  bool time_instructions = false;
  // After each compute instruction, check its float outputs for NaN and infinity: the
  // first node that makes one is an Error naming it and the step (--check-finite).
  bool check_finite = false;
  AllocatorKind allocator = AllocatorKind::planned;
};

struct ExecStats {
  uint64_t capacity = 0;
  uint64_t live_device = 0;
  uint64_t peak_device = 0;            // max resident device bytes over all steps
  analysis::RoleBytes peak_by_role{};  // at that peak
  uint64_t steps = 0;
  double last_step_seconds = 0;
  std::vector<double> instr_seconds;   // last step, per instruction (when timed)
  uint64_t bytes_to_host = 0, bytes_to_device = 0;
  // Encodings (compress instructions and swaps with a codec), summed over the last
  // step: the tensors' raw bytes, what the plan reserved (codec bounds) and what the
  // encodings really took (Note [Encoded sizes in plans], plan/compress/compress.h).
  uint64_t encoded_raw = 0, encoded_bound = 0, encoded_real = 0;
  // Max resident device bytes with each encoded buffer at its real size (what an
  // exactly-sized allocation would need); <= peak_device.
  uint64_t peak_device_real = 0;
};

class Executor {
 public:
  Executor(const ir::Graph&, const plan::Plan&, Backend&, ExecOptions = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs the program once. `step` numbers the training step (dropout, Adam).
  void run_step(uint64_t step);

  // Values bound by the plan (inputs, labels, weights, optimizer state, kept outputs).
  // dlmem::Error if the value is not bound or the size differs.
  void write(ir::ValueId, std::span<const std::byte> data);
  void read(ir::ValueId, std::span<std::byte> out) const;
  void write_f32(ir::ValueId v, std::span<const float> d) { write(v, std::as_bytes(d)); }
  std::vector<float> read_f32(ir::ValueId) const;
  bool is_bound(ir::ValueId v) const { return plan_.buffer_of(v) != plan::kNoBuffer; }

  const ExecStats& stats() const { return stats_; }
  // The pool (AllocatorKind::pool), nullptr otherwise: its statistics and snapshot.
  const PoolAllocator* pool() const { return pool_.get(); }
  void reset_peak();
  const plan::Plan& plan() const { return plan_; }
  const ir::Graph& graph() const { return g_; }

 private:
  void* ptr(plan::BufferId) const;
  // dlmem::Error unless value `v` (bound to `b`) has memory the caller may access.
  void check_addressable(ir::ValueId v, plan::BufferId b) const;
  // `count_real`: false for an encoding's destination, counted at its real size later.
  void make_resident(plan::BufferId, bool count_real = true);
  void check_outputs_finite(const ir::Node&, const plan::Instr&, uint64_t step);
  void release(plan::BufferId);
  void add_real(plan::BufferId, uint64_t bytes);
  // Compress / decompress, and swaps with a codec: synchronous, on the calling thread.
  void run_codec(size_t instr, const plan::Instr&);

  const ir::Graph& g_;
  const plan::Plan& plan_;
  Backend& be_;
  ExecOptions opt_;
  void* device_ = nullptr;
  void* host_ = nullptr;
  std::unique_ptr<PoolAllocator> pool_;
  std::vector<int64_t> pool_offset_;  // pool: per buffer, its block's offset (-1: none)
  Event last_copy_[3] = {};           // per stream: the last copy queued on it
  std::vector<bool> resident_;
  analysis::RoleBytes live_by_role_{};
  ExecStats stats_;
  std::vector<const codec::Codec*> codecs_;  // per instruction: its codec, or nullptr
  std::vector<uint64_t> encoded_size_;       // per buffer: bytes of the encoding it holds
  std::vector<uint64_t> real_bytes_;         // per device buffer: bytes counted in live_real_
  uint64_t live_real_ = 0;
};

}  // namespace dlmem::runtime
