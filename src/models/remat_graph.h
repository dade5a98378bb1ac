// Rematerialisation problems from outside dlmem: the computation graphs the
// recomputation literature shares (Checkmate, Jain et al. 2020; Moccasin, Bartan et al.
// 2023), as networkx node-link JSON. Each node has a cost and the size of its one
// output; each link says a node reads another's output. `dlmem remat` plans them with
// the same recomputation planners as dlmem's own training graphs (docs/recomputation.md,
// "External graphs").
//
//   models::RematGraph rg = models::read_remat_graph("unet.json");   // dlmem::Error naming the file
//   rg.graph        // one ir::OpKind::external node per graph node, in a topological order
//
// Note [External graphs]: a node is backward when it says "backward": true, or when the
// graph names its loss ("graph": {"loss": id}) and the node is not the loss or one of
// its ancestors; the rest are forward, and only forward nodes may be recomputed (as in
// dlmem's training graphs; Checkmate's own graphs recompute backward nodes rarely).
// A graph with no backward node is the general problem: every node may be recomputed.
// A backward node differentiates the last forward node it reads (what the chain
// planners group by: Note [Articulation chain]); the files carry no such link.
// Nodes run forward first, then backward, each in the file's order as far as the links
// allow. Outputs nobody reads (the sinks) are the graph's results: kept to the end.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ir/graph.h"

namespace dlmem::models {

struct RematGraph {
  std::string name;        // "graph": {"name": ...}, else the file's name
  ir::Graph graph;         // node i of the graph is the i-th in topological order
  std::vector<std::string> ids;  // per ir node: its id in the file
  int num_backward = 0;
  double total_cost = 0;   // one computation of every node, in the file's unit
  // The nodes' attrs.cost are the file's costs times this (Note [External costs]).
  double cost_scale = 1;
};

// dlmem::Error for an unreadable file, invalid JSON, a missing or negative cost or
// size, an unknown or duplicate id, a self-link, a cycle, or a forward node reading a
// backward one: naming the file, the node and what would work.
RematGraph read_remat_graph(const std::string& path);
RematGraph parse_remat_graph(const nlohmann::json&, const std::string& name);

// A graph to write: nodes in order, inputs by index into the list.
struct RematNode {
  double cost = 1;
  uint64_t bytes = 0;
  bool backward = false;
  std::vector<int> inputs;
};
// The node-link JSON of `nodes` (ids 0..n-1, "cost_cpu", "cost_ram", "backward").
nlohmann::json remat_graph_json(const std::vector<RematNode>& nodes, const std::string& name);

// Generated graphs for the tests and the bench (deterministic in `seed`):
// - a training chain: `layers` forward nodes, a loss, and the mirrored backward, where
//   layer i's gradient reads the next gradient and layer i's input and output;
// - a U-Net training graph: `levels` down and up levels joined by skip links, its
//   backward mirrored the same way;
// - a random layered DAG of `nodes` nodes (about sqrt(nodes) layers, each node reading
//   1-3 nodes of the previous layers), no backward: every node may be recomputed.
// Costs and sizes vary per node (sizes 1-64 MiB in 64 KiB steps, costs 1-100).
std::vector<RematNode> remat_chain(int layers, uint64_t seed);
std::vector<RematNode> remat_unet(int levels, uint64_t seed);
std::vector<RematNode> remat_random_layered(int nodes, uint64_t seed);

}  // namespace dlmem::models
