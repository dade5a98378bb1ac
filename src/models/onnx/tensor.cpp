// ONNX TensorProto files and initializers: decoding every storage form a TensorProto
// has (raw little-endian bytes, the typed repeated fields, external data files), and
// writing tensors and models back.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "models/onnx/onnx.h"
#include "models/onnx/proto.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace dlmem::models::onnx {

using ir::Shape;

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

// Bytes per element of the types dlmem reads (0: not readable).
size_t elem_bytes(int t) {
  switch (t) {
    case pb::TensorProto::FLOAT: case pb::TensorProto::INT32: case pb::TensorProto::UINT32: return 4;
    case pb::TensorProto::DOUBLE: case pb::TensorProto::INT64: case pb::TensorProto::UINT64: return 8;
    case pb::TensorProto::INT16: case pb::TensorProto::UINT16: case pb::TensorProto::FLOAT16:
    case pb::TensorProto::BFLOAT16: return 2;
    case pb::TensorProto::INT8: case pb::TensorProto::UINT8: case pb::TensorProto::BOOL: return 1;
    default: return 0;
  }
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      uint32_t m = man;
      do { ++e; m <<= 1; } while ((m & 0x400u) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((m & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Element `k` of little-endian storage `p` of type `t`, as float or integer.
double element(const char* p, int t, size_t k, int64_t* as_int) {
  auto rd = [&](auto v) {
    std::memcpy(&v, p + k * sizeof(v), sizeof(v));
    return v;
  };
  switch (t) {
    case pb::TensorProto::FLOAT: return rd(float{});
    case pb::TensorProto::DOUBLE: return rd(double{});
    case pb::TensorProto::FLOAT16: return half_to_float(rd(uint16_t{}));
    case pb::TensorProto::BFLOAT16: {
      const uint32_t b = static_cast<uint32_t>(rd(uint16_t{})) << 16;
      float f;
      std::memcpy(&f, &b, 4);
      return f;
    }
    case pb::TensorProto::INT64: return static_cast<double>(*as_int = rd(int64_t{}));
    case pb::TensorProto::UINT64: return static_cast<double>(*as_int = static_cast<int64_t>(rd(uint64_t{})));
    case pb::TensorProto::INT32: return *as_int = rd(int32_t{});
    case pb::TensorProto::UINT32: return static_cast<double>(*as_int = rd(uint32_t{}));
    case pb::TensorProto::INT16: return *as_int = rd(int16_t{});
    case pb::TensorProto::UINT16: return *as_int = rd(uint16_t{});
    case pb::TensorProto::INT8: return *as_int = rd(int8_t{});
    case pb::TensorProto::UINT8: case pb::TensorProto::BOOL: return *as_int = rd(uint8_t{});
    default: return 0;
  }
}

std::string type_name(int t) {
  return pb::TensorProto::DataType_IsValid(t) ? pb::TensorProto::DataType_Name(static_cast<pb::TensorProto::DataType>(t))
                                              : "type " + std::to_string(t);
}

// The bytes of an external-data tensor (location/offset/length keys, the location
// relative to the model's folder).
std::string external_bytes(const pb::TensorProto& t, const std::string& file, const std::string& dir,
                           std::string* data_file) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") offset = std::stoll(kv.value());
    else if (kv.key() == "length") length = std::stoll(kv.value());
  }
  if (location.empty())
    throw Error(file, ": tensor '", t.name(), "' keeps its data externally but names no location");
  const std::filesystem::path p = std::filesystem::path(dir) / location;
  *data_file = p.string();
  std::ifstream in(p, std::ios::binary);
  if (!in)
    throw Error(file, ": tensor '", t.name(), "' keeps its data in '", p.string(),
                "', which cannot be opened; keep that file next to the model (or save the model with "
                "onnx.save(model, path, save_as_external_data=False))");
  in.seekg(0, std::ios::end);
  const int64_t size = in.tellg();
  if (length < 0) length = size - offset;
  if (offset < 0 || offset + length > size)
    throw Error(file, ": tensor '", t.name(), "' wants bytes [", offset, ", ", offset + length, ") of '", p.string(),
                "', which has ", size);
  std::string bytes(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(bytes.data(), length);
  return bytes;
}

}  // namespace

Tensor from_proto(const pb::TensorProto& t, const std::string& file, const std::string& dir) {
  Tensor out;
  out.name = t.name();
  out.elem_type = t.data_type();
  int64_t n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0) throw Error(file, ": tensor '", t.name(), "' has a negative dimension ", d);
    if (d > 0 && n > (int64_t{1} << 40) / d)
      throw Error(file, ": tensor '", t.name(), "' has dimensions ", ir::shape_str(Shape(t.dims().begin(), t.dims().end())),
                  ", over 2^40 elements (a corrupt file?)");
    out.shape.push_back(d);
    n *= d;
  }
  const size_t eb = elem_bytes(t.data_type());
  if (eb == 0)
    throw Error(file, ": tensor '", t.name(), "' is ", type_name(t.data_type()),
                "; dlmem reads float, double, float16, bfloat16, integer and bool tensors");
  const bool fl = out.is_float() || t.data_type() == pb::TensorProto::DOUBLE;
  auto put = [&](double v, int64_t iv) {
    if (fl) out.f.push_back(static_cast<float>(v));
    else out.i.push_back(iv);
  };
  std::string ext, data_file;
  const std::string* raw = nullptr;
  if (t.data_location() == pb::TensorProto::EXTERNAL) {
    ext = external_bytes(t, file, dir, &data_file);
    raw = &ext;
  } else if (t.has_raw_data()) {
    raw = &t.raw_data();
  }
  if (raw) {
    if (raw->size() != static_cast<size_t>(n) * eb)
      throw Error(file, ": tensor '", t.name(), "' of shape ", ir::shape_str(out.shape), " ", type_name(t.data_type()),
                  " needs ", static_cast<size_t>(n) * eb, " bytes of data but has ", raw->size(),
                  data_file.empty() ? " (a truncated file?)" : " in its external data file '" + data_file + "' (truncated?)");
    for (int64_t k = 0; k < n; ++k) {
      int64_t iv = 0;
      const double v = element(raw->data(), t.data_type(), static_cast<size_t>(k), &iv);
      put(v, iv);
    }
  } else {
    int64_t have = 0;
    switch (t.data_type()) {
      case pb::TensorProto::FLOAT: have = t.float_data_size(); for (float v : t.float_data()) put(v, 0); break;
      case pb::TensorProto::DOUBLE: have = t.double_data_size(); for (double v : t.double_data()) put(v, 0); break;
      case pb::TensorProto::INT64: have = t.int64_data_size(); for (int64_t v : t.int64_data()) put(0, v); break;
      case pb::TensorProto::UINT32: case pb::TensorProto::UINT64:
        have = t.uint64_data_size();
        for (uint64_t v : t.uint64_data()) put(0, static_cast<int64_t>(v));
        break;
      case pb::TensorProto::FLOAT16:
        have = t.int32_data_size();
        for (int32_t v : t.int32_data()) put(half_to_float(static_cast<uint16_t>(v)), 0);
        break;
      case pb::TensorProto::BFLOAT16:
        have = t.int32_data_size();
        for (int32_t v : t.int32_data()) {
          const uint32_t b = static_cast<uint32_t>(v) << 16;
          float f;
          std::memcpy(&f, &b, 4);
          put(f, 0);
        }
        break;
      default: have = t.int32_data_size(); for (int32_t v : t.int32_data()) put(0, v); break;
    }
    if (have != n)
      throw Error(file, ": tensor '", t.name(), "' of shape ", ir::shape_str(out.shape), " has ", have,
                  " values, not ", n);
  }
  return out;
}

