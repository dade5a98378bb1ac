// Data parallelism (issue 19), planned and simulated: per-rank memory of ZeRO 0-3 for
// ResNet-50, BERT-large and GPT-2 medium at N = 2, 8 and 64 ranks (the plan's peak by
// role on an H100 profile, Adam), the simulated step on NVLink 4 and on 400 Gb/s
// InfiniBand against one rank's step without collectives (weak scaling efficiency:
// the same per-rank batch), and, per model, the largest global batch whose rank fits
// 80 GB at N = 8 under ZeRO 3 and auto. One JSON line per row; every figure is a ratio
// to its reference computed in the same run. Collectives run on the compute stream
// (no overlap with the backward yet), so the efficiencies are lower bounds.
//
//   dist_bench [--quick]
#include <iostream>
#include <nlohmann/json.hpp>

#include "runtime/comm.h"
#include "session/session.h"
#include "sim/simulator.h"
#include "util/error.h"

using namespace dlmem;

namespace {

struct Model {
  std::string name;
  int64_t per_rank_batch;
};

session::SessionOptions options(const Model& m, int ranks, int zero, const std::string& link) {
  session::SessionOptions o{.model = m.name, .device = "h100-80gb"};
  o.config.batch = m.per_rank_batch;
  o.train.optimizer = ir::Optimizer::adam;
  o.link = link;
  if (ranks > 1) {
    o.parallel = {.ranks = ranks, .rank = 0, .zero = zero};
    o.comm = &runtime::planning_comm(ranks);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  const std::vector<Model> models = {{"resnet50", 32}, {"bert-large", 8}, {"gpt2-medium", 8}};
  for (const Model& m : models) {
    const session::Session one(options(m, 1, 0, ""));
    const plan::Plan p1 = one.plan({.policy = "default"});
    const double t1 = sim::simulate(one.graph(), p1, one.cost_model(), {.record_memory = false}).makespan;
    for (int ranks : {2, 8, 64}) {
      if (quick && ranks == 64) continue;
      for (int zero = 0; zero <= 3; ++zero) {
        for (const std::string link : {"nvlink-h100", "ib-400"}) {
          const session::Session s(options(m, ranks, zero, link));
          const plan::Plan p = s.plan({.policy = "default"});
          const sim::SimResult r = sim::simulate(s.graph(), p, s.cost_model(), {.record_memory = false});
          nlohmann::json roles;
          for (int k = 0; k < ir::kNumRoles; ++k)
            if (p.stats.peak_by_role[static_cast<size_t>(k)])
              roles[std::string(ir::role_name(static_cast<ir::Role>(k)))] = p.stats.peak_by_role[static_cast<size_t>(k)];
          std::cout << nlohmann::json{{"bench", "dist"},
                                      {"model", m.name},
                                      {"ranks", ranks},
                                      {"zero", zero},
                                      {"link", link},
                                      {"per_rank_batch", m.per_rank_batch},
                                      {"device", "h100-80gb"},
                                      {"planned_peak", p.stats.peak_device},
                                      {"peak_over_one_rank", static_cast<double>(p.stats.peak_device) /
                                                                 static_cast<double>(p1.stats.peak_device)},
                                      {"peak_by_role", roles},
                                      {"step_seconds", r.makespan},
                                      {"one_rank_step_seconds", t1},
                                      {"scaling_efficiency", t1 / r.makespan}}
                           .dump()
                    << std::endl;
        }
      }
    }
    // The largest global batch whose rank fits 80 GB at N = 8 under ZeRO 3 and auto
    // (doubling, then bisection on the per-rank batch).
    auto fits = [&](int64_t b) {
      Model mb = m;
      mb.per_rank_batch = b;
      const session::Session s(options(mb, 8, 3, "nvlink-h100"));
      // Without any policy it fits: so does auto. Else auto decides (the slow part).
      if (s.plan({.policy = "default"}).device_arena <= (80ull << 30)) return true;
      try {
        (void)s.plan({.policy = "auto", .budget = 80ull << 30});
        return true;
      } catch (const OutOfMemory&) {
        return false;
      }
    };
    int64_t lo = 1, hi = 2;
    if (!quick) {
      while (hi <= 256 && fits(hi)) lo = hi, hi *= 2;  // up to 512 per rank: beyond, planning itself takes minutes
      while (hi - lo > 1) {
        const int64_t mid = (lo + hi) / 2;
        (fits(mid) ? lo : hi) = mid;
      }
      std::cout << nlohmann::json{{"bench", "dist_largest_batch"}, {"model", m.name}, {"ranks", 8}, {"zero", 3},
                                  {"policy", "auto"}, {"rank_budget", 80ull << 30}, {"device", "h100-80gb"},
                                  {"largest_per_rank_batch", lo}, {"largest_global_batch", 8 * lo}}
                       .dump()
                << std::endl;
    }
  }
}
