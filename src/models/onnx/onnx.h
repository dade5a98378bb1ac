// ONNX models: import a ModelProto as an ir::Graph (its initializers become the graph's
// weights, with their values), read and write ONNX TensorProto files, and write a
// model back with new weights.
//
//   auto m = models::onnx::import_model("resnet18.onnx", {.batch = 32});
//   m.graph;                       // forward graph: every node a dlmem op
//   m.inputs[0].name;              // "input" -- the ONNX names of the graph's inputs
//   auto t = models::onnx::read_tensor("test_data_set_0/input_0.pb");
//
// What import does (Note [ONNX import] in import.cpp): opsets 13 to 20 of the default
// domain (and models of opsets 7 to 12 whose ops mean what they do at 13, with the
// older attribute forms of Clip, Softmax, Squeeze, Split, Slice, Pad); shapes are static, so every value computed from shapes and constants only
// (Shape, Gather, Concat, Unsqueeze, Constant, arithmetic on them ...) is evaluated at
// import and what it feeds (Reshape's shape, Slice's bounds, ...) becomes an attribute;
// symbolic dimensions at position 0 of an input are the batch (ImportOptions::batch).
// Each ONNX op becomes one or a few dlmem ops (supported_ops() lists them); anything
// else is an Error naming the op, the node, the opset and what is supported.
//
// As a zoo model (models::build_model("FILE.onnx", config), `--onnx FILE` on the
// command line), the graph also follows the zoo's conventions (models/zoo.h): the
// data input is named "input" (f32) or "ids" (integer), a "label" and the mean softmax
// cross-entropy of the first output become the loss (the ONNX model's output must be
// [batch, classes] logits).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace dlmem::models::onnx {

// A tensor on the host, as ONNX files hold them: float data or integer data (int64,
// int32, int8, uint8, bool all read as int64), with the ONNX element type it came as.
struct Tensor {
  std::string name;
  ir::Shape shape;
  int elem_type = 1;            // onnx::TensorProto::DataType (1 float, 7 int64, ...)
  std::vector<float> f;         // float types (float, double, float16 read as float)
  std::vector<int64_t> i;       // integer and bool types
  bool is_float() const { return elem_type == 1 || elem_type == 10 || elem_type == 11 || elem_type == 16; }
  int64_t numel() const;
};

// A TensorProto file (the ONNX backend tests' input_0.pb). Error naming the file when
// it cannot be read or parsed, or holds a type dlmem does not read (string, complex).
Tensor read_tensor(const std::string& path);
// Writes `t` as a TensorProto file (float32 for float tensors; the integer type it was
// read as otherwise), atomically.
void write_tensor(const std::string& path, const Tensor& t);

struct ImportOptions {
  int64_t batch = 1;             // binds a symbolic first dimension of every input
  bool training = true;          // batch-norm on batch statistics, dropout active
  // Shapes of inputs by ONNX name, overriding the model's (dlmem run: the given files').
  std::map<std::string, ir::Shape> input_shapes;
  // Values of inputs, when known at import (dlmem run): integer and bool inputs are then
  // constants (a runtime shape, Slice's bounds, a Dropout's training_mode given as an
  // input); float inputs stay runtime values, and a node that needs one as a parameter
  // (Clip's min, Pow's exponent) reads it from here.
  std::map<std::string, Tensor> input_values;
  // The zoo's conventions (see above): "input"/"ids", "label", softmax cross-entropy.
  bool as_zoo_model = false;
  uint64_t seed = 0x5eed;        // dropout seeds
  std::vector<std::string> frozen;  // initializers that are not trained
};

struct Imported {
  ir::Graph graph;
  int64_t opset = 0;
  std::string producer;  // "pytorch 1.13.0"
  // The model's graph inputs (not initializers) and outputs, by ONNX name.
  struct Port {
    std::string name;
    // kNoValue: an input only used as a constant (ImportOptions::input_values), or an
    // output computed at import (in `constants`)
    ir::ValueId value = ir::kNoValue;
    int elem_type = 1;
  };
  std::vector<Port> inputs, outputs;
  std::map<std::string, Tensor> constants;  // outputs computed at import
  std::map<std::string, int> op_counts;     // ONNX op type -> nodes
};

// Error naming the file on a malformed or truncated file, an unsupported op (its type,
// node, opset and the supported ops), a missing initializer, mismatched shapes or an
// unreadable external-data file.
Imported import_model(const std::string& path, const ImportOptions& = {});
// The same on a model's bytes; `name` stands for the file in errors (external data is
// looked up beside it). The fuzzer's entry point.
Imported import_model_bytes(std::span<const std::byte> bytes, const std::string& name, const ImportOptions& = {});
// A TensorProto from bytes (read_tensor without the file).
Tensor parse_tensor(std::span<const std::byte> bytes, const std::string& name);

// Writes the model at `source` again with the initializers named in `weights` replaced
// by these values (same shapes), e.g. the weights after training (`train --export`).
void export_model(const std::string& source, const std::string& path,
                  const std::map<std::string, std::vector<float>>& weights);

// The names of the model's graph inputs that are not initializers, in order, read
// from the file without importing it.
std::vector<std::string> input_names(const std::string& path);

// ONNX op types import understands, sorted.
std::vector<std::string> supported_ops();

}  // namespace dlmem::models::onnx
