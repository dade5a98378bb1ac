#include "train/checkpoint.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>

#include "util/atomic_file.h"
#include "util/crc32.h"
#include "util/error.h"

namespace dlmem::train {

namespace {

using json = nlohmann::json;

constexpr std::array<char, 8> kMagic{'D', 'L', 'M', 'E', 'M', 'C', 'K', '1'};
constexpr size_t kPrefixBytes = 8 + 4 + 8;  // magic, version, header length
constexpr size_t kCrcBytes = 4;
constexpr size_t kMinFileBytes = kPrefixBytes + kCrcBytes;
constexpr uint64_t kAlign = 64;

uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

void put_le(std::vector<std::byte>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
}

uint64_t get_le(std::span<const std::byte> in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{std::to_integer<uint8_t>(in[at + i])} << (8 * i);
  return v;
}

// Reverses the bytes of each element on a big-endian host, so the file is
// little-endian; a no-op on little-endian hosts.
void to_from_little_endian(std::byte* data, size_t bytes, size_t element_size) {
  if constexpr (std::endian::native == std::endian::big) {
    if (element_size > 1)
      for (size_t i = 0; i + element_size <= bytes; i += element_size)
        std::reverse(data + i, data + i + element_size);
  }
}

// product(shape) if every dimension is >= 0 and it fits in int64; nullopt otherwise.
std::optional<int64_t> checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return std::nullopt;
    n *= d;
  }
  return n;
}

// numel * element size in bytes, or nullopt on overflow.
std::optional<uint64_t> checked_bytes(int64_t numel, size_t element_size) {
  const auto n = static_cast<uint64_t>(numel);
  if (element_size != 0 && n > std::numeric_limits<uint64_t>::max() / element_size)
    return std::nullopt;
  return n * element_size;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

template <typename T>
CheckpointTensor make_tensor(std::string name, const char* dtype, std::vector<int64_t> shape,
                             std::span<const T> values) {
  const auto numel = checked_numel(shape);
  if (!numel || static_cast<uint64_t>(*numel) != values.size())
    throw Error("tensor '", name, "' of shape ", shape_str(shape), " needs ",
                numel ? std::to_string(*numel) : std::string("a valid number of"),
                " values, got ", values.size());
  CheckpointTensor t{std::move(name), dtype, std::move(shape), {}};
  t.data.resize(values.size_bytes());
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), values.size_bytes());
  return t;
}

template <typename T>
std::vector<T> copy_values(const CheckpointTensor& t, const char* dtype) {
  if (t.dtype != dtype)
    throw Error("tensor '", t.name, "' holds ", t.dtype, " values, not ", dtype);
  if (t.data.size() % sizeof(T) != 0)
    throw Error("tensor '", t.name, "' has ", t.data.size(), " bytes, not a whole number of ",
                dtype, " values");
  std::vector<T> out(t.data.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), t.data.data(), t.data.size());
  return out;
}

// Reading the header: each accessor throws a dlmem::Error that names the field.
class HeaderReader {
 public:
  explicit HeaderReader(const std::string& source) : source_(source) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("checkpoint '", source_, "' has a malformed header: ", what,
                "; the file is corrupt or was not written by dlmem");
  }
  const json& field(const json& obj, const char* key, const std::string& where) const {
    if (!obj.is_object()) fail(where + " is not a JSON object");
    const auto it = obj.find(key);
    if (it == obj.end()) fail(where + " has no \"" + key + "\"");
    return *it;
  }
  std::string str(const json& obj, const char* key, const std::string& where) const {
    const json& v = field(obj, key, where);
    if (!v.is_string()) fail(where + "'s \"" + key + "\" is not a string");
    return v.get<std::string>();
  }
  int64_t i64(const json& v, const std::string& what) const {
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(what + " is out of range");
      return static_cast<int64_t>(v.get<uint64_t>());
    }
    if (!v.is_number_integer()) fail(what + " is not an integer");
    return v.get<int64_t>();
  }
  uint64_t u64(const json& v, const std::string& what) const {
    if (!v.is_number_unsigned()) fail(what + " is not a non-negative integer");
    return v.get<uint64_t>();
  }

 private:
  const std::string& source_;
};

}  // namespace

