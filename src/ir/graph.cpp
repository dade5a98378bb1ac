#include "ir/graph.h"

#include <unordered_set>

#include "util/error.h"

namespace dlmem::ir {

ValueId Graph::add_value(std::string name, TensorType type, Role role) {
  Value v;
  v.id = static_cast<ValueId>(values_.size());
  v.name = std::move(name);
  v.type = std::move(type);
  v.role = role;
  by_name_.try_emplace(v.name, v.id);
  values_.push_back(std::move(v));
  return values_.back().id;
}

NodeId Graph::add_node(OpKind op, std::string name, Attrs attrs, std::vector<ValueId> inputs,
                       Role out_role, Phase phase) {
  const OpDef& def = op_def(op);
  const int n_in = static_cast<int>(inputs.size());
  if (n_in < def.min_inputs || (def.max_inputs >= 0 && n_in > def.max_inputs))
    throw Error("node '", name, "' (", def.name, "): takes ", def.min_inputs,
                def.max_inputs == def.min_inputs ? "" : " or more", " inputs, got ", n_in);
  for (ValueId v : inputs)
    DLMEM_CHECK(v >= 0 && v < num_values(), "node '", name, "' reads undefined value ", v);

  Node node;
  node.id = static_cast<NodeId>(nodes_.size());
  node.op = op;
  node.name = std::move(name);
  node.attrs = std::move(attrs);
  node.inputs = std::move(inputs);
  node.phase = phase;

  std::vector<const TensorType*> in_types;
  for (ValueId v : node.inputs) in_types.push_back(&values_[static_cast<size_t>(v)].type);
  std::vector<TensorType> out_types = def.infer(node, in_types);

  for (size_t i = 0; i < out_types.size(); ++i) {
    std::string vname = out_types.size() == 1 ? node.name : node.name + ":" + std::to_string(i);
    ValueId v = add_value(std::move(vname), std::move(out_types[i]), out_role);
    values_[static_cast<size_t>(v)].producer = node.id;
    node.outputs.push_back(v);
  }
  for (ValueId v : node.inputs) values_[static_cast<size_t>(v)].consumers.push_back(node.id);
  nodes_.push_back(std::move(node));
  return nodes_.back().id;
}

ValueId Graph::add_workspace(NodeId n, uint64_t bytes) {
  Node& node = nodes_.at(static_cast<size_t>(n));
  DLMEM_CHECK(node.workspace == kNoValue, "node ", node.name, " already has a workspace");
  // A u8 vector of the exact byte count.
  ValueId v = add_value(node.name + "/workspace", TensorType{{static_cast<int64_t>(bytes)}, DType::u8},
                        Role::workspace);
  values_[static_cast<size_t>(v)].producer = n;
  values_[static_cast<size_t>(v)].consumers.push_back(n);
  nodes_[static_cast<size_t>(n)].workspace = v;
  return v;
}

ValueId Graph::find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? kNoValue : it->second;
}

std::vector<ValueId> Graph::values_with_role(Role r) const {
  std::vector<ValueId> out;
  for (const Value& v : values_)
    if (v.role == r) out.push_back(v.id);
  return out;
}

int64_t Graph::parameter_count() const {
  int64_t n = 0;
  for (const Value& v : values_)
    if (v.role == Role::weight && v.trainable) n += v.type.numel();
  return n;
}

void Graph::verify() const {
  std::vector<int> consumed(values_.size(), 0);
  for (const Node& n : nodes_) {
    for (ValueId v : n.inputs) {
      DLMEM_CHECK(v >= 0 && v < num_values(), "node ", n.name, " reads undefined value");
      const Value& val = values_[static_cast<size_t>(v)];
      DLMEM_CHECK(val.producer < n.id, "node ", n.name, " reads ", val.name,
                  " before it is produced");
      consumed[static_cast<size_t>(v)]++;
    }
    std::vector<TensorType> expect = op_def(n.op).infer(n, input_types(*this, n));
    DLMEM_CHECK(expect.size() == n.outputs.size(), "node ", n.name, " output count");
    for (size_t i = 0; i < expect.size(); ++i) {
      const Value& out = values_[static_cast<size_t>(n.outputs[i])];
      DLMEM_CHECK(out.producer == n.id, "value ", out.name, " producer link");
      DLMEM_CHECK(out.type == expect[i], "value ", out.name, " has type ", out.type.str(),
                  " but inference gives ", expect[i].str());
    }
    if (n.workspace != kNoValue) consumed[static_cast<size_t>(n.workspace)]++;
  }
  std::unordered_set<std::string> weight_names;
  for (const Value& v : values_) {
    DLMEM_CHECK(static_cast<int>(v.consumers.size()) == consumed[static_cast<size_t>(v.id)],
                "value ", v.name, " consumer links disagree with the nodes");
    if (v.role == Role::weight)
      DLMEM_CHECK(weight_names.insert(v.name).second, "two weights named ", v.name);
  }
}

std::vector<const TensorType*> input_types(const Graph& g, const Node& n) {
  std::vector<const TensorType*> t;
  t.reserve(n.inputs.size());
  for (ValueId v : n.inputs) t.push_back(&g.value(v).type);
  return t;
}

std::vector<const TensorType*> output_types(const Graph& g, const Node& n) {
  std::vector<const TensorType*> t;
  t.reserve(n.outputs.size());
  for (ValueId v : n.outputs) t.push_back(&g.value(v).type);
  return t;
}

}  // namespace dlmem::ir
