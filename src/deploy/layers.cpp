#include "deploy/layers.h"

#include <charconv>
#include <cmath>
#include <set>
#include <sstream>

#include "util/error.h"

namespace dlmem::deploy {

std::string_view layer_kind_name(LayerKind k) { return k == LayerKind::conv ? "conv" : "fc"; }

int64_t Layer::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<Layer> compressible_layers(const ir::Graph& g) {
  std::vector<Layer> out;
  std::set<ir::ValueId> seen;
  for (const ir::Node& n : g.nodes()) {
    if (n.phase != ir::Phase::forward) continue;
    if (n.op != ir::OpKind::conv2d && n.op != ir::OpKind::linear) continue;
    if (n.inputs.size() < 2) continue;
    const ir::Value& w = g.value(n.inputs[1]);
    if (w.role != ir::Role::weight || !w.trainable || !seen.insert(w.id).second) continue;
    Layer l;
    l.weight = w.name;
    l.name = w.name.ends_with(".weight") ? w.name.substr(0, w.name.size() - 7) : w.name;
    l.kind = n.op == ir::OpKind::conv2d ? LayerKind::conv : LayerKind::fc;
    l.value = w.id;
    l.shape = w.type.shape;
    out.push_back(std::move(l));
  }
  return out;
}

double PerLayer::get(const Layer& l) const {
  auto it = by_name.find(l.name);
  if (it != by_name.end()) return it->second;
  return l.kind == LayerKind::conv ? conv : fc;
}

namespace {
double parse_number(std::string_view s, const std::string& flag, std::string_view item) {
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v) || v < 0)
    throw Error(flag, ": '", item, "' is not a non-negative number; write e.g. ", flag, " conv=8,fc=5 or ", flag,
                " fc1=1.2");
  return v;
}
}  // namespace

PerLayer PerLayer::parse(std::string_view text, const std::string& flag, PerLayer defaults) {
  PerLayer p = std::move(defaults);
  if (text.empty()) throw Error(flag, " is empty; write e.g. ", flag, " conv=8,fc=5");
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      const double v = parse_number(item, flag, item);
      p.conv = p.fc = v;
      p.by_name.clear();
      continue;
    }
    const std::string key(item.substr(0, eq));
    const double v = parse_number(item.substr(eq + 1), flag, item);
    if (key.empty()) throw Error(flag, ": '", item, "' has no layer name before '='");
    if (key == "conv") p.conv = v;
    else if (key == "fc") p.fc = v;
    else p.by_name[key] = v;
  }
  return p;
}

void PerLayer::validate(const std::vector<Layer>& layers, const std::string& flag) const {
  for (const auto& [name, v] : by_name) {
    bool found = false;
    for (const Layer& l : layers) found |= l.name == name;
    if (found) continue;
    std::string names;
    for (const Layer& l : layers) names += (names.empty() ? "" : ", ") + l.name;
    throw Error(flag, ": the model has no layer '", name, "'; its layers are ", names, " (or conv=, fc= for all)");
  }
}

std::string PerLayer::str() const {
  std::ostringstream os;
  os << "conv=" << conv << ",fc=" << fc;
  for (const auto& [name, v] : by_name) os << "," << name << "=" << v;
  return os.str();
}

}  // namespace dlmem::deploy
