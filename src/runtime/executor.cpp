#include "runtime/executor.h"

#include <cmath>

#include <chrono>
#include <cstring>

#include "codec/codec.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::runtime {

using plan::BufferId;
using plan::InstrKind;

std::string_view allocator_name(AllocatorKind k) { return k == AllocatorKind::pool ? "pool" : "static"; }

AllocatorKind parse_allocator(std::string_view s) {
  if (s == "static") return AllocatorKind::planned;
  if (s == "pool") return AllocatorKind::pool;
  throw Error("unknown allocator '", s, "'; use static (the plan's offsets) or pool (a caching pool allocator)");
}

Executor::Executor(const ir::Graph& g, const plan::Plan& p, Backend& be, ExecOptions opt)
    : g_(g), plan_(p), be_(be), opt_(opt) {
  if (p.placement.empty()) throw Error("the plan is not placed: run a placement pass before executing it");
  stats_.capacity = opt.capacity ? opt.capacity : (p.budget ? p.budget : p.device_arena);
  if (opt.allocator == AllocatorKind::pool) {
    // The pool ignores the placement; no allocator fits in less than the peak of
    // resident bytes, and fragmentation may need more (the pool then says so).
    if (p.stats.peak_device > stats_.capacity)
      throw OutOfMemory("out of memory: the plan (", p.policy, ") keeps up to ", human_bytes(p.stats.peak_device),
                        " resident on the device but the device has ", human_bytes(stats_.capacity),
                        "; give it at least that much, or use a policy that saves memory");
    pool_ = std::make_unique<PoolAllocator>(stats_.capacity);
    pool_offset_.assign(p.buffers.size(), -1);
  } else if (p.device_arena > stats_.capacity) {
    throw OutOfMemory("out of memory: the plan (", p.policy, ") needs ", human_bytes(p.device_arena),
                      " of device memory (peak resident ", human_bytes(p.stats.peak_device), ") but the device has ",
                      human_bytes(stats_.capacity), "; use a budget of at least ", human_bytes(p.device_arena),
                      " or a policy that saves memory (--policy share, recompute:..., swap:...)");
  }
  device_ = be_.allocate(Space::device, std::max<uint64_t>(stats_.capacity, 1));
  host_ = p.host_arena ? be_.allocate(Space::host, p.host_arena) : nullptr;
  resident_.assign(p.buffers.size(), false);
  real_bytes_.assign(p.buffers.size(), 0);
  encoded_size_.assign(p.buffers.size(), 0);
  codecs_.assign(p.program.size(), nullptr);
  for (size_t i = 0; i < p.program.size(); ++i) {
    const plan::Instr& in = p.program[i];
    const bool coded = in.kind == InstrKind::compress || in.kind == InstrKind::decompress;
    if (in.codec.empty() && !coded) continue;
    if (!coded && in.kind != InstrKind::swap_out && in.kind != InstrKind::swap_in)
      throw Error("instruction ", i, " (", plan::instr_name(in.kind), ") of the plan names codec '", in.codec,
                  "'; only compress, decompress and swaps take one");
    const codec::Codec& c = codec::get(in.codec);  // dlmem::Error for an unknown name
    const plan::Buffer& src = p.buffers[static_cast<size_t>(in.inputs.at(0))];
    const plan::Buffer& dst = p.buffers[static_cast<size_t>(in.outputs.at(0))];
    const plan::Buffer& raw = in.kind == InstrKind::compress || in.kind == InstrKind::swap_out ? src : dst;
    const ir::TensorType& t = g.value(raw.value).type;
    DLMEM_CHECK(t.dtype == ir::DType::f32, "instruction ", i, " encodes ", t.str(), "; codecs take f32");
    DLMEM_CHECK(raw.bytes >= t.bytes() && (&raw == &dst || dst.bytes >= c.bound(static_cast<uint64_t>(t.numel()))),
                "instruction ", i, ": buffer sizes do not fit codec ", c.name());
    codecs_[i] = &c;
  }
  for (const plan::Buffer& b : p.buffers)
    if (b.preloaded && b.begin < b.end) {
      make_resident(b.id);
      // Weights and state start defined (zero) even before the caller writes them.
      be_.fill_bytes(b.space, ptr(b.id), 0, b.bytes);  // device memory: not addressable from here on a GPU
    }
  stats_.peak_device = stats_.live_device;
  stats_.peak_by_role = live_by_role_;
  stats_.peak_device_real = live_real_;
}

