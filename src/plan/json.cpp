#include "plan/json.h"

namespace dlmem::plan {

nlohmann::json stats_json(const Plan& p) {
  const PlanStats& s = p.stats;
  nlohmann::json roles;
  for (int r = 0; r < ir::kNumRoles; ++r)
    roles[std::string(ir::role_name(static_cast<ir::Role>(r)))] = s.peak_by_role[static_cast<size_t>(r)];
  return {{"policy", p.policy},
          {"budget", p.budget},
          {"placement", p.placement},
          {"device_arena", p.device_arena},
          {"host_arena", p.host_arena},
          {"peak_device", s.peak_device},
          {"peak_by_role", roles},
          {"no_reuse", s.no_reuse},
          {"lower_bound", s.lower_bound},
          {"flops", s.flops},
          {"extra_flops", s.extra_flops},
          {"bytes_to_host", s.bytes_to_host},
          {"bytes_to_device", s.bytes_to_device},
          {"plan_seconds", s.plan_seconds}};
}

nlohmann::json to_json(const ir::Graph& g, const Plan& p) {
  nlohmann::json j;
  j["format"] = "dlmem-plan";
  j["version"] = 1;
  j["stats"] = stats_json(p);
  nlohmann::json bufs = nlohmann::json::array();
  for (const Buffer& b : p.buffers)
    bufs.push_back({{"id", b.id},
                    {"value", g.value(b.value).name},
                    {"role", ir::role_name(b.role)},
                    {"bytes", b.bytes},
                    {"space", b.space == Space::device ? "device" : "host"},
                    {"preloaded", b.preloaded},
                    {"persistent", b.persistent},
                    {"offset", b.offset},
                    {"begin", b.begin},
                    {"end", b.end}});
  j["buffers"] = std::move(bufs);
  nlohmann::json prog = nlohmann::json::array();
  for (const Instr& in : p.program) {
    nlohmann::json i = {{"kind", instr_name(in.kind)}, {"stream", stream_name(in.stream)}};
    if (in.kind == InstrKind::compute) {
      i["node"] = g.node(in.node).name;
      i["op"] = ir::op_name(g.node(in.node).op);
      if (in.recompute) i["recompute"] = true;
      if (in.workspace != kNoBuffer) i["workspace"] = in.workspace;
    }
    if (!in.inputs.empty()) i["inputs"] = in.inputs;
    if (!in.outputs.empty()) i["outputs"] = in.outputs;
    if (in.buffer != kNoBuffer) i["buffer"] = in.buffer;
    if (!in.waits.empty()) i["waits"] = in.waits;
    if (!in.codec.empty()) i["codec"] = in.codec;
    prog.push_back(std::move(i));
  }
  j["program"] = std::move(prog);
  return j;
}

}  // namespace dlmem::plan
