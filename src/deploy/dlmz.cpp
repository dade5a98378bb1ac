#include "deploy/dlmz.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <set>

#include "deploy/huffman.h"
#include "deploy/sparse_index.h"
#include "util/atomic_file.h"
#include "util/crc32.h"
#include "ir/graph.h"
#include "util/error.h"

namespace dlmem::deploy {

namespace {

constexpr char kMagic[8] = {'D', 'L', 'M', 'Z', '\r', '\n', '\x1a', '\n'};
constexpr uint8_t kModelSection = 1, kTensorSection = 2;
constexpr uint8_t kDense = 0, kShared = 1;
constexpr size_t kMaxName = 255;
constexpr size_t kMaxRank = 8;
constexpr uint64_t kMaxImageSize = 1 << 16;
constexpr uint64_t kMaxClasses = 1 << 24;

// ---- writing ----

struct Out {
  std::vector<std::byte> b;
  void u8(uint8_t v) { b.push_back(std::byte{v}); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void varint(uint64_t v) {
    do {
      uint8_t byte = v & 0x7f;
      v >>= 7;
      if (v) byte |= 0x80;
      u8(byte);
    } while (v);
  }
  void f32(float f) { u32(std::bit_cast<uint32_t>(f)); }
  void bytes(std::span<const std::byte> s) { b.insert(b.end(), s.begin(), s.end()); }
  void str(const std::string& s) {
    varint(s.size());
    bytes(std::as_bytes(std::span<const char>(s)));
  }
};

bool printable(const std::string& s) {
  for (char c : s)
    if (c < 0x21 || c > 0x7e) return false;
  return !s.empty() && s.size() <= kMaxName;
}

uint64_t numel_of(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

void check_sparse(const std::string& name, const SharedSparse& s) {
  DLMEM_CHECK(s.index_bits >= 1 && s.index_bits <= kMaxIndexBits, name, ": index bits ", s.index_bits);
  DLMEM_CHECK(s.positions.size() == s.codes.size(), name, ": positions and codes differ in count");
  DLMEM_CHECK(s.codebook.size() <= kMaxAlphabet, name, ": codebook of ", s.codebook.size());
  DLMEM_CHECK(s.positions.empty() == s.codebook.empty(), name, ": codebook without weights or weights without one");
  for (size_t i = 0; i < s.positions.size(); ++i) {
    DLMEM_CHECK(s.positions[i] < s.numel && (i == 0 || s.positions[i] > s.positions[i - 1]), name, ": position ", i);
    DLMEM_CHECK(s.codes[i] < s.codebook.size(), name, ": code ", s.codes[i]);
  }
  for (float c : s.codebook) DLMEM_CHECK(std::isfinite(c), name, ": codebook value ", c);
}

void write_tensor(Out& o, const DlmzTensor& t, DlmzTensorStats& st) {
  DLMEM_CHECK(printable(t.name), "tensor name '", t.name, "'");
  DLMEM_CHECK(t.shape.size() <= kMaxRank, t.name, ": rank ", t.shape.size());
  for (int64_t d : t.shape) DLMEM_CHECK(d >= 1, t.name, ": dimension ", d);
  o.str(t.name);
  o.u8(static_cast<uint8_t>(t.shape.size()));
  for (int64_t d : t.shape) o.varint(static_cast<uint64_t>(d));
  const uint64_t n = t.numel();
  DLMEM_CHECK(n <= kDlmzMaxElements, t.name, ": ", n, " elements");
  if (!t.is_shared) {
    DLMEM_CHECK(t.dense_values.size() == n, t.name, ": ", t.dense_values.size(), " values for ", n, " elements");
    o.u8(kDense);
    for (float f : t.dense_values) o.f32(f);
    return;
  }
  const SharedSparse& s = t.sparse;
  DLMEM_CHECK(s.numel == n, t.name, ": sparse numel ", s.numel, " shape ", n);
  check_sparse(t.name, s);
  o.u8(kShared);
  o.u8(static_cast<uint8_t>(s.index_bits));
  o.varint(s.positions.size());
  o.varint(s.codebook.size());
  for (float c : s.codebook) o.f32(c);
  st.table_bytes = 4 * s.codebook.size();
  if (s.positions.empty()) return;
  const std::vector<uint32_t> rel = relative_indices(s.positions, s.index_bits);
  const uint32_t index_alphabet = uint32_t{1} << s.index_bits;
  const auto k = static_cast<uint32_t>(s.codebook.size());
  const HuffmanCode index_code = HuffmanCode::build(histogram(rel, index_alphabet));
  const HuffmanCode weight_code = HuffmanCode::build(histogram(s.codes, k));
  const auto index_table = pack_lengths(index_code.lengths());
  const auto weight_table = pack_lengths(weight_code.lengths());
  o.bytes(index_table);
  o.bytes(weight_table);
  st.table_bytes += index_table.size() + weight_table.size();
  BitWriter iw, ww;
  index_code.encode(rel, iw);
  weight_code.encode(s.codes, ww);
  o.varint(iw.bits());
  o.bytes(iw.bytes());
  o.varint(ww.bits());
  o.bytes(ww.bytes());
  st.index_bits = iw.bits();
  st.weight_bits = ww.bits();
  st.fillers = rel.size() - s.positions.size();
}

// ---- reading ----

class Reader {
 public:
  Reader(std::span<const std::byte> b, uint64_t base, const std::string& source)
      : b_(b), base_(base), source_(source) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(source_, ": ", what, " (at byte ", base_ + pos_,
                "); the file is damaged or not a .dlmz written by 'dlmem compress'");
  }
  size_t left() const { return b_.size() - pos_; }
  uint64_t offset() const { return base_ + pos_; }
  std::span<const std::byte> take(uint64_t n, const char* what) {
    if (n > left()) fail(std::string(what) + " needs " + std::to_string(n) + " bytes, " + std::to_string(left()) + " left");
    auto s = b_.subspan(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  uint8_t u8(const char* what) { return static_cast<uint8_t>(take(1, what)[0]); }
  uint32_t u32(const char* what) {
    auto s = take(4, what);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(s[static_cast<size_t>(i)]) << (8 * i);
    return v;
  }
  float f32(const char* what) { return std::bit_cast<float>(u32(what)); }
  uint64_t varint(const char* what) {
    uint64_t v = 0;
    for (int i = 0; i < 10; ++i) {
      const uint8_t byte = u8(what);
      const uint64_t bits = byte & 0x7f;
      if (i == 9 && bits > 1) fail(std::string(what) + ": varint overflows 64 bits");
      v |= bits << (7 * i);
      if (!(byte & 0x80)) {
        if (i > 0 && bits == 0) fail(std::string(what) + ": varint has a redundant trailing group");
        return v;
      }
    }
    fail(std::string(what) + ": varint longer than 10 bytes");
  }
  std::string name(const char* what) {
    const uint64_t n = varint(what);
    if (n == 0 || n > kMaxName) fail(std::string(what) + " of " + std::to_string(n) + " bytes (1 to 255 are valid)");
    auto s = take(n, what);
    std::string out(reinterpret_cast<const char*>(s.data()), s.size());
    if (!printable(out)) fail(std::string(what) + " has characters outside printable ASCII");
    return out;
  }
  void expect_end(const char* what) {
    if (left() != 0) fail(std::to_string(left()) + " unexpected bytes at the end of the " + what);
  }
  const std::string& source() const { return source_; }

 private:
  std::span<const std::byte> b_;
  size_t pos_ = 0;
  uint64_t base_;
  const std::string& source_;
};

HuffmanCode read_code(Reader& r, uint32_t alphabet, const std::string& what) {
  const uint64_t offset = r.offset();
  auto packed = r.take((static_cast<uint64_t>(alphabet) + 1) / 2, "a Huffman code table");
  try {
    return HuffmanCode::from_lengths(unpack_lengths(packed, alphabet), what);
  } catch (const Error& e) {
    throw Error(r.source(), ": ", e.what(), " (at byte ", offset, "); the file is damaged");
  }
}

// A Huffman stream: bits varint + bytes.
std::pair<std::span<const std::byte>, uint64_t> read_stream(Reader& r, const char* what) {
  const uint64_t bits = r.varint(what);
  if (bits > static_cast<uint64_t>(r.left()) * 8) r.fail(std::string(what) + " declares more bits than the section holds");
  return {r.take((bits + 7) / 8, what), bits};
}

DlmzTensor read_tensor(Reader& r) {
  DlmzTensor t;
  t.name = r.name("tensor name");
  const std::string what = "tensor '" + t.name + "'";
  const uint8_t rank = r.u8("rank");
  if (rank > kMaxRank) r.fail("tensor '" + t.name + "' has rank " + std::to_string(rank) + " (at most 8)");
  uint64_t n = 1;
  for (uint8_t i = 0; i < rank; ++i) {
    const uint64_t d = r.varint("dimension");
    if (d == 0 || d > kDlmzMaxElements / n)
      r.fail("tensor '" + t.name + "' has a dimension of " + std::to_string(d) + " (1 to 2^36 elements in all)");
    n *= d;
    t.shape.push_back(static_cast<int64_t>(d));
  }
  const uint8_t enc = r.u8("encoding");
  if (enc == kDense) {
    if (n > r.left() / 4) r.fail("tensor '" + t.name + "' needs " + std::to_string(n) + " f32 values, the section is shorter");
    t.dense_values.resize(static_cast<size_t>(n));
    for (float& f : t.dense_values) f = r.f32("value");
    return t;
  }
  if (enc != kShared) r.fail("tensor '" + t.name + "' has unknown encoding " + std::to_string(enc) + " (0 dense, 1 shared sparse)");
  t.is_shared = true;
  SharedSparse& s = t.sparse;
  s.numel = n;
  s.index_bits = r.u8("index bits");
  if (s.index_bits < 1 || s.index_bits > kMaxIndexBits)
    r.fail("tensor '" + t.name + "' has " + std::to_string(s.index_bits) + "-bit relative indices (1 to 12 are valid)");
  const uint64_t nnz = r.varint("weight count");
  if (nnz > n) r.fail("tensor '" + t.name + "' declares " + std::to_string(nnz) + " weights in " + std::to_string(n) + " elements");
  const uint64_t k = r.varint("codebook size");
  if (k > kMaxAlphabet || (k == 0) != (nnz == 0))
    r.fail("tensor '" + t.name + "' has a codebook of " + std::to_string(k) + " entries for " + std::to_string(nnz) + " weights");
  s.codebook.resize(static_cast<size_t>(k));
  for (float& c : s.codebook) {
    c = r.f32("codebook");
    if (!std::isfinite(c)) r.fail("tensor '" + t.name + "' has a codebook value that is not finite");
  }
  if (nnz == 0) return t;
  const HuffmanCode index_code = read_code(r, uint32_t{1} << s.index_bits, what + " (relative indices)");
  const HuffmanCode weight_code = read_code(r, static_cast<uint32_t>(k), what + " (codebook indices)");
  auto [ibytes, ibits] = read_stream(r, "relative-index stream");
  auto [wbytes, wbits] = read_stream(r, "codebook-index stream");
  // Every survivor takes at least one bit in each stream: bounds nnz by the bytes present.
  if (nnz > ibits || nnz > wbits) r.fail("tensor '" + t.name + "' declares more weights than its streams can hold");
  s.positions.reserve(static_cast<size_t>(nnz));
  s.codes.reserve(static_cast<size_t>(nnz));
  BitReader ir(ibytes, ibits, what + " (relative indices)");
  BitReader wr(wbytes, wbits, what + " (codebook indices)");
  RelativeIndexDecoder rel(n, s.index_bits, what);
  try {
    while (s.positions.size() < nnz) {
      if (auto p = rel.next(index_code.decode(ir))) {
        s.positions.push_back(*p);
        s.codes.push_back(weight_code.decode(wr));
      }
    }
  } catch (const Error& e) {
    r.fail(e.what());
  }
  if (ir.remaining() != 0 || wr.remaining() != 0)
    r.fail("tensor '" + t.name + "': a Huffman stream holds bits beyond its " + std::to_string(nnz) + " weights");
  return t;
}

}  // namespace

std::vector<float> SharedSparse::expand() const {
  std::vector<float> out(static_cast<size_t>(numel), 0.0f);
  for (size_t i = 0; i < positions.size(); ++i) out.at(static_cast<size_t>(positions[i])) = codebook.at(codes[i]);
  return out;
}

DlmzTensor DlmzTensor::dense(std::string name, std::vector<int64_t> shape, std::vector<float> values) {
  DlmzTensor t;
  t.name = std::move(name);
  t.shape = std::move(shape);
  t.dense_values = std::move(values);
  DLMEM_CHECK(t.dense_values.size() == t.numel(), t.name, ": values do not match the shape");
  return t;
}

DlmzTensor DlmzTensor::shared_sparse(std::string name, std::vector<int64_t> shape, SharedSparse s) {
  DlmzTensor t;
  t.name = std::move(name);
  t.shape = std::move(shape);
  t.is_shared = true;
  t.sparse = std::move(s);
  DLMEM_CHECK(t.sparse.numel == t.numel(), t.name, ": sparse numel does not match the shape");
  return t;
}

uint64_t DlmzTensor::numel() const { return numel_of(shape); }

std::vector<float> DlmzTensor::values() const { return is_shared ? sparse.expand() : dense_values; }

const DlmzTensor* DlmzModel::find(const std::string& name) const {
  for (const DlmzTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<std::byte> encode_dlmz(const DlmzModel& m, std::vector<DlmzTensorStats>* stats) {
  DLMEM_CHECK(printable(m.model), "model name '", m.model, "'");
  DLMEM_CHECK(m.image_size >= 0 && static_cast<uint64_t>(m.image_size) <= kMaxImageSize, "image size ", m.image_size);
  DLMEM_CHECK(m.num_classes >= 0 && static_cast<uint64_t>(m.num_classes) <= kMaxClasses, "classes ", m.num_classes);
  Out o;
  o.bytes(std::as_bytes(std::span<const char>(kMagic)));
  o.u32(kDlmzVersion);
  auto section = [&](uint8_t kind, const Out& body) {
    DLMEM_CHECK(body.b.size() <= UINT32_MAX, "a section of ", body.b.size(), " bytes");
    o.u8(kind);
    o.u32(static_cast<uint32_t>(body.b.size()));
    o.bytes(body.b);
  };
  Out model;
  model.str(m.model);
  model.varint(static_cast<uint64_t>(m.image_size));
  model.varint(static_cast<uint64_t>(m.num_classes));
  model.varint(m.tensors.size());
  section(kModelSection, model);
  std::set<std::string> names;
  if (stats) stats->clear();
  for (const DlmzTensor& t : m.tensors) {
    DLMEM_CHECK(names.insert(t.name).second, "tensor '", t.name, "' twice");
    Out body;
    DlmzTensorStats st;
    st.name = t.name;
    write_tensor(body, t, st);
    st.bytes = 5 + body.b.size();
    section(kTensorSection, body);
    if (stats) stats->push_back(st);
  }
  o.u32(crc32(o.b));
  return o.b;
}

DlmzModel decode_dlmz(std::span<const std::byte> file, const std::string& source) {
  Reader top(file, 0, source);
  if (file.size() < sizeof kMagic + 4 + 4 || std::memcmp(file.data(), kMagic, sizeof kMagic) != 0)
    throw Error(source, ": not a .dlmz file (no DLMZ magic; write one with 'dlmem compress')");
  top.take(sizeof kMagic, "magic");
  const uint32_t version = top.u32("version");
  if (version != kDlmzVersion)
    throw Error(source, ": .dlmz version ", version, "; this dlmem reads version ", kDlmzVersion,
                " (re-run 'dlmem compress' with this dlmem)");
  const size_t body_end = file.size() - 4;
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) stored |= static_cast<uint32_t>(file[body_end + static_cast<size_t>(i)]) << (8 * i);
  if (crc32(file.first(body_end)) != stored)
    throw Error(source, ": checksum mismatch (the file is damaged or truncated; re-run 'dlmem compress')");

  Reader r(file.first(body_end).subspan(12), 12, source);
  DlmzModel m;
  uint64_t declared = 0;
  bool have_model = false;
  std::set<std::string> names;
  while (r.left() > 0) {
    const uint8_t kind = r.u8("section kind");
    const uint32_t len = r.u32("section length");
    const uint64_t base = r.offset();
    Reader body(r.take(len, "section"), base, source);
    if (kind == kModelSection) {
      if (have_model) body.fail("a second model section");
      have_model = true;
      m.model = body.name("model name");
      const uint64_t image = body.varint("image size"), classes = body.varint("class count");
      if (image > kMaxImageSize) body.fail("image size " + std::to_string(image) + " is implausible");
      if (classes > kMaxClasses) body.fail("class count " + std::to_string(classes) + " is implausible");
      m.image_size = static_cast<int64_t>(image);
      m.num_classes = static_cast<int64_t>(classes);
      declared = body.varint("tensor count");
      if (declared > r.left() / 8 + 1) body.fail("tensor count " + std::to_string(declared) + " exceeds what the file can hold");
      body.expect_end("model section");
    } else if (kind == kTensorSection) {
      if (!have_model) body.fail("a tensor section before the model section");
      if (m.tensors.size() >= declared) body.fail("more tensor sections than the " + std::to_string(declared) + " declared");
      DlmzTensor t = read_tensor(body);
      body.expect_end("tensor section");
      if (!names.insert(t.name).second) body.fail("tensor '" + t.name + "' appears twice");
      m.tensors.push_back(std::move(t));
    } else {
      body.fail("unknown section kind " + std::to_string(kind));
    }
  }
  if (!have_model) throw Error(source, ": no model section; the file is damaged");
  if (m.tensors.size() != declared)
    throw Error(source, ": ", m.tensors.size(), " tensor sections, the model section declares ", declared,
                "; the file is damaged");
  return m;
}

uint64_t save_dlmz(const std::string& path, const DlmzModel& m, std::vector<DlmzTensorStats>* stats) {
  const std::vector<std::byte> bytes = encode_dlmz(m, stats);
  write_file_atomic(path, bytes);
  return bytes.size();
}

DlmzModel load_dlmz(const std::string& path) { return decode_dlmz(read_file(path), path); }

models::ModelConfig dlmz_config(const DlmzModel& m, int64_t batch) {
  models::ModelConfig mc;
  mc.batch = batch;
  mc.training = false;
  mc.image_size = m.image_size;
  mc.num_classes = m.num_classes;
  return mc;
}

WeightMap dlmz_weights(const DlmzModel& m, const std::string& source) {
  ir::Graph g;
  try {
    g = models::build_model(m.model, dlmz_config(m, 1));
  } catch (const Error& e) {
    throw Error(source, ": the file's model cannot be built: ", e.what());
  }
  WeightMap w;
  for (const ir::Value& v : g.values()) {
    if (v.role != ir::Role::weight) continue;
    const DlmzTensor* t = m.find(v.name);
    if (!t) throw Error(source, ": no tensor '", v.name, "', which model '", m.model, "' needs; the file is damaged");
    if (t->shape != v.type.shape)
      throw Error(source, ": tensor '", v.name, "' is ", ir::shape_str(t->shape), ", model '", m.model, "' needs ",
                  ir::shape_str(v.type.shape), "; the file is damaged");
  }
  for (const DlmzTensor& t : m.tensors) {
    const ir::ValueId v = g.find(t.name);
    if (v == ir::kNoValue || g.value(v).role != ir::Role::weight)
      throw Error(source, ": tensor '", t.name, "' is no weight of model '", m.model, "'; the file is damaged");
  }
  // Shapes checked: expanding allocates no more than the model's own weights.
  for (const DlmzTensor& t : m.tensors) w[t.name] = t.values();
  return w;
}

}  // namespace dlmem::deploy
