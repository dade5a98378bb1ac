// cpu::Context: oneDNN engine (cpu, index 0), one stream, the primitive cache.
#include <omp.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "runtime/cpu/context_impl.h"

namespace dlmem::cpu {

dnnl::memory::desc plain_md(const dnnl::memory::dims& dims, dnnl::memory::data_type dt) {
  dnnl::memory::dims strides(dims.size());
  int64_t stride = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= dims[i];
  }
  return dnnl::memory::desc(dims, dt, strides);
}

Context::Impl::Impl(int threads_)
    : threads(threads_), engine(dnnl::engine::kind::cpu, 0), stream(engine) {
  bind_threads();
}

void Context::Impl::bind_threads() const {
  if (threads > 0 && omp_get_max_threads() != threads) omp_set_num_threads(threads);
}

void Context::Impl::FreeDeleter::operator()(std::byte* p) const { std::free(p); }

void Context::Impl::execute(const CachedPrimitive& p, std::unordered_map<int, dnnl::memory> args,
                            void* scratch, bool use_internal) {
  const size_t bytes = p.scratch_bytes();
  if (bytes > 0) {
    if (use_internal) {
      if (internal_scratch_bytes_ < bytes) {
        const size_t rounded = (bytes + 63) / 64 * 64;
        internal_scratch_.reset(static_cast<std::byte*>(std::aligned_alloc(64, rounded)));
        DLMEM_CHECK(internal_scratch_ != nullptr, "cannot allocate ", rounded,
                    " bytes of internal scratchpad");
        internal_scratch_bytes_ = rounded;
      }
      scratch = internal_scratch_.get();
    }
    DLMEM_CHECK(scratch != nullptr, "the primitive needs ", bytes,
                " bytes of scratchpad but none was passed (ask *_scratch_bytes)");
    args.emplace(DNNL_ARG_SCRATCHPAD, wrap(p.scratch_md, scratch));
  }
  p.prim.execute(stream, args);
  stream.wait();
}

Context::Context(int threads) {
  if (threads < 0)
    throw std::invalid_argument(
        "cpu::Context: threads must be 0 (the OpenMP default) or "
        "positive, got " +
        std::to_string(threads));
  impl_ = std::make_unique<Impl>(threads);
}

Context::~Context() = default;

int Context::threads() const { return impl_->threads > 0 ? impl_->threads : omp_get_max_threads(); }

Context::Impl& Context::impl() { return *impl_; }

}  // namespace dlmem::cpu
