#include "codec/codec.h"

#include <array>
#include <atomic>

#include "codec/detail.h"
#include "util/error.h"

namespace dlmem::codec {

namespace detail {

namespace {

bool cpu_has_avx2() {
#if DLMEM_CODEC_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt") &&
         __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

std::atomic<bool>& simd_enabled() {
  static std::atomic<bool> on{cpu_has_avx2()};
  return on;
}

}  // namespace

bool use_avx2() { return simd_enabled().load(std::memory_order_relaxed); }
void set_simd(bool enabled) { simd_enabled().store(enabled && cpu_has_avx2()); }

}  // namespace detail

std::string_view preserves_name(Preserves p) {
  static constexpr std::array<std::string_view, 3> names = {"exact", "sign", "approximate"};
  return names[static_cast<size_t>(p)];
}

namespace {

struct Registry {
  std::vector<std::unique_ptr<Codec>> owned;
  std::vector<const Codec*> list;
  Registry() {
    owned.push_back(detail::make_bitmask());
    owned.push_back(detail::make_sparse());
    owned.push_back(detail::make_zvc());
    owned.push_back(detail::make_fp16());
    owned.push_back(detail::make_bf16());
    owned.push_back(detail::make_fp8_e4m3());
    owned.push_back(detail::make_zstd());
    owned.push_back(detail::make_lz4());
    for (const auto& c : owned) list.push_back(c.get());
  }
};

const Registry& registry() {
  static const Registry r;
  return r;
}

}  // namespace

const std::vector<const Codec*>& all() { return registry().list; }

const Codec* find(std::string_view name) {
  for (const Codec* c : all())
    if (c->name() == name) return c;
  return nullptr;
}

std::string names() {
  std::string s;
  for (const Codec* c : all()) s += (s.empty() ? "" : ", ") + std::string(c->name());
  return s;
}

const Codec& get(std::string_view name) {
  if (const Codec* c = find(name)) return *c;
  throw Error("unknown codec '", name, "'; known codecs: ", names());
}

}  // namespace dlmem::codec
