// ONNX's protobuf classes (Debian's libonnx-dev, ONNX_NAMESPACE=onnx) and the
// conversions the importer and the tensor files share. Private to src/models/onnx.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include "models/onnx/onnx.h"

namespace dlmem::models::onnx {

namespace pb = ::onnx;

// A TensorProto's values; `file` names it in errors, `dir` is where external data lives.
Tensor from_proto(const pb::TensorProto&, const std::string& file, const std::string& dir);
pb::TensorProto to_proto(const Tensor&);
// Error naming the file when it is not a parseable model.
pb::ModelProto read_model_proto(const std::string& path);
pb::ModelProto parse_model_proto(std::span<const std::byte> bytes, const std::string& name);

}  // namespace dlmem::models::onnx
