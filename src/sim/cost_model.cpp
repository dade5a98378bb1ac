#include "sim/cost_model.h"

#include <algorithm>

#include "util/error.h"

namespace dlmem::sim {

double roofline_seconds(const ir::Graph& g, const ir::Node& n, const DeviceProfile& d, const LinkProfile& link) {
  const ir::OpDef& def = ir::op_def(n.op);
  if (def.view) return 0;
  if (def.comm_factor) {
    // A ring collective of the whole tensors (the larger of its inputs' and outputs'
    // total: a shard in, the tensor out, or a bucket of tensors).
    uint64_t in = 0, out = 0;
    for (const ir::TensorType* t : ir::input_types(g, n)) in += t->bytes();
    for (const ir::TensorType* t : ir::output_types(g, n)) out += t->bytes();
    const uint64_t bytes = std::max(in, out);
    const double factor = def.comm_factor(n);
    const LinkProfile l = link.bandwidth > 0 ? link : link_profile("shm");
    return d.launch_seconds + factor * static_cast<double>(n.attrs.ranks) * l.latency +
           factor * static_cast<double>(bytes) / l.bandwidth;
  }
  ir::Cost c = ir::op_cost(g, n);
  // Optimizer updates and batch-norm's running statistics write over their inputs.
  for (int i : def.mutates)
    if (static_cast<size_t>(i) < n.inputs.size()) c.bytes_written += g.value(n.inputs[static_cast<size_t>(i)]).type.bytes();
  const ir::DType dt = !n.outputs.empty() ? g.value(n.outputs[0]).type.dtype
                                          : (!n.inputs.empty() ? g.value(n.inputs[0]).type.dtype : ir::DType::f32);
  const double compute = c.flops / (d.flops_for(dt) * d.efficiency.compute);
  const double memory =
      static_cast<double>(c.bytes_read + c.bytes_written) / (d.memory_bandwidth * d.efficiency.memory);
  return d.launch_seconds + std::max(compute, memory);
}

CostModel roofline_cost_model(const ir::Graph& g, const DeviceProfile& d, const LinkProfile& link) {
  CostModel cm;
  cm.source = "roofline";
  cm.device = d;
  cm.link = link;
  cm.node_seconds.resize(static_cast<size_t>(g.num_nodes()));
  for (const ir::Node& n : g.nodes()) cm.node_seconds[static_cast<size_t>(n.id)] = roofline_seconds(g, n, d, link);
  return cm;
}

CostModel measured_cost_model(const ir::Graph& g, const plan::Plan& measured, const std::vector<double>& secs,
                              const DeviceProfile& d) {
  if (secs.size() != measured.program.size())
    throw Error("measured times cover ", secs.size(), " instructions but the plan has ", measured.program.size(),
                "; time the same plan (ExecOptions::time_instructions)");
  CostModel cm = roofline_cost_model(g, d);
  cm.source = "measured";
  std::vector<double> sum(static_cast<size_t>(g.num_nodes()), 0.0);
  std::vector<int> runs(static_cast<size_t>(g.num_nodes()), 0);
  for (size_t i = 0; i < secs.size(); ++i) {
    const plan::Instr& in = measured.program[i];
    if (in.kind != plan::InstrKind::compute) continue;
    if (!(secs[i] >= 0)) throw Error("measured time of instruction ", i, " is ", secs[i], "; times must be >= 0");
    DLMEM_CHECK(in.node >= 0 && in.node < g.num_nodes(), "instruction ", i, " runs no node of this graph");
    sum[static_cast<size_t>(in.node)] += secs[i];
    runs[static_cast<size_t>(in.node)]++;
  }
  for (size_t n = 0; n < sum.size(); ++n)
    if (runs[n] > 0) cm.node_seconds[n] = sum[n] / runs[n];
  return cm;
}

double CostModel::copy_seconds(plan::Stream s, uint64_t bytes) const {
  const double bw = (s == plan::Stream::d2h ? device.d2h_bandwidth : device.h2d_bandwidth) * device.efficiency.link;
  return device.launch_seconds + static_cast<double>(bytes) / bw;
}

double CostModel::instr_seconds(const ir::Graph& g, const plan::Plan& p, const plan::Instr& in) const {
  auto bytes_of = [&](plan::BufferId b) { return p.buffers[static_cast<size_t>(b)].bytes; };
  switch (in.kind) {
    case plan::InstrKind::compute:
      DLMEM_CHECK(in.node >= 0 && static_cast<size_t>(in.node) < node_seconds.size(), "compute of node ", in.node,
                  " outside the cost model");
      return node_seconds[static_cast<size_t>(in.node)];
    case plan::InstrKind::free: return 0;
    case plan::InstrKind::swap_out:
    case plan::InstrKind::swap_in: return copy_seconds(in.stream, bytes_of(in.inputs.at(0)));
    case plan::InstrKind::compress:
    case plan::InstrKind::decompress: {
      const double b = static_cast<double>(bytes_of(in.inputs.at(0)) + bytes_of(in.outputs.at(0)));
      return device.launch_seconds + b / (device.memory_bandwidth * device.efficiency.memory);
    }
  }
  (void)g;
  return 0;
}

}  // namespace dlmem::sim
