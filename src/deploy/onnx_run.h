// Forward inference of an imported ONNX model on given inputs (`dlmem run`): the
// model's graph in inference mode, a plan under any policy and budget, the executor,
// and the model's outputs as ONNX tensors; plus the ONNX test runner's comparison.
//
//   deploy::OnnxRun r = deploy::run_onnx("model.onnx", {{"x", models::onnx::read_tensor("input_0.pb")}});
//   r.outputs[0];                      // the first graph output, named as the model names it
//   deploy::compare(expected, r.outputs[0]).ok;
#pragma once

#include <map>
#include <string>
#include <vector>

#include "models/onnx/onnx.h"

namespace dlmem::deploy {

struct OnnxRunOptions {
  std::string policy = "default";  // any policy (`auto` with a budget)
  std::string budget;              // "", bytes or a share ("50%") of the default plan's arena
  int threads = 0;
};

struct OnnxRun {
  std::vector<models::onnx::Tensor> outputs;  // in the model's output order
  std::vector<bool> at_import;                // per output: computed at import (shapes, constants)
  uint64_t planned_peak = 0;                  // device bytes the plan predicts
  uint64_t measured_peak = 0;                 // device bytes the executor used
  uint64_t arena = 0;
  std::string policy;                         // the policy that planned (auto: its choice)
};

// Inputs by ONNX name; their shapes fix the model's (a symbolic batch included). Error
// naming the input when one is missing, unknown, or of the wrong type or size.
OnnxRun run_onnx(const std::string& model, const std::map<std::string, models::onnx::Tensor>& inputs,
                 const OnnxRunOptions& = {});

// The ONNX backend test runner's check (numpy.testing.assert_allclose): every element
// |actual - expected| <= atol + rtol * |expected|, NaNs in the same places.
struct Comparison {
  bool ok = true;
  std::string message;     // the first mismatch, or a shape or type difference
  double max_abs_error = 0;
  int64_t mismatches = 0;
};
Comparison compare(const models::onnx::Tensor& expected, const models::onnx::Tensor& actual,
                   double rtol = 1e-3, double atol = 1e-7);

}  // namespace dlmem::deploy