std::optional<size_t> checkpoint_dtype_size(std::string_view dtype) {
  struct Entry {
    std::string_view name;
    size_t size;
  };
  static constexpr std::array<Entry, 10> kTable{{{"f64", 8},
                                                 {"f32", 4},
                                                 {"f16", 2},
                                                 {"bf16", 2},
                                                 {"i64", 8},
                                                 {"i32", 4},
                                                 {"i16", 2},
                                                 {"i8", 1},
                                                 {"u8", 1},
                                                 {"bool", 1}}};
  for (const Entry& e : kTable)
    if (e.name == dtype) return e.size;
  return std::nullopt;
}

int64_t CheckpointTensor::numel() const {
  const auto n = checked_numel(shape);
  if (!n) throw Error("tensor '", name, "' has an invalid shape ", shape_str(shape));
  return *n;
}

std::vector<float> CheckpointTensor::to_f32() const { return copy_values<float>(*this, "f32"); }
std::vector<int32_t> CheckpointTensor::to_i32() const { return copy_values<int32_t>(*this, "i32"); }
std::vector<int64_t> CheckpointTensor::to_i64() const { return copy_values<int64_t>(*this, "i64"); }

CheckpointTensor make_checkpoint_tensor(std::string name, std::vector<int64_t> shape,
                                        std::span<const float> values) {
  return make_tensor(std::move(name), "f32", std::move(shape), values);
}
CheckpointTensor make_checkpoint_tensor(std::string name, std::vector<int64_t> shape,
                                        std::span<const int32_t> values) {
  return make_tensor(std::move(name), "i32", std::move(shape), values);
}
CheckpointTensor make_checkpoint_tensor(std::string name, std::vector<int64_t> shape,
                                        std::span<const int64_t> values) {
  return make_tensor(std::move(name), "i64", std::move(shape), values);
}

const CheckpointTensor* Checkpoint::find(std::string_view name) const {
  for (const CheckpointTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<std::byte> encode_checkpoint(const Checkpoint& ck, const std::string& source) {
  json header = {{"model", ck.model},         {"step", ck.step},
                 {"epoch", ck.epoch},         {"optimizer", ck.optimizer},
                 {"meta", ck.meta},           {"tensors", json::array()}};
  std::set<std::string_view> names;
  uint64_t data_bytes = 0;
  for (const CheckpointTensor& t : ck.tensors) {
    const auto size = checkpoint_dtype_size(t.dtype);
    if (!size)
      throw Error("cannot save checkpoint '", source, "': tensor '", t.name, "' has dtype '",
                  t.dtype, "'; use one of f64 f32 f16 bf16 i64 i32 i16 i8 u8 bool");
    const auto numel = checked_numel(t.shape);
    const auto bytes = numel ? checked_bytes(*numel, *size) : std::nullopt;
    if (!bytes)
      throw Error("cannot save checkpoint '", source, "': tensor '", t.name,
                  "' has an invalid shape ", shape_str(t.shape),
                  "; dimensions must be >= 0 and the element count must fit in 64 bits");
    if (*bytes != t.data.size())
      throw Error("cannot save checkpoint '", source, "': tensor '", t.name, "' of shape ",
                  shape_str(t.shape), " and dtype ", t.dtype, " needs ", *bytes,
                  " bytes of data, it has ", t.data.size());
    if (!names.insert(t.name).second)
      throw Error("cannot save checkpoint '", source, "': two tensors are named '", t.name,
                  "'; tensor names must be unique");
    const uint64_t offset = align_up(data_bytes);
    header["tensors"].push_back(
        {{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"offset", offset},
         {"bytes", *bytes}});
    data_bytes = offset + *bytes;
  }
  data_bytes = align_up(data_bytes);
  header["data_bytes"] = data_bytes;

  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    throw Error("cannot save checkpoint '", source,
                "': the model name, optimizer, metadata or a tensor name is not valid UTF-8 (",
                e.what(), ")");
  }
  text.resize(align_up(kPrefixBytes + text.size()) - kPrefixBytes, ' ');

  std::vector<std::byte> out;
  out.reserve(kPrefixBytes + text.size() + data_bytes + kCrcBytes);
  for (char c : kMagic) out.push_back(static_cast<std::byte>(c));
  put_le(out, kCheckpointVersion, 4);
  put_le(out, text.size(), 8);
  for (char c : text) out.push_back(static_cast<std::byte>(c));
  const size_t data_start = out.size();
  out.resize(data_start + data_bytes, std::byte{0});
  size_t i = 0;
  for (const CheckpointTensor& t : ck.tensors) {
    const uint64_t offset = header["tensors"][i++]["offset"].get<uint64_t>();
    std::byte* dst = out.data() + data_start + offset;
    if (!t.data.empty()) std::memcpy(dst, t.data.data(), t.data.size());
    to_from_little_endian(dst, t.data.size(), *checkpoint_dtype_size(t.dtype));
  }
  put_le(out, crc32(out), 4);
  return out;
}

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  write_file_atomic(path, encode_checkpoint(ck, path));
}

