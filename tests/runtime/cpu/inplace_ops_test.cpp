// Every (output, input) pair that an OpDef lists in `inplace` really works in place on
// the cpu backend: running the node with the output pointer equal to the input's gives
// the same bits, in every output and every mutated input, as running it out of place.
// The in-place pass (src/plan/share/inplace.h) relies on exactly these facts; a pair
// that fails here is removed from its OpDef (the op fact is wrong), never patched in
// the kernel.
//
// Shapes are odd on purpose (tails of vector loops) and, for the normalisations, with
// 16 channels (oneDNN's blocked paths). Each op is run with several seeds.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/op.h"
#include "runtime/backend.h"
#include "runtime/comm.h"

namespace dlmem {
namespace {

using ir::DType;
using ir::OpKind;
using ir::TensorType;

struct OpCase {
  std::vector<TensorType> inputs;
  ir::Attrs attrs;
  // Range of uniform f32 values per input (default [-2, 2]).
  std::map<int, std::pair<float, float>> range;
  int64_t classes = 0;  // i32 inputs: labels in [0, classes)
};

TensorType f32(ir::Shape s) { return {std::move(s), DType::f32}; }

// A node of each op kind that lists in-place pairs. A new op with pairs and no case
// here fails the test below: add its case.
std::map<OpKind, std::vector<OpCase>> cases() {
  std::map<OpKind, std::vector<OpCase>> c;
  const ir::Shape odd{3, 5, 7, 11};  // 1155 elements
  for (OpKind k : {OpKind::relu, OpKind::relu6, OpKind::gelu, OpKind::tanh, OpKind::sigmoid, OpKind::scale,
                   OpKind::causal_mask, OpKind::causal_mask_bwd, OpKind::softmax})
    c[k] = {OpCase{{f32(odd)}}};
  c[OpKind::causal_mask] = {OpCase{{f32({3, 2, 13, 13})}}};
  c[OpKind::causal_mask_bwd] = {OpCase{{f32({3, 2, 13, 13})}}};
  c[OpKind::scale].front().attrs.alpha = 0.37;
  c[OpKind::allreduce] = {OpCase{{f32(odd)}}};  // over one rank (the test's communicator): staged in its workspace
  for (OpKind k : {OpKind::relu_bwd, OpKind::relu6_bwd, OpKind::gelu_bwd, OpKind::tanh_bwd, OpKind::sigmoid_bwd,
                   OpKind::softmax_bwd})
    c[k] = {OpCase{{f32(odd), f32(odd)}}};
  c[OpKind::softmax_bwd].front().range[1] = {0.0f, 1.0f};
  for (OpKind k : {OpKind::add, OpKind::mul, OpKind::sub, OpKind::div})
    c[k] = {OpCase{{f32(odd), f32(odd)}}, OpCase{{f32(odd), f32({7, 1})}}, OpCase{{f32(odd), f32({1, 5, 1, 11})}}};
  for (OpCase& d : c[OpKind::div]) d.range[1] = {0.5f, 2.0f};
  for (OpKind k : {OpKind::pow, OpKind::sqrt, OpKind::erf, OpKind::exp, OpKind::log, OpKind::leaky_relu,
                   OpKind::log_softmax}) {
    OpCase u{{f32(odd)}};
    if (k == OpKind::pow || k == OpKind::sqrt || k == OpKind::log) u.range[0] = {0.1f, 2.0f};
    u.attrs.alpha = k == OpKind::pow ? 2.5 : 0.1;
    c[k] = {u};
  }
  for (OpKind k : {OpKind::erf_bwd, OpKind::leaky_relu_bwd, OpKind::log_softmax_bwd}) {
    OpCase u{{f32(odd), f32(odd)}};
    u.attrs.alpha = 0.1;
    if (k == OpKind::log_softmax_bwd) u.range[1] = {-3.0f, 0.0f};  // log-probabilities
    c[k] = {u};
  }
  {
    OpCase d{{f32(odd)}};
    d.attrs.p = 0.3;
    d.attrs.seed = 1234;
    c[OpKind::dropout] = {d};
    OpCase b{{f32(odd), TensorType{odd, DType::u8}}};
    b.attrs.p = 0.3;
    c[OpKind::dropout_bwd] = {b};
  }
  {
    OpCase x{{f32({4, 9}), f32({4, 9}), {{4}, DType::i32}}};
    x.inputs[0] = f32({1});
    x.range[1] = {0.0f, 1.0f};
    x.classes = 9;
    c[OpKind::softmax_xent_bwd] = {x};
  }
  for (int64_t ch : {int64_t{3}, int64_t{16}}) {
    const ir::Shape x{2, ch, 5, 7};
    OpCase bn{{f32(x), f32({ch}), f32({ch}), f32({ch}), f32({ch})}};
    bn.range[4] = {0.5f, 1.5f};  // running variance
    c[OpKind::batch_norm].push_back(bn);
    OpCase inf = bn;
    inf.attrs.training = false;
    c[OpKind::batch_norm].push_back(inf);
    OpCase bwd{{f32(x), f32(x), f32({ch}), f32({ch}), f32({ch})}};
    bwd.range[4] = {0.5f, 1.5f};  // batch variance
    c[OpKind::batch_norm_bwd].push_back(bwd);
  }
  for (int64_t d : {int64_t{9}, int64_t{64}}) {
    c[OpKind::layer_norm].push_back(OpCase{{f32({3, 5, d}), f32({d}), f32({d})}});
    OpCase bwd{{f32({3, 5, d}), f32({3, 5, d}), f32({d}), f32({15}), f32({15})}};
    bwd.range[4] = {0.5f, 1.5f};
    c[OpKind::layer_norm_bwd].push_back(bwd);
  }
  return c;
}

using Bytes = std::vector<std::byte>;

// "" when equal, else where the first difference is (gtest would print every byte).
std::string diff(const Bytes& a, const Bytes& b) {
  if (a.size() != b.size()) return "sizes differ";
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return "first difference at byte " + std::to_string(i) + " of " + std::to_string(a.size());
  return "";
}

struct NodeRun {
  std::vector<Bytes> outputs;
  std::vector<Bytes> inputs;  // after the run (mutated inputs, and the overwritten one)
};

// Runs node `n` of `g` on copies of `data`. With in_place = {o, k}, output o is
// written into input k's memory.
NodeRun run_node(runtime::Backend& be, const ir::Graph& g, const ir::Node& n, const std::vector<Bytes>& data,
             std::pair<int, int> in_place, uint64_t step) {
  std::vector<Bytes> ins = data;
  std::vector<Bytes> outs;
  for (ir::ValueId v : n.outputs) outs.emplace_back(g.value(v).type.bytes(), std::byte{0x5a});
  Bytes ws(be.workspace_bytes(g, n));
  std::vector<void*> in_ptrs, out_ptrs;
  for (Bytes& b : ins) in_ptrs.push_back(b.data());
  for (Bytes& b : outs) out_ptrs.push_back(b.data());
  if (in_place.first >= 0)
    out_ptrs[static_cast<size_t>(in_place.first)] = ins[static_cast<size_t>(in_place.second)].data();
  be.run(g, n, runtime::KernelArgs{in_ptrs, out_ptrs, ws.empty() ? nullptr : ws.data(), step, false});
  if (in_place.first >= 0)
    outs[static_cast<size_t>(in_place.first)] = ins[static_cast<size_t>(in_place.second)];
  return {std::move(outs), std::move(ins)};
}

std::vector<Bytes> random_inputs(const ir::Graph& g, const ir::Node& n, const OpCase& c, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<Bytes> data;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const TensorType& t = g.value(n.inputs[i]).type;
    Bytes b(t.bytes());
    const size_t count = static_cast<size_t>(t.numel());
    if (t.dtype == DType::f32) {
      auto r = c.range.count(static_cast<int>(i)) ? c.range.at(static_cast<int>(i)) : std::pair{-2.0f, 2.0f};
      std::uniform_real_distribution<float> d(r.first, r.second);
      std::vector<float> v(count);
      for (float& x : v) x = d(gen);
      std::memcpy(b.data(), v.data(), b.size());
    } else if (t.dtype == DType::u8) {
      for (std::byte& x : b) x = std::byte(gen() & 1u);
    } else {
      std::vector<int32_t> v(count);
      for (int32_t& x : v) x = static_cast<int32_t>(gen() % static_cast<uint32_t>(c.classes));
      std::memcpy(b.data(), v.data(), b.size());
    }
    data.push_back(std::move(b));
  }
  return data;
}

TEST(InplaceOps, EveryListedPairGivesTheSameBitsAsOutOfPlace) {
  auto be = runtime::make_cpu_backend({.threads = 2});
  const auto comms = runtime::make_thread_comms(1);  // allreduce over one rank
  be->set_communicator(comms[0].get());
  const auto all = cases();
  int checked = 0;
  for (int kind = 0; kind < ir::kNumOps; ++kind) {
    const OpKind op = static_cast<OpKind>(kind);
    const ir::OpDef& def = ir::op_def(op);
    if (def.inplace.empty()) continue;
    ASSERT_TRUE(all.count(op)) << "op " << def.name << " lists in-place pairs but has no case in this test";
    for (const OpCase& c : all.at(op)) {
      ir::Graph g;
      std::vector<ir::ValueId> ins;
      for (size_t i = 0; i < c.inputs.size(); ++i)
        ins.push_back(g.add_value("in" + std::to_string(i), c.inputs[i], ir::Role::input));
      const ir::NodeId id = g.add_node(op, std::string(def.name), c.attrs, ins, ir::Role::activation);
      const ir::Node& n = g.node(id);
      for (const auto& [o, k] : def.inplace) {
        SCOPED_TRACE(std::string(def.name) + " output " + std::to_string(o) + " over input " + std::to_string(k) +
                     " (" + g.value(n.inputs[static_cast<size_t>(k)]).type.str() + ")");
        ASSERT_LT(static_cast<size_t>(o), n.outputs.size());
        ASSERT_LT(static_cast<size_t>(k), n.inputs.size());
        // The pass only aliases buffers of equal size; pairs whose sizes differ in this
        // case (a broadcast operand) are not exercised by it.
        if (g.value(n.outputs[static_cast<size_t>(o)]).type.bytes() != g.value(n.inputs[static_cast<size_t>(k)]).type.bytes())
          continue;
        for (uint32_t seed : {1u, 2u, 3u}) {
          const auto data = random_inputs(g, n, c, seed * 7919u + static_cast<uint32_t>(kind));
          const NodeRun ref = run_node(*be, g, n, data, {-1, -1}, seed);
          const NodeRun got = run_node(*be, g, n, data, {o, k}, seed);
          for (size_t q = 0; q < ref.outputs.size(); ++q)
            EXPECT_EQ(diff(ref.outputs[q], got.outputs[q]), "") << "output " << q << " (seed " << seed << ")";
          for (size_t q = 0; q < ref.inputs.size(); ++q) {
            if (q == static_cast<size_t>(k)) continue;
            EXPECT_EQ(diff(ref.inputs[q], got.inputs[q]), "") << "input " << q << " after the run (seed " << seed << ")";
          }
        }
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 25);
}

}  // namespace
}  // namespace dlmem
