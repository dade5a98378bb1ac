// Private to src/runtime/cpu: what cpu::Context holds -- the oneDNN engine and stream,
// the primitive cache (Note [Primitive cache] in kernels.h) and the fallback scratch
// buffer -- and the small helpers the kernels share.
//
//   auto& p = ctx.impl().get(make_key("eltwise_fwd", n), [&] { return cached<...>(pd); });
//   ctx.impl().execute(p, {{DNNL_ARG_SRC, ctx.impl().wrap(md, x)}, ...}, /*scratch=*/nullptr);
#pragma once

#include <cstddef>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "runtime/cpu/kernels.h"
#include "util/error.h"

namespace dlmem::cpu {

// A cached oneDNN primitive with the descriptors its execution needs besides the
// user's tensors.
struct CachedPrimitive {
  dnnl::primitive prim;
  dnnl::memory::desc scratch_md;    // zero-size when the primitive needs none
  dnnl::memory::desc workspace_md;  // zero-size except for max pooling (training)
  size_t scratch_bytes() const { return scratch_md.get_size(); }
};

// Builds the cache entry from a primitive descriptor of primitive type P.
template <typename P, typename PD>
CachedPrimitive cached(const PD& pd) {
  return CachedPrimitive{P(pd), pd.scratchpad_desc(), pd.workspace_desc()};
}

// The attributes every dlmem primitive is created with: Note [Scratchpad].
inline dnnl::primitive_attr user_scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// A user's mistake (kernels.h: a label or id out of range, an impossible shape):
// std::invalid_argument whose message names the value and what would be valid.
template <typename... Args>
std::invalid_argument invalid_input(const Args&... args) {
  return std::invalid_argument(detail::concat("cpu kernels: ", args...));
}

// Cache key: the operation name and its parameters, comma-separated.
template <typename... Args>
std::string make_key(const char* op, const Args&... args) {
  std::string key(op);
  ((key += ',', key += std::to_string(args)), ...);
  return key;
}
inline void append_dims(std::string& key, int rank, const int64_t* dims) {
  key += ",[";
  for (int i = 0; i < rank; ++i) key += (i ? "x" : "") + std::to_string(dims[i]);
  key += ']';
}

// Row-major (dense, last dimension fastest) f32 descriptor of any rank.
dnnl::memory::desc plain_md(const dnnl::memory::dims& dims,
                            dnnl::memory::data_type dt = dnnl::memory::data_type::f32);

struct Context::Impl {
  explicit Impl(int threads);

  // Re-applies the thread count on the calling thread (the OpenMP setting is per
  // thread, and a Context may be created on one thread and used on another): oneDNN
  // sizes its per-thread temporaries at primitive creation, so creation and execution
  // must see the same count.
  void bind_threads() const;

  // The cached primitive under `key`, created with `make()` on first use. oneDNN
  // refusing a descriptor is a dlmem bug (shapes are validated before), reported as
  // an InternalError naming the key.
  template <typename Make>
  const CachedPrimitive& get(const std::string& key, Make&& make) {
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    try {
      return cache.emplace(key, make()).first->second;
    } catch (const dnnl::error& e) {
      throw InternalError(detail::concat("oneDNN rejected primitive ", key, ": ", e.what()));
    }
  }

  // Wraps a caller's buffer (no copy). oneDNN takes non-const handles; inputs are
  // never written through them.
  dnnl::memory wrap(const dnnl::memory::desc& md, const void* p) const {
    return dnnl::memory(md, engine, const_cast<void*>(p));
  }

  // Executes `p` with `args` plus the scratchpad: `scratch` is the caller's buffer
  // of p.scratch_bytes() (kernels with a *_scratch_bytes query), or, when
  // `use_internal` is set, the Context's own buffer (kernels without a query).
  void execute(const CachedPrimitive& p, std::unordered_map<int, dnnl::memory> args, void* scratch,
               bool use_internal = false);

  int threads;  // as given to Context: 0 = the OpenMP default
  dnnl::engine engine;
  dnnl::stream stream;
  std::unordered_map<std::string, CachedPrimitive> cache;

 private:
  // Fallback scratchpad for the kernels without a *_scratch_bytes query (eltwise,
  // binary, softmax, reorder, concat): grown on demand, 64-byte aligned. Those
  // primitives use none for the plain layouts dlmem passes, so it normally stays empty.
  struct FreeDeleter {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte, FreeDeleter> internal_scratch_;
  size_t internal_scratch_bytes_ = 0;
};

// Every kernel starts here: the Context's thread count must be in effect before a
// primitive is created or an OpenMP loop runs.
inline Context::Impl& enter(Context& ctx) {
  Context::Impl& im = ctx.impl();
  im.bind_threads();
  return im;
}

}  // namespace dlmem::cpu
