#include "models/remat_graph.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "util/error.h"
#include "util/json_file.h"
#include "util/random.h"

namespace dlmem::models {

using nlohmann::json;

namespace {

// networkx writes ids as numbers or strings; both name a node.
std::string id_of(const json& v, const std::string& file, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  throw Error("remat graph '", file, "': ", where, " needs an \"id\" (a number or a string), got ", v.dump());
}

// The first of `keys` the node has: a finite number >= 0.
double number_of(const json& node, std::initializer_list<const char*> keys, const std::string& file,
                 const std::string& id, const char* what) {
  for (const char* k : keys) {
    if (!node.contains(k)) continue;
    const json& v = node.at(k);
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
      throw Error("remat graph '", file, "': node ", id, "'s \"", k, "\" must be a number >= 0 (its ", what, "), got ",
                  v.dump());
    return v.get<double>();
  }
  std::string names;
  for (const char* k : keys) names += std::string(names.empty() ? "" : " or ") + "\"" + k + "\"";
  throw Error("remat graph '", file, "': node ", id, " has no ", what, ": give it ", names);
}

}  // namespace

RematGraph parse_remat_graph(const json& j, const std::string& file) {
  if (!j.is_object() || !j.contains("nodes") || !j.at("nodes").is_array())
    throw Error("remat graph '", file, "': expected networkx node-link JSON, an object with a \"nodes\" array and a "
                "\"links\" array (docs/recomputation.md, \"External graphs\")");
  if (j.contains("directed") && j.at("directed") != true)
    throw Error("remat graph '", file, "': the graph is undirected; a computation graph's links point from the node "
                "computed first to the node that reads it (\"directed\": true)");
  const char* links_key = j.contains("links") ? "links" : "edges";  // networkx 3.4 may write either
  if (!j.contains(links_key) || !j.at(links_key).is_array())
    throw Error("remat graph '", file, "': expected a \"links\" array (objects with \"source\" and \"target\")");
  const json& meta = j.contains("graph") && j.at("graph").is_object() ? j.at("graph") : json::object();

  RematGraph rg;
  rg.name = meta.contains("name") && meta.at("name").is_string() ? meta.at("name").get<std::string>()
                                                                 : std::filesystem::path(file).stem().string();
  const json& nodes = j.at("nodes");
  const size_t n = nodes.size();
  if (n == 0) throw Error("remat graph '", file, "' has no nodes");
  std::vector<std::string> ids(n), names(n);
  std::vector<double> cost(n);
  std::vector<uint64_t> bytes(n);
  std::vector<bool> backward(n, false);
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < n; ++i) {
    const json& nd = nodes[i];
    const std::string where = "node " + std::to_string(i) + " of \"nodes\"";
    if (!nd.is_object() || !nd.contains("id")) throw Error("remat graph '", file, "': ", where, " needs an \"id\"");
    ids[i] = id_of(nd.at("id"), file, where);
    if (!index.emplace(ids[i], i).second) throw Error("remat graph '", file, "': two nodes have the id ", ids[i]);
    cost[i] = number_of(nd, {"cost_cpu", "duration", "cost"}, file, ids[i], "cost");
    const double b = number_of(nd, {"cost_ram", "out_cost", "memory", "mem"}, file, ids[i], "output size in bytes");
    if (b != std::floor(b) || b > 9.0e15)
      throw Error("remat graph '", file, "': node ", ids[i], "'s output size must be a whole number of bytes below 2^53, got ", b);
    bytes[i] = static_cast<uint64_t>(b);
    if (nd.contains("backward")) {
      if (!nd.at("backward").is_boolean())
        throw Error("remat graph '", file, "': node ", ids[i], "'s \"backward\" must be true or false");
      backward[i] = nd.at("backward").get<bool>();
    }
    names[i] = nd.contains("name") && nd.at("name").is_string() ? nd.at("name").get<std::string>() : "n" + ids[i];
  }