pb::TensorProto to_proto(const Tensor& t) {
  pb::TensorProto p;
  p.set_name(t.name);
  for (int64_t d : t.shape) p.add_dims(d);
  const size_t n = static_cast<size_t>(t.numel());
  if (t.is_float() || t.elem_type == pb::TensorProto::DOUBLE) {
    DLMEM_CHECK(t.f.size() == n, "tensor ", t.name, " has ", t.f.size(), " values for ", n);
    p.set_data_type(pb::TensorProto::FLOAT);
    p.set_raw_data(std::string(reinterpret_cast<const char*>(t.f.data()), n * sizeof(float)));
    return p;
  }
  DLMEM_CHECK(t.i.size() == n, "tensor ", t.name, " has ", t.i.size(), " values for ", n);
  const int type = t.elem_type == pb::TensorProto::UNDEFINED ? pb::TensorProto::INT64 : t.elem_type;
  p.set_data_type(type);
  const size_t eb = elem_bytes(type);
  std::string raw(n * eb, '\0');
  for (size_t k = 0; k < n; ++k) {
    const int64_t v = t.i[k];
    switch (eb) {
      case 8: std::memcpy(&raw[k * 8], &v, 8); break;
      case 4: { const int32_t x = static_cast<int32_t>(v); std::memcpy(&raw[k * 4], &x, 4); break; }
      case 2: { const int16_t x = static_cast<int16_t>(v); std::memcpy(&raw[k * 2], &x, 2); break; }
      default: raw[k] = static_cast<char>(v); break;
    }
  }
  p.set_raw_data(raw);
  return p;
}