Executor::~Executor() {
  be_.synchronize();
  if (device_) be_.deallocate(Space::device, device_);
  if (host_) be_.deallocate(Space::host, host_);
}

void* Executor::ptr(BufferId id) const {
  const plan::Buffer& b = plan_.buffers[static_cast<size_t>(id)];
  if (pool_ && b.space == Space::device) {
    const int64_t off = pool_offset_[static_cast<size_t>(id)];
    DLMEM_CHECK(off >= 0, "buffer ", id, " has no block in the pool");
    return static_cast<char*>(device_) + off;
  }
  DLMEM_CHECK(b.offset >= 0, "buffer ", id, " is not placed");
  char* base = static_cast<char*>(b.space == Space::device ? device_ : host_);
  return base + b.offset;
}

void Executor::make_resident(BufferId id, bool count_real) {
  if (resident_[static_cast<size_t>(id)]) return;
  const plan::Buffer& b = plan_.buffers[static_cast<size_t>(id)];
  if (pool_ && b.space == Space::device) {
    uint64_t off = 0;
    pool_->process_pending([&](Stream s) { return be_.query(last_copy_[static_cast<size_t>(s)]); });
    if (!pool_->try_allocate(b.bytes, Stream::compute, off)) {
      // Blocks still read by copies come back once the copies are done.
      be_.synchronize();
      pool_->process_pending([](Stream) { return true; });
      off = pool_->allocate(b.bytes, Stream::compute);  // OutOfMemory says what is live
    }
    pool_offset_[static_cast<size_t>(id)] = static_cast<int64_t>(off);
  }
  resident_[static_cast<size_t>(id)] = true;
  if (b.space != Space::device) return;
  stats_.live_device += b.bytes;
  live_by_role_[static_cast<size_t>(b.role)] += b.bytes;
  // A GPU has a fixed capacity: so does this arena (placement is validated, this
  // is the last line of defence).
  DLMEM_CHECK(pool_ || static_cast<uint64_t>(b.offset) + b.bytes <= stats_.capacity, "buffer ", id,
              " lies outside the arena");
  if (stats_.live_device > stats_.peak_device) {
    stats_.peak_device = stats_.live_device;
    stats_.peak_by_role = live_by_role_;
  }
  if (count_real) add_real(id, b.bytes);
}

void Executor::add_real(BufferId id, uint64_t bytes) {
  real_bytes_[static_cast<size_t>(id)] += bytes;
  live_real_ += bytes;
  stats_.peak_device_real = std::max(stats_.peak_device_real, live_real_);
}

void Executor::release(BufferId id) {
  DLMEM_CHECK(resident_[static_cast<size_t>(id)], "freeing buffer ", id, " which is not resident");
  const plan::Buffer& b = plan_.buffers[static_cast<size_t>(id)];
  resident_[static_cast<size_t>(id)] = false;
  if (opt_.poison_freed) be_.fill_bytes(b.space, ptr(id), 0xFF, b.bytes);
  if (b.space != Space::device) return;
  if (pool_) {
    pool_->free(static_cast<uint64_t>(pool_offset_[static_cast<size_t>(id)]));
    pool_offset_[static_cast<size_t>(id)] = -1;
  }
  stats_.live_device -= b.bytes;
  live_by_role_[static_cast<size_t>(b.role)] -= b.bytes;
  live_real_ -= real_bytes_[static_cast<size_t>(id)];
  real_bytes_[static_cast<size_t>(id)] = 0;
}

