#include "session/session.h"

#include <cctype>

#include "util/error.h"
#include "util/format.h"

namespace dlmem::session {

ir::Graph build_graph(const SessionOptions& o, runtime::Backend* workspaces) {
  ir::Graph g = models::build_model(o.model, o.config);
  if (o.config.training) {
    const std::vector<ir::ParamGrad> params = ir::build_training_graph(g, o.train);
    if (o.parallel.ranks > 1) ir::make_data_parallel(g, params, o.parallel);
  }
  if (workspaces) runtime::attach_workspaces(g, *workspaces);
  return g;
}

std::string profile_of(const runtime::CudaDeviceInfo& gpu) {
  std::string n = gpu.name;
  for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (n.find("h200") != std::string::npos) return "h200";
  if (n.find("h100") != std::string::npos) return "h100-80gb";
  if (n.find("a100") != std::string::npos) return gpu.total_bytes > (48ull << 30) ? "a100-80gb" : "a100-40gb";
  if (n.find("v100") != std::string::npos) return gpu.total_bytes > (20ull << 30) ? "v100-32gb" : "v100-16gb";
  return "host";
}

namespace {

runtime::DeviceKind backend_kind(std::string_view device) {
  return device == "cuda" ? runtime::DeviceKind::cuda : runtime::DeviceKind::cpu;
}

std::string profile_for(std::string_view device) {
  if (device == "cpu") return "host";
  if (device == "cuda") return profile_of(runtime::cuda_device_info());
  return std::string(device);
}

std::unique_ptr<runtime::Backend> backend_for(runtime::DeviceKind kind, const SessionOptions& o) {
  std::unique_ptr<runtime::Backend> be = runtime::make_backend(kind, o.threads);
  if (o.parallel.ranks > 1 && !o.comm)
    throw InternalError("a session of rank " + std::to_string(o.parallel.rank) + " of " +
                        std::to_string(o.parallel.ranks) + " ranks without a communicator");
  be->set_communicator(o.comm);  // before the collectives' workspaces are asked for
  return be;
}

}  // namespace

Session::Session(SessionOptions o)
    : opts_(std::move(o)),
      kind_(backend_kind(opts_.device)),
      profile_name_(profile_for(opts_.device)),
      backend_(backend_for(kind_, opts_)),
      graph_(std::make_unique<ir::Graph>(build_graph(opts_, backend_.get()))),
      cost_(sim::roofline_cost_model(*graph_, sim::device_profile(profile_name_),
                                     opts_.link.empty() ? sim::link_profile_for(profile_name_) : sim::link_profile(opts_.link))) {
  graph_->verify();
}

Session::~Session() = default;

uint64_t Session::unmanaged_arena() const {
  if (!unmanaged_) unmanaged_ = plan({.policy = "default"}).device_arena;
  return unmanaged_;
}

uint64_t Session::budget(std::string_view text) const {
  if (text.empty()) return 0;
  const Budget b = parse_budget(text);
  return b.is_fraction ? b.resolve(unmanaged_arena()) : b.bytes;
}

plan::Plan Session::plan(const planners::PlanRequest& req) const { return planners::make_plan(*graph_, cost_, req); }

}  // namespace dlmem::session