  std::vector<std::vector<size_t>> inputs(n), readers(n);
  for (size_t e = 0; e < j.at(links_key).size(); ++e) {
    const json& l = j.at(links_key)[e];
    const std::string where = "link " + std::to_string(e);
    if (!l.is_object() || !l.contains("source") || !l.contains("target"))
      throw Error("remat graph '", file, "': ", where, " needs a \"source\" and a \"target\"");
    const std::string s = id_of(l.at("source"), file, where), t = id_of(l.at("target"), file, where);
    const auto si = index.find(s), ti = index.find(t);
    if (si == index.end() || ti == index.end())
      throw Error("remat graph '", file, "': ", where, " names node ", si == index.end() ? s : t, ", which \"nodes\" does not list");
    if (s == t) throw Error("remat graph '", file, "': node ", s, " reads itself (", where, ")");
    if (std::find(inputs[ti->second].begin(), inputs[ti->second].end(), si->second) != inputs[ti->second].end()) continue;
    inputs[ti->second].push_back(si->second);
    readers[si->second].push_back(ti->second);
  }

  // The loss and its ancestors are the forward; every other node is backward.
  if (meta.contains("loss")) {
    const std::string loss = id_of(meta.at("loss"), file, "\"graph\": {\"loss\"}");
    const auto it = index.find(loss);
    if (it == index.end()) throw Error("remat graph '", file, "': the loss names node ", loss, ", which \"nodes\" does not list");
    std::vector<bool> ancestor(n, false);
    std::vector<size_t> stack{it->second};
    ancestor[it->second] = true;
    while (!stack.empty()) {
      const size_t v = stack.back();
      stack.pop_back();
      for (size_t u : inputs[v])
        if (!ancestor[u]) {
          ancestor[u] = true;
          stack.push_back(u);
        }
    }
    for (size_t i = 0; i < n; ++i) backward[i] = backward[i] || !ancestor[i];
  }
  for (size_t i = 0; i < n; ++i)
    for (size_t u : inputs[i])
      if (!backward[i] && backward[u])
        throw Error("remat graph '", file, "': forward node ", ids[i], " reads backward node ", ids[u],
                    "; a backward node runs after every forward one (mark ", ids[i], " backward, or ", ids[u], " forward)");

  // Kahn's order, forward nodes first, each in the file's order where the links allow.
  std::vector<int> pending(n);
  using MinHeap = std::priority_queue<size_t, std::vector<size_t>, std::greater<>>;
  MinHeap ready_fwd, ready_bwd;
  for (size_t i = 0; i < n; ++i) {
    pending[i] = static_cast<int>(inputs[i].size());
    if (!pending[i]) (backward[i] ? ready_bwd : ready_fwd).push(i);
  }
  std::vector<size_t> order;
  order.reserve(n);
  while (!ready_fwd.empty() || !ready_bwd.empty()) {
    MinHeap& q = !ready_fwd.empty() ? ready_fwd : ready_bwd;
    const size_t v = q.top();
    q.pop();
    order.push_back(v);
    for (size_t r : readers[v])
      if (--pending[r] == 0) (backward[r] ? ready_bwd : ready_fwd).push(r);
  }
  if (order.size() < n) {
    // A node left waiting waits on another left waiting: walking back from one must
    // come round to a node it saw, which is on a cycle.
    size_t v = 0;
    while (pending[v] == 0) ++v;
    std::vector<bool> seen(n, false);
    while (!seen[v]) {
      seen[v] = true;
      for (size_t u : inputs[v])
        if (pending[u] > 0) {
          v = u;
          break;
        }
    }
    throw Error("remat graph '", file, "': the links form a cycle through node ", ids[v],
                "; a computation graph is acyclic");
  }
  double total_bytes = 0, total_cost = 0;
  for (size_t i = 0; i < n; ++i) total_bytes += static_cast<double>(bytes[i]), total_cost += cost[i];
  if (total_bytes > 4.0e18 || !std::isfinite(total_cost))
    throw Error("remat graph '", file, "': the outputs sum to ", total_bytes, " bytes and the costs to ", total_cost,
                "; dlmem plans up to 4e18 bytes and finite costs");
  rg.total_cost = total_cost;
  // Note [External costs]: the planners count cost as FLOPs, at least 1 per node, and
  // the MILP in millions; a graph's costs (seconds, or small integers) are scaled so
  // that the smallest positive one is 1e6, and the scale is undone in what is reported.
  double smallest = 0;
  for (double c : cost)
    if (c > 0 && (smallest == 0 || c < smallest)) smallest = c;
  rg.cost_scale = smallest > 0 && smallest < 1e6 ? 1e6 / smallest : 1;
  if (!std::isfinite(total_cost * rg.cost_scale)) rg.cost_scale = 1;