Tensor parse_tensor(std::span<const std::byte> bytes, const std::string& path) {
  pb::TensorProto t;
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !t.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw Error(path, ": not an ONNX TensorProto file (protobuf parsing failed; truncated or another format?)");
  return from_proto(t, path, std::filesystem::path(path).parent_path().string());
}

Tensor read_tensor(const std::string& path) { return parse_tensor(read_file(path), path); }

void write_tensor(const std::string& path, const Tensor& t) {
  const std::string s = to_proto(t).SerializeAsString();
  write_file_atomic(path, std::as_bytes(std::span(s.data(), s.size())));
}

pb::ModelProto read_model_proto(const std::string& path) { return parse_model_proto(read_file(path), path); }

pb::ModelProto parse_model_proto(std::span<const std::byte> bytes, const std::string& path) {
  pb::ModelProto m;
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw Error(path, ": not an ONNX model (protobuf parsing failed: a truncated or corrupt file, or another "
                "format; export one with torch.onnx.export)");
  if (!m.has_graph()) throw Error(path, ": the ONNX model has no graph");
  return m;
}

void export_model(const std::string& source, const std::string& path,
                  const std::map<std::string, std::vector<float>>& weights) {
  pb::ModelProto m = read_model_proto(source);
  for (pb::TensorProto& t : *m.mutable_graph()->mutable_initializer()) {
    auto it = weights.find(t.name());
    if (it == weights.end()) continue;
    int64_t n = 1;
    for (int64_t d : t.dims()) n *= d;
    if (static_cast<int64_t>(it->second.size()) != n || t.data_type() != pb::TensorProto::FLOAT)
      throw Error("cannot export '", path, "': weight '", t.name(), "' has ", it->second.size(),
                  " float values, the model's initializer ", n, " of type ", type_name(t.data_type()));
    t.clear_float_data();
    t.clear_external_data();
    t.set_data_location(pb::TensorProto::DEFAULT);
    t.set_raw_data(std::string(reinterpret_cast<const char*>(it->second.data()), it->second.size() * sizeof(float)));
  }
  const std::string s = m.SerializeAsString();
  write_file_atomic(path, std::as_bytes(std::span(s.data(), s.size())));
}

}  // namespace dlmem::models::onnx
