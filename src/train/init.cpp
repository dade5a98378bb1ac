#include "train/init.h"

#include <cmath>
#include <random>

#include "ir/parallel.h"
#include "util/error.h"

namespace dlmem::train {

namespace {
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}
// Uniform in [0, 1) from the top 53 bits.
double unit(std::mt19937_64& r) { return static_cast<double>(r() >> 11) * 0x1.0p-53; }
}  // namespace

std::vector<float> init_values(const ir::Value& v, uint64_t seed) {
  if (v.shard) {
    // A rank's shard (ir/parallel.h): its slice of the whole tensor's initial values.
    ir::Value whole = v;
    whole.type.shape = v.shard->full;
    whole.shard.reset();
    return ir::take_shard(init_values(whole, seed), *v.shard);
  }
  std::vector<float> out(static_cast<size_t>(v.type.numel()), 0.0f);
  std::mt19937_64 rng(seed ^ fnv1a(v.name));
  switch (v.init.kind) {
    case ir::Init::Kind::none:
    case ir::Init::Kind::zeros: break;
    case ir::Init::Kind::ones: std::fill(out.begin(), out.end(), 1.0f); break;
    case ir::Init::Kind::given:
      DLMEM_CHECK(v.init.values && v.init.values->size() == out.size(), "weight ", v.name, " has ",
                  v.init.values ? v.init.values->size() : 0, " given values for ", v.type.str());
      std::copy(v.init.values->begin(), v.init.values->end(), out.begin());
      break;
    case ir::Init::Kind::uniform:
      for (float& x : out) x = static_cast<float>(v.init.a + (v.init.b - v.init.a) * unit(rng));
      break;
    case ir::Init::Kind::normal:
      // Box-Muller, two values per pair of uniforms.
      for (size_t i = 0; i < out.size(); i += 2) {
        const double u1 = 1.0 - unit(rng), u2 = unit(rng);
        const double r = std::sqrt(-2.0 * std::log(u1));
        out[i] = static_cast<float>(v.init.a + v.init.b * r * std::cos(2 * M_PI * u2));
        if (i + 1 < out.size()) out[i + 1] = static_cast<float>(v.init.a + v.init.b * r * std::sin(2 * M_PI * u2));
      }
      break;
  }
  return out;
}

void init_weights(runtime::Executor& ex, const ir::Graph& g, uint64_t seed) {
  for (const ir::Value& v : g.values()) {
    if (v.role != ir::Role::weight && v.role != ir::Role::optimizer_state) continue;
    if (!ex.is_bound(v.id) || v.type.dtype != ir::DType::f32) continue;
    ex.write_f32(v.id, init_values(v, seed));
  }
}

}  // namespace dlmem::train