Checkpoint decode_checkpoint(std::span<const std::byte> file, const std::string& source) {
  const size_t size = file.size();
  const auto not_ours = [&](const std::string& why) {
    return Error("'", source, "' is not a dlmem checkpoint (", why,
                 "); give a checkpoint file that dlmem saved");
  };
  if (size == 0) throw not_ours("the file is empty");
  for (size_t i = 0; i < std::min(size, kMagic.size()); ++i)
    if (std::to_integer<char>(file[i]) != kMagic[i])
      throw not_ours("it does not start with \"DLMEMCK1\"");
  if (size < kMinFileBytes)
    throw Error("checkpoint '", source, "' is truncated: expected at least ", kMinFileBytes,
                " bytes, file has ", size);

  const auto version = static_cast<uint32_t>(get_le(file, 8, 4));
  if (version > kCheckpointVersion)
    throw Error("checkpoint '", source, "' was written by a newer dlmem (format version ",
                version, "; this build reads version ", kCheckpointVersion,
                "); load it with a newer dlmem");
  if (version == 0)
    throw Error("checkpoint '", source,
                "' has format version 0, which no dlmem writes; the file is corrupt");

  const uint64_t header_bytes = get_le(file, 12, 8);
  if (header_bytes > size - kMinFileBytes)
    throw Error("checkpoint '", source, "' is truncated: its header alone needs ",
                header_bytes, " bytes, so expected at least ",
                header_bytes > std::numeric_limits<uint64_t>::max() - kMinFileBytes
                    ? std::string("more than 2^64")
                    : std::to_string(header_bytes + kMinFileBytes),
                " bytes, file has ", size);

  const auto crc_ok = [&] {
    const auto stored = static_cast<uint32_t>(get_le(file, size - kCrcBytes, 4));
    return stored == crc32(file.first(size - kCrcBytes));
  };
  const auto checksum_error = [&] {
    const auto stored = static_cast<uint32_t>(get_le(file, size - kCrcBytes, 4));
    return Error("checkpoint '", source, "': checksum mismatch: the file is corrupt (stored ",
                 hex32(stored), ", computed ", hex32(crc32(file.first(size - kCrcBytes))), ")");
  };

  // Note the order: a length that disagrees with the file size is reported as
  // truncation; anything else wrong with the header is first put down to corruption
  // when the checksum disagrees, and only otherwise reported in detail.
  json header;
  std::string parse_error;
  {
    const auto* begin = reinterpret_cast<const char*>(file.data() + kPrefixBytes);
    // nlohmann's lexer ends the input at a NUL byte, which valid JSON text never holds
    // (a NUL in a string is written \u0000): refuse it rather than ignore what follows.
    if (std::memchr(begin, 0, header_bytes) != nullptr) {
      parse_error = "it contains a NUL byte";
    } else {
      try {
        header = json::parse(begin, begin + header_bytes);
      } catch (const json::exception& e) {
        parse_error = e.what();
      }
    }
  }
  const uint64_t room = size - kMinFileBytes - header_bytes;  // what the file has for data
  if (parse_error.empty() && header.is_object()) {
    const auto it = header.find("data_bytes");
    if (it != header.end() && it->is_number_unsigned() && it->get<uint64_t>() != room) {
      const uint64_t data_bytes = it->get<uint64_t>();
      if (data_bytes > room)
        throw Error("checkpoint '", source, "' is truncated: expected ",
                    data_bytes > std::numeric_limits<uint64_t>::max() - kMinFileBytes - header_bytes
                        ? std::string("more than 2^64")
                        : std::to_string(kMinFileBytes + header_bytes + data_bytes),
                    " bytes, file has ", size);
      throw Error("checkpoint '", source, "' has ", size, " bytes but its header describes ",
                  kMinFileBytes + header_bytes + data_bytes,
                  "; the file is corrupt or has data appended");
    }
  }
  if (!crc_ok()) throw checksum_error();
  if (!parse_error.empty())
    throw Error("checkpoint '", source, "' has a header that is not valid JSON (", parse_error,
                "); the file was not written by dlmem");
  const HeaderReader h(source);
  if (!header.is_object()) h.fail("the header is not a JSON object");
  const uint64_t data_bytes = h.u64(h.field(header, "data_bytes", "the header"), "\"data_bytes\"");
  DLMEM_CHECK(data_bytes == room, "data_bytes was compared with the file size above");

  Checkpoint ck;
  try {
    ck.model = h.str(header, "model", "the header");
    ck.step = h.i64(h.field(header, "step", "the header"), "\"step\"");
    ck.epoch = h.i64(h.field(header, "epoch", "the header"), "\"epoch\"");
    ck.optimizer = h.str(header, "optimizer", "the header");
    ck.meta = h.field(header, "meta", "the header");
    const json& tensors = h.field(header, "tensors", "the header");
    if (!tensors.is_array()) h.fail("\"tensors\" is not an array");
    const std::byte* data = file.data() + kPrefixBytes + header_bytes;
    std::set<std::string> names;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const json& jt = tensors[i];
      const std::string where = "tensor " + std::to_string(i);
      CheckpointTensor t;
      t.name = h.str(jt, "name", where);
      const std::string tw = "tensor '" + t.name + "'";
      if (!names.insert(t.name).second) h.fail("two tensors are named '" + t.name + "'");
      t.dtype = h.str(jt, "dtype", tw);
      const auto elem = checkpoint_dtype_size(t.dtype);
      if (!elem) h.fail(tw + " has unknown dtype '" + t.dtype + "'");
      const json& shape = h.field(jt, "shape", tw);
      if (!shape.is_array()) h.fail(tw + "'s shape is not an array");
      for (const json& d : shape) {
        const int64_t v = h.i64(d, tw + "'s shape");
        if (v < 0) h.fail(tw + " has a negative dimension");
        t.shape.push_back(v);
      }
      const uint64_t offset = h.u64(h.field(jt, "offset", tw), tw + "'s offset");
      const uint64_t bytes = h.u64(h.field(jt, "bytes", tw), tw + "'s byte count");
      const auto numel = checked_numel(t.shape);
      const auto want = numel ? checked_bytes(*numel, *elem) : std::nullopt;
      if (!want || *want != bytes)
        h.fail(tw + " of shape " + shape_str(t.shape) + " and dtype " + t.dtype + " has " +
               std::to_string(bytes) + " bytes, expected " +
               (want ? std::to_string(*want) : std::string("more than 2^64")));
      if (offset > data_bytes || bytes > data_bytes - offset)
        h.fail(tw + " lies outside the data region (offset " + std::to_string(offset) + ", " +
               std::to_string(bytes) + " bytes, region " + std::to_string(data_bytes) +
               " bytes)");
      t.data.assign(data + offset, data + offset + bytes);
      to_from_little_endian(t.data.data(), t.data.size(), *elem);
      ck.tensors.push_back(std::move(t));
    }
  } catch (const json::exception& e) {
    h.fail(e.what());
  }
  return ck;
}

Checkpoint load_checkpoint(const std::string& path) {
  const std::vector<std::byte> bytes = read_file(path);
  return decode_checkpoint(bytes, path);
}

}  // namespace dlmem::train