void Executor::run_codec(size_t i, const plan::Instr& in) {
  const codec::Codec& c = *codecs_[i];
  const BufferId src = in.inputs.at(0), dst = in.outputs.at(0);
  DLMEM_CHECK(resident_[static_cast<size_t>(src)], "instruction ", i, " reads buffer ", src, " which is not resident");
  const bool encode = in.kind == InstrKind::compress || in.kind == InstrKind::swap_out;
  const ir::ValueId v = plan_.buffers[static_cast<size_t>(encode ? src : dst)].value;
  const uint64_t n = static_cast<uint64_t>(g_.value(v).type.numel());
  if (encode) {
    make_resident(dst, /*count_real=*/false);
    const uint64_t size = be_.encode(c, static_cast<const float*>(ptr(src)), n, ptr(dst));  // device kernels on a GPU
    encoded_size_[static_cast<size_t>(dst)] = size;
    if (plan_.buffers[static_cast<size_t>(dst)].space == Space::device) add_real(dst, size);
    stats_.encoded_raw += 4 * n;
    stats_.encoded_bound += c.bound(n);
    stats_.encoded_real += size;
    if (in.kind == InstrKind::swap_out) stats_.bytes_to_host += size;
  } else {
    make_resident(dst);
    const uint64_t size = encoded_size_[static_cast<size_t>(src)];
    be_.decode(c, ptr(src), size, n, static_cast<float*>(ptr(dst)));
    if (in.kind == InstrKind::swap_in) stats_.bytes_to_device += size;
  }
}

void Executor::check_outputs_finite(const ir::Node& node, const plan::Instr& in, uint64_t step) {
  be_.synchronize();
  for (size_t k = 0; k < node.outputs.size() && k < in.outputs.size(); ++k) {
    const ir::Value& v = g_.value(node.outputs[k]);
    if (v.type.dtype != ir::DType::f32) continue;
    std::vector<float> host(static_cast<size_t>(v.type.numel()));
    be_.download(host.data(), ptr(in.outputs[k]), host.size() * sizeof(float));
    for (size_t j = 0; j < host.size(); ++j)
      if (!std::isfinite(host[j]))
        throw Error("step ", step, ": node '", node.name, "' (", ir::op_name(node.op), ") wrote ", host[j],
                    " to element ", j, " of '", v.name, "', the first non-finite value of the step (a learning rate "
                    "too large, or bad inputs?)");
  }
}

