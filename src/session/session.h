// A session: one model at one batch size, built the same way for every caller
// (`dlmem plan`, `train`, `simulate`, `analyze`, the benchmarks and the tests) -- the
// model's graph, its training graph (autodiff and optimizer updates), the kernel
// workspaces of the backend that will run it, the device profile it is planned for
// and that device's cost model -- so that a plan made here is the plan that runs.
//
//   session::Session s({.model = "resnet50", .config = {.batch = 64}, .device = "v100-16gb"});
//   plan::Plan p = s.plan({.policy = "swap:tensor", .budget = s.budget("50%")});
//   sim::simulate(s.graph(), p, s.cost_model());
//
// Note [Devices]: `device` names where the plan runs and what it is planned for:
//  - "cpu": the cpu backend (oneDNN), planned on the `host` profile (dlmem calibrate);
//  - "cuda": the cuda backend (cuDNN's workspaces), planned on the named profile of the
//    GPU in use (h100-80gb, ...; host where dlmem has none);
//  - any other name is a device profile (v100-16gb, h100-80gb, a profile file): the
//    cpu backend's kernels and workspaces, planned for that device, which is how plans
//    for GPUs are made and simulated on a machine without one.
// `dlmem plan --device X` and `dlmem train --device X` therefore plan alike.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ir/autodiff.h"
#include "ir/graph.h"
#include "ir/parallel.h"
#include "models/zoo.h"
#include "planners/planner.h"
#include "runtime/backend.h"
#include "sim/cost_model.h"
#include "sim/device_profile.h"

namespace dlmem::session {

struct SessionOptions {
  std::string model = "lenet5";   // a zoo model (models::list_models)
  models::ModelConfig config;     // batch, image size, sequence length, classes, training mode
  // The training graph: autodiff and this optimizer's updates (Optimizer::none: the
  // weight gradients and no update). Not used for inference graphs (config.training false).
  ir::TrainOptions train;
  std::string device = "cpu";     // Note [Devices]
  int threads = 0;                // cpu backend threads (0: its default)
  // Data parallelism (ir/parallel.h): this rank's graph, its collectives on `comm`
  // (runtime/comm.h, not owned; required when parallel.ranks > 1).
  ir::DataParallel parallel;
  runtime::Communicator* comm = nullptr;
  std::string link;  // the interconnect collectives are priced on (sim/link_profile.h; "": the device's)
};

// The model's graph as the session builds it: the zoo builder, then (config.training)
// the training graph, then `workspaces`' kernel workspaces when it is given.
ir::Graph build_graph(const SessionOptions&, runtime::Backend* workspaces);

class Session {
 public:
  // dlmem::Error for an unknown model, device or a bad configuration.
  explicit Session(SessionOptions);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const SessionOptions& options() const { return opts_; }
  const ir::Graph& graph() const { return *graph_; }
  runtime::Backend& backend() const { return *backend_; }
  bool cuda() const { return kind_ == runtime::DeviceKind::cuda; }
  const sim::DeviceProfile& profile() const { return cost_.device; }
  // What names that profile: a named profile, "host", or the profile file's path.
  const std::string& profile_name() const { return profile_name_; }
  // The roofline cost model of profile(): what every planner plans on.
  const sim::CostModel& cost_model() const { return cost_; }

  // A budget as users write it: bytes ("4GiB") or a share of what the default plan's
  // arena needs ("40%"); "" is no budget (0).
  uint64_t budget(std::string_view text) const;
  // The default plan's arena (what "100%" means); computed once.
  uint64_t unmanaged_arena() const;

  // planners::make_plan on this session's graph and cost model.
  plan::Plan plan(const planners::PlanRequest&) const;

 private:
  SessionOptions opts_;
  runtime::DeviceKind kind_;
  std::string profile_name_;
  std::unique_ptr<runtime::Backend> backend_;
  std::unique_ptr<ir::Graph> graph_;
  sim::CostModel cost_;
  mutable uint64_t unmanaged_ = 0;
};

// The named device profile of a GPU (src/sim/device_profile.cpp), or "host".
std::string profile_of(const runtime::CudaDeviceInfo&);

}  // namespace dlmem::session
