#include "deploy/onnx_run.h"

#include <cmath>
#include <limits>

#include "planners/planner.h"
#include "runtime/backend.h"
#include "runtime/executor.h"
#include "sim/cost_model.h"
#include "sim/device_profile.h"
#include "train/init.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::deploy {

using models::onnx::Tensor;

namespace {

// The bytes the executor writes for an input value: f32, or token ids as i32.
std::vector<std::byte> input_bytes(const std::string& name, const Tensor& t, const ir::TensorType& want) {
  if (t.shape != want.shape)
    throw Error("input '", name, "' is ", ir::shape_str(t.shape), ", the model imported it as ", want.str());
  std::vector<std::byte> b(want.bytes());
  if (want.dtype == ir::DType::f32) {
    if (!t.is_float()) throw Error("input '", name, "' holds integers; the model takes float");
    std::memcpy(b.data(), t.f.data(), b.size());
    return b;
  }
  if (t.is_float()) throw Error("input '", name, "' holds floats; the model takes integer ids");
  std::vector<int32_t> ids;
  for (int64_t v : t.i) {
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
      throw Error("input '", name, "' holds ", v, ", outside the 32-bit ids dlmem runs on");
    ids.push_back(static_cast<int32_t>(v));
  }
  std::memcpy(b.data(), ids.data(), b.size());
  return b;
}

}  // namespace

OnnxRun run_onnx(const std::string& model, const std::map<std::string, Tensor>& inputs, const OnnxRunOptions& o) {
  models::onnx::ImportOptions io{.training = false};
  for (const auto& [name, t] : inputs) {
    io.input_shapes[name] = t.shape;
    io.input_values[name] = t;
  }
  models::onnx::Imported m = models::onnx::import_model(model, io);
  std::vector<std::string> names;
  for (const auto& p : m.inputs) names.push_back(p.name);
  for (const auto& [name, t] : inputs)
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      throw Error(model, " has no input '", name, "'; its inputs are: ", known);
    }
  for (const auto& p : m.inputs)
    if (!inputs.count(p.name))
      throw Error(model, ": input '", p.name, "' is not given (--input ", p.name, "=FILE.pb)");

  ir::Graph& g = m.graph;
  auto be = runtime::make_cpu_backend({.threads = o.threads});
  runtime::attach_workspaces(g, *be);
  const sim::CostModel cost = sim::roofline_cost_model(g, sim::device_profile("host"));
  uint64_t budget = 0;
  if (!o.budget.empty()) {
    const Budget b = parse_budget(o.budget);
    budget = b.is_fraction ? b.resolve(planners::make_plan(g, cost, {.policy = "default"}).device_arena) : b.bytes;
  }
  const plan::Plan p = planners::make_plan(g, cost, {.policy = o.policy, .budget = budget});
  runtime::Executor ex(g, p, *be);
  train::init_weights(ex, g, 0);
  for (const auto& port : m.inputs) {
    // Inputs read only as constants, or by no node, have no memory in the plan.
    if (port.value == ir::kNoValue) continue;
    const ir::Value& v = g.value(port.value);
    const bool kept = std::find(g.outputs.begin(), g.outputs.end(), port.value) != g.outputs.end();
    if (v.consumers.empty() && !kept) continue;
    ex.write(port.value, input_bytes(port.name, inputs.at(port.name), v.type));
  }
  ex.run_step(0);

  OnnxRun r;
  for (const auto& port : m.outputs) {
    Tensor t;
    if (port.value == ir::kNoValue) {
      t = m.constants.at(port.name);
    } else {
      const ir::Value& v = g.value(port.value);
      t.shape = v.type.shape;
      if (v.type.dtype == ir::DType::f32) {
        t.elem_type = 1;
        t.f = ex.read_f32(port.value);
      } else {
        std::vector<int32_t> ids(static_cast<size_t>(v.type.numel()));
        ex.read(port.value, std::as_writable_bytes(std::span(ids)));
        t.elem_type = port.elem_type;
        t.i.assign(ids.begin(), ids.end());
      }
    }
    t.name = port.name;
    r.outputs.push_back(std::move(t));
    r.at_import.push_back(port.value == ir::kNoValue);
  }
  r.planned_peak = p.stats.peak_device;
  r.measured_peak = ex.stats().peak_device;
  r.arena = p.device_arena;
  r.policy = p.stats.chosen.empty() ? o.policy : p.stats.chosen;
  return r;
}

Comparison compare(const Tensor& expected, const Tensor& actual, double rtol, double atol) {
  Comparison c;
  if (expected.shape != actual.shape) {
    c.ok = false;
    c.message = "shape " + ir::shape_str(actual.shape) + ", expected " + ir::shape_str(expected.shape);
    return c;
  }
  const int64_t n = expected.numel();
  auto has_data = [n](const Tensor& t) {
    return static_cast<int64_t>(t.is_float() ? t.f.size() : t.i.size()) == n;
  };
  if (!has_data(expected) || !has_data(actual) || expected.is_float() != actual.is_float()) {
    c.ok = false;
    c.message = std::string("element types differ: ") + (actual.is_float() ? "float" : "integer") + ", expected " +
                (expected.is_float() ? "float" : "integer");
    return c;
  }
  for (int64_t k = 0; k < n; ++k) {
    const double e = expected.is_float() ? expected.f[static_cast<size_t>(k)] : static_cast<double>(expected.i[static_cast<size_t>(k)]);
    const double a = actual.is_float() ? actual.f[static_cast<size_t>(k)] : static_cast<double>(actual.i[static_cast<size_t>(k)]);
    bool good;
    if (std::isnan(e) || std::isnan(a)) {
      good = std::isnan(e) && std::isnan(a);
    } else if (std::isinf(e) || std::isinf(a)) {
      good = e == a;
    } else {
      const double err = std::abs(a - e);
      c.max_abs_error = std::max(c.max_abs_error, err);
      good = err <= atol + rtol * std::abs(e);
    }
    if (!good) {
      if (c.ok) c.message = "element " + std::to_string(k) + " is " + std::to_string(a) + ", expected " + std::to_string(e);
      c.ok = false;
      ++c.mismatches;
    }
  }
  if (!c.ok) c.message += " (" + std::to_string(c.mismatches) + " of " + std::to_string(n) + " elements differ)";
  return c;
}

}  // namespace dlmem::deploy