void Executor::run_step(uint64_t step) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const size_t n = plan_.program.size();
  std::vector<Event> events(n);
  if (opt_.time_instructions) stats_.instr_seconds.assign(n, 0.0);
  stats_.encoded_raw = stats_.encoded_bound = stats_.encoded_real = 0;
  // Inputs and labels are (re)loaded by the caller before each step. Kept outputs
  // (the loss, the logits) of the previous step are not: the plan counts them from
  // the instruction that produces them again, and static placement may lend their
  // memory to what runs before that -- so they stop being resident here, as planned.
  for (const plan::Buffer& b : plan_.buffers) {
    if (b.preloaded && b.begin < b.end) make_resident(b.id);
    if (!b.preloaded && b.persistent && resident_[static_cast<size_t>(b.id)]) release(b.id);
  }

  std::vector<void*> ins, outs;
  for (size_t i = 0; i < n; ++i) {
    const plan::Instr& in = plan_.program[i];
    for (int w : in.waits) be_.wait_event(in.stream, events[static_cast<size_t>(w)]);
    const auto ti = clock::now();
    switch (in.kind) {
      case InstrKind::compute: {
        const ir::Node& node = g_.node(in.node);
        ins.clear();
        outs.clear();
        for (BufferId b : in.inputs) {
          DLMEM_CHECK(resident_[static_cast<size_t>(b)], "node ", node.name, " reads buffer ", b, " which is not resident");
          ins.push_back(ptr(b));
        }
        for (BufferId b : in.outputs) {
          make_resident(b);
          outs.push_back(ptr(b));
        }
        void* ws = nullptr;
        if (in.workspace != plan::kNoBuffer) {
          make_resident(in.workspace);
          ws = ptr(in.workspace);
        }
        be_.run(g_, node, KernelArgs{ins, outs, ws, step, in.recompute});
        if (opt_.check_finite) check_outputs_finite(node, in, step);
        break;
      }
      case InstrKind::free: release(in.buffer); break;
      case InstrKind::swap_out:
      case InstrKind::swap_in: {
        if (codecs_[i]) {
          // cDMA: the copy moves the encoding. It runs here, after the copy streams
          // drain, so that stream order still holds for whoever waits on it.
          be_.synchronize();
          run_codec(i, in);
          break;
        }
        const BufferId src = in.inputs.at(0), dst = in.outputs.at(0);
        DLMEM_CHECK(resident_[static_cast<size_t>(src)], "copy from buffer ", src, " which is not resident");
        // A swapped stash encoding (plan/compress, Note [Swapping encoded stashes]) keeps
        // its encoded size, which its decoding needs, and counts it as its real bytes.
        const uint64_t encoded = encoded_size_[static_cast<size_t>(src)];
        encoded_size_[static_cast<size_t>(dst)] = encoded;
        make_resident(dst, /*count_real=*/encoded == 0);
        if (encoded && plan_.buffers[static_cast<size_t>(dst)].space == Space::device) add_real(dst, encoded);
        const uint64_t bytes = plan_.buffers[static_cast<size_t>(src)].bytes;
        if (pool_)  // Note [Streams] (pool_allocator.h): the copy stream uses both blocks too
          for (BufferId b : {src, dst})
            if (plan_.buffers[static_cast<size_t>(b)].space == Space::device)
              pool_->record_stream(static_cast<uint64_t>(pool_offset_[static_cast<size_t>(b)]), in.stream);
        events[i] = be_.copy_async(in.stream, ptr(dst), ptr(src), bytes);
        last_copy_[static_cast<size_t>(in.stream)] = events[i];
        (in.kind == InstrKind::swap_out ? stats_.bytes_to_host : stats_.bytes_to_device) += bytes;
        break;
      }
      case InstrKind::compress:
      case InstrKind::decompress:
        run_codec(i, in);
        break;
    }
    if (opt_.time_instructions)
      stats_.instr_seconds[i] = std::chrono::duration<double>(clock::now() - ti).count();
  }
  be_.synchronize();
  if (pool_) {
    pool_->process_pending([](Stream) { return true; });
    // Inputs and labels need memory before the caller writes the next batch.
    for (const plan::Buffer& b : plan_.buffers)
      if (b.preloaded && b.begin < b.end) make_resident(b.id);
  }
  stats_.steps++;
  stats_.last_step_seconds = std::chrono::duration<double>(clock::now() - t0).count();
}

void Executor::reset_peak() {
  stats_.peak_device = stats_.live_device;
  stats_.peak_by_role = live_by_role_;
  stats_.peak_device_real = live_real_;
}

void Executor::check_addressable(ir::ValueId v, BufferId b) const {
  if (b == plan::kNoBuffer) throw Error("value '", g_.value(v).name, "' is not bound in the plan");
  if (pool_ && plan_.buffers[static_cast<size_t>(b)].space == Space::device && !resident_[static_cast<size_t>(b)])
    throw Error("value '", g_.value(v).name, "' has no device memory now: with the pool allocator a buffer exists ",
                "only while it is resident (read kept outputs after a step; use --allocator static to read others)");
}

void Executor::write(ir::ValueId v, std::span<const std::byte> data) {
  const BufferId b = plan_.buffer_of(v);
  check_addressable(v, b);
  const uint64_t bytes = g_.value(v).type.bytes();
  if (data.size() != bytes)
    throw Error("value '", g_.value(v).name, "' (", g_.value(v).type.str(), ") takes ", bytes, " bytes, got ", data.size());
  be_.upload(ptr(b), data.data(), bytes);
}

void Executor::read(ir::ValueId v, std::span<std::byte> out) const {
  const BufferId b = plan_.buffer_of(v);
  check_addressable(v, b);
  const uint64_t bytes = g_.value(v).type.bytes();
  if (out.size() != bytes)
    throw Error("value '", g_.value(v).name, "' takes ", bytes, " bytes, the destination has ", out.size());
  be_.download(out.data(), ptr(b), bytes);
}

std::vector<float> Executor::read_f32(ir::ValueId v) const {
  std::vector<float> out(static_cast<size_t>(g_.value(v).type.numel()));
  read(v, std::as_writable_bytes(std::span<float>(out)));
  return out;
}

}  // namespace dlmem::runtime