  std::vector<ir::ValueId> out(n, ir::kNoValue);
  for (size_t v : order) {
    ir::Attrs a;
    a.shape = {static_cast<int64_t>(bytes[v])};
    a.cost = cost[v] * rg.cost_scale;
    std::vector<ir::ValueId> ins;
    for (size_t u : inputs[v]) ins.push_back(out[u]);
    const ir::NodeId id = rg.graph.add_node(ir::OpKind::external, names[v], a, ins,
                                            backward[v] ? ir::Role::gradient : ir::Role::activation,
                                            backward[v] ? ir::Phase::backward : ir::Phase::forward);
    out[v] = rg.graph.node(id).outputs[0];
    if (backward[v]) {  // Note [External graphs]: what it differentiates
      ir::NodeId of = ir::kNoNode;
      for (size_t u : inputs[v])
        if (!backward[u]) of = std::max(of, rg.graph.value(out[u]).producer);
      rg.graph.node(id).forward_of = of;
    }
    rg.ids.push_back(ids[v]);
    rg.num_backward += backward[v] ? 1 : 0;
  }
  for (size_t v : order)
    if (readers[v].empty()) rg.graph.outputs.push_back(out[v]);
  rg.graph.verify();
  return rg;
}

RematGraph read_remat_graph(const std::string& path) { return parse_remat_graph(read_json_file(path, "remat graph"), path); }

json remat_graph_json(const std::vector<RematNode>& nodes, const std::string& name) {
  json ns = json::array(), ls = json::array();
  for (size_t i = 0; i < nodes.size(); ++i) {
    json nd{{"id", i}, {"cost_cpu", nodes[i].cost}, {"cost_ram", nodes[i].bytes}};
    if (nodes[i].backward) nd["backward"] = true;
    ns.push_back(std::move(nd));
    for (int u : nodes[i].inputs) ls.push_back({{"source", u}, {"target", i}});
  }
  return {{"directed", true}, {"multigraph", false}, {"graph", {{"name", name}}}, {"nodes", ns}, {"links", ls}};
}

namespace {

// Per-node sizes of 1-64 MiB in 64 KiB steps and costs of 1-100, from one stream.
struct Draw {
  uint64_t state;
  uint64_t next() { return state = splitmix64(state); }
  uint64_t bytes() { return (1 + next() % 1024) * (64u << 10); }
  double cost() { return static_cast<double>(1 + next() % 100); }
};

// Appends the backward of a forward graph `fwd` (node indices 0..f-1, the last being
// the loss): the gradient of node v reads the gradients of v's readers, v's inputs
// and v itself -- what a layer's backward reads -- and costs twice its forward.
void mirror_backward(std::vector<RematNode>& g) {
  const int f = static_cast<int>(g.size());
  std::vector<std::vector<int>> readers(static_cast<size_t>(f));
  for (int v = 0; v < f; ++v)
    for (int u : g[static_cast<size_t>(v)].inputs) readers[static_cast<size_t>(u)].push_back(v);
  std::vector<int> grad(static_cast<size_t>(f), -1);
  for (int v = f - 1; v >= 0; --v) {
    const RematNode& fw = g[static_cast<size_t>(v)];
    if (fw.inputs.empty()) continue;  // the graph's input: no gradient needed
    RematNode b{.cost = 2 * fw.cost, .bytes = fw.bytes, .backward = true, .inputs = {}};
    for (int r : readers[static_cast<size_t>(v)])
      if (grad[static_cast<size_t>(r)] >= 0) b.inputs.push_back(grad[static_cast<size_t>(r)]);
    b.inputs.push_back(v);
    for (int u : fw.inputs) b.inputs.push_back(u);
    grad[static_cast<size_t>(v)] = static_cast<int>(g.size());
    g.push_back(std::move(b));
  }
}

}  // namespace

