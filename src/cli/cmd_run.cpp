// `dlmem run --onnx FILE`: forward inference of an ONNX model on ONNX TensorProto
// inputs (the format of ONNX's backend test data), under any memory policy; writes the
// outputs as TensorProto files and, with --expect, checks them as the ONNX test runner
// does (rtol 1e-3, atol 1e-7).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "deploy/onnx_run.h"
#include "util/error.h"
#include "util/format.h"
#include "util/table.h"

namespace dlmem::cli {

namespace {

struct RunArgs {
  std::string onnx;
  std::vector<std::string> inputs;  // NAME=FILE.pb or FILE.pb (in the model's input order)
  std::string test_data;            // a test_data_set_N folder: input_*.pb, output_*.pb
  std::string output_dir;
  std::string policy = "default";
  std::string budget;
  std::vector<std::string> expect;  // output_K.pb files to compare with, in output order
  double rtol = 1e-3, atol = 1e-7;
  int threads = 0;
  bool json = false;
};

// Files dir/prefix_0.pb, prefix_1.pb, ... that exist.
std::vector<std::string> numbered(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> v;
  for (int k = 0;; ++k) {
    const std::filesystem::path p = std::filesystem::path(dir) / (prefix + "_" + std::to_string(k) + ".pb");
    if (!std::filesystem::exists(p)) break;
    v.push_back(p.string());
  }
  return v;
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

std::string stats(const models::onnx::Tensor& t) {
  if (!t.is_float() || t.f.empty()) return "";
  double lo = t.f[0], hi = t.f[0], sum = 0;
  for (float v : t.f) lo = std::min<double>(lo, v), hi = std::max<double>(hi, v), sum += v;
  return "min " + num(lo) + ", max " + num(hi) + ", mean " + num(sum / static_cast<double>(t.f.size()));
}

int run(RunArgs a) {
  if (!a.onnx.ends_with(".onnx")) throw Error("--onnx expects an ONNX model file (*.onnx), got '", a.onnx, "'");
  if (!a.test_data.empty()) {
    if (!std::filesystem::is_directory(a.test_data))
      throw Error("--test-data '", a.test_data, "' is not a folder (it should hold input_0.pb ... and output_0.pb ...)");
    for (const auto& f : numbered(a.test_data, "input")) a.inputs.push_back(f);
    if (a.expect.empty()) a.expect = numbered(a.test_data, "output");
  }
  // Unnamed inputs take the name stored in the file, else the model's order.
  std::map<std::string, models::onnx::Tensor> inputs;
  std::vector<std::pair<std::string, models::onnx::Tensor>> unnamed;
  for (const std::string& spec : a.inputs) {
    const size_t eq = spec.find('=');
    if (eq != std::string::npos && !std::filesystem::exists(spec)) {
      inputs[spec.substr(0, eq)] = models::onnx::read_tensor(spec.substr(eq + 1));
    } else {
      models::onnx::Tensor t = models::onnx::read_tensor(spec);
      unnamed.emplace_back(t.name, std::move(t));
    }
  }
  if (!unnamed.empty()) {
    const std::vector<std::string> names = models::onnx::input_names(a.onnx);
    size_t next = 0;
    for (auto& [name, t] : unnamed) {
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        while (next < names.size() && inputs.count(names[next])) ++next;
        if (next == names.size()) throw Error("more input files than ", a.onnx, " has inputs (", names.size(), ")");
        name = names[next];
      }
      inputs[name] = std::move(t);
    }
  }
  const deploy::OnnxRun r = deploy::run_onnx(a.onnx, inputs, {.policy = a.policy, .budget = a.budget, .threads = a.threads});
  if (!a.output_dir.empty()) {
    std::filesystem::create_directories(a.output_dir);
    for (size_t k = 0; k < r.outputs.size(); ++k)
      models::onnx::write_tensor((std::filesystem::path(a.output_dir) / ("output_" + std::to_string(k) + ".pb")).string(),
                                 r.outputs[k]);
  }
  if (!a.expect.empty() && a.expect.size() != r.outputs.size())
    throw Error(a.expect.size(), " expected output files for the model's ", r.outputs.size(), " outputs");
  bool ok = true;
  std::vector<deploy::Comparison> cmp;
  for (size_t k = 0; k < a.expect.size(); ++k) {
    cmp.push_back(deploy::compare(models::onnx::read_tensor(a.expect[k]), r.outputs[k], a.rtol, a.atol));
    ok = ok && cmp.back().ok;
  }
  if (a.json) {
    nlohmann::json j{{"model", a.onnx}, {"policy", r.policy}, {"planned_peak", r.planned_peak},
                     {"measured_peak", r.measured_peak}, {"arena", r.arena}};
    for (size_t k = 0; k < r.outputs.size(); ++k) {
      nlohmann::json o{{"name", r.outputs[k].name}, {"shape", r.outputs[k].shape}};
      if (k < cmp.size()) o["match"] = cmp[k].ok, o["max_abs_error"] = cmp[k].max_abs_error, o["message"] = cmp[k].message;
      j["outputs"].push_back(o);
    }
    if (!cmp.empty()) j["ok"] = ok;
    std::cout << j.dump(2) << "\n";
  } else {
    Table t({{"output", Align::Left}, {"shape", Align::Left}, {"values", Align::Left}, {"check", Align::Left}});
    for (size_t k = 0; k < r.outputs.size(); ++k) {
      std::string check;
      if (k < cmp.size())
        check = cmp[k].ok ? "ok (max |error| " + num(cmp[k].max_abs_error) + ")" : "MISMATCH: " + cmp[k].message;
      t.add_row({r.outputs[k].name, ir::shape_str(r.outputs[k].shape), stats(r.outputs[k]), check});
    }
    std::cout << t.str();
    std::cout << "memory: planned peak " << human_bytes(r.planned_peak) << ", measured " << human_bytes(r.measured_peak)
              << ", arena " << human_bytes(r.arena) << " (" << r.policy << ")\n";
    if (!a.output_dir.empty()) std::cout << "wrote " << r.outputs.size() << " outputs to " << a.output_dir << "\n";
  }
  return ok ? 0 : 1;
}

}  // namespace

std::function<int()> add_run(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "forward inference of an ONNX model on TensorProto inputs (ONNX test data format)");
  auto a = std::make_shared<RunArgs>();
  cmd->add_option("--onnx", a->onnx, "the model (*.onnx)")->required();
  cmd->add_option("--input,-i", a->inputs, "NAME=FILE.pb, or FILE.pb (named by the file, else in the model's input order)");
  cmd->add_option("--test-data", a->test_data, "a test_data_set_N folder: its input_K.pb are the inputs, output_K.pb the expected outputs");
  cmd->add_option("--expect", a->expect, "expected output files (output_K.pb), in the model's output order");
  cmd->add_option("--output-dir,-o", a->output_dir, "write the outputs as output_K.pb (TensorProto) there");
  cmd->add_option("--policy", a->policy, "memory policy for the inference plan")->capture_default_str();
  cmd->add_option("--budget", a->budget, "device memory budget (bytes, or a share of the default plan's, e.g. 50%)");
  cmd->add_option("--rtol", a->rtol, "relative tolerance of --expect")->capture_default_str();
  cmd->add_option("--atol", a->atol, "absolute tolerance of --expect")->capture_default_str();
  cmd->add_option("--threads", a->threads, "cpu threads (0: OpenMP's default)");
  cmd->add_flag("--json", a->json, "one JSON object");
  return [a] { return run(*a); };
}

}  // namespace dlmem::cli