std::vector<RematNode> remat_chain(int layers, uint64_t seed) {
  DLMEM_CHECK(layers >= 1, "remat_chain needs a layer");
  Draw d{seed};
  std::vector<RematNode> g;
  g.push_back({.cost = 1, .bytes = d.bytes(), .backward = false, .inputs = {}});  // the input
  for (int i = 0; i < layers; ++i)
    g.push_back({.cost = d.cost(), .bytes = d.bytes(), .backward = false, .inputs = {static_cast<int>(g.size()) - 1}});
  g.push_back({.cost = 1, .bytes = 64u << 10, .backward = false, .inputs = {static_cast<int>(g.size()) - 1}});  // the loss
  mirror_backward(g);
  return g;
}

std::vector<RematNode> remat_unet(int levels, uint64_t seed) {
  DLMEM_CHECK(levels >= 1, "remat_unet needs a level");
  Draw d{seed};
  std::vector<RematNode> g;
  auto add = [&](std::vector<int> in, uint64_t bytes) {
    g.push_back({.cost = d.cost(), .bytes = bytes, .backward = false, .inputs = std::move(in)});
    return static_cast<int>(g.size()) - 1;
  };
  int x = add({}, 16u << 20);
  std::vector<int> skips;
  uint64_t size = 32u << 20;
  for (int l = 0; l < levels; ++l) {  // two convolutions, then a pooling that halves the map
    x = add({x}, size);
    x = add({x}, size);
    skips.push_back(x);
    size = std::max<uint64_t>(size / 2, 64u << 10);
    x = add({x}, size);
  }
  x = add({x}, size);
  for (int l = levels - 1; l >= 0; --l) {  // up-sampling, joined with the skip, two convolutions
    size = g[static_cast<size_t>(skips[static_cast<size_t>(l)])].bytes;
    x = add({x}, size);
    x = add({x, skips[static_cast<size_t>(l)]}, 2 * size);
    x = add({x}, size);
  }
  add({x}, 64u << 10);  // the loss
  mirror_backward(g);
  return g;
}

std::vector<RematNode> remat_random_layered(int nodes, uint64_t seed) {
  DLMEM_CHECK(nodes >= 2, "remat_random_layered needs two nodes");
  Draw d{seed};
  const int width = std::max(1, static_cast<int>(std::lround(std::sqrt(nodes))));
  std::vector<RematNode> g;
  std::vector<int> layer_begin{0};
  for (int i = 0; i < nodes; ++i) {
    if (i > 0 && i % width == 0) layer_begin.push_back(i);
    RematNode nd{.cost = d.cost(), .bytes = d.bytes(), .backward = false, .inputs = {}};
    const int layer = static_cast<int>(layer_begin.size()) - 1;
    if (layer > 0) {
      // 1-3 inputs: one from the previous layer, the others from any earlier layer.
      const int prev_lo = layer_begin[static_cast<size_t>(layer) - 1], prev_n = layer_begin.back() - prev_lo;
      nd.inputs.push_back(prev_lo + static_cast<int>(d.next() % static_cast<uint64_t>(prev_n)));
      const int extra = static_cast<int>(d.next() % 3);
      for (int e = 0; e < extra; ++e) {
        const int u = static_cast<int>(d.next() % static_cast<uint64_t>(layer_begin.back()));
        if (std::find(nd.inputs.begin(), nd.inputs.end(), u) == nd.inputs.end()) nd.inputs.push_back(u);
      }
    }
    g.push_back(std::move(nd));
  }
  // Every node before the last layer is read (an unread one would be a result, kept to
  // the end): one of the next layer's nodes reads it too.
  std::vector<bool> read(g.size(), false);
  for (const RematNode& nd : g)
    for (int u : nd.inputs) read[static_cast<size_t>(u)] = true;
  for (size_t l = 0; l + 1 < layer_begin.size(); ++l)
    for (int v = layer_begin[l]; v < layer_begin[l + 1]; ++v) {
      if (read[static_cast<size_t>(v)]) continue;
      const int next_lo = layer_begin[l + 1];
      const int next_n = (l + 2 < layer_begin.size() ? layer_begin[l + 2] : nodes) - next_lo;
      g[static_cast<size_t>(next_lo + static_cast<int>(d.next() % static_cast<uint64_t>(next_n)))].inputs.push_back(v);
    }
  return g;
}

}  // namespace dlmem::models
