#include "deploy/huffman.h"

#include <algorithm>
#include <queue>

#include "util/error.h"

namespace dlmem::deploy {

void BitWriter::put(uint32_t bits, int count) {
  DLMEM_CHECK(count >= 0 && count <= 32, "bit count ", count);
  for (int i = count - 1; i >= 0; --i) {
    if (bits_ % 8 == 0) bytes_.push_back(std::byte{0});
    if ((bits >> i) & 1u) bytes_.back() |= std::byte{static_cast<uint8_t>(0x80u >> (bits_ % 8))};
    ++bits_;
  }
}

BitReader::BitReader(std::span<const std::byte> bytes, uint64_t bits, std::string what)
    : bytes_(bytes), bits_(bits), what_(std::move(what)) {
  DLMEM_CHECK(bits <= static_cast<uint64_t>(bytes.size()) * 8, what_, ": ", bits, " bits in ", bytes.size(), " bytes");
}

uint32_t BitReader::bit() {
  if (pos_ >= bits_) throw Error(what_, ": the bit stream ends early (", bits_, " bits)");
  const uint32_t b = (static_cast<uint32_t>(bytes_[pos_ / 8]) >> (7 - pos_ % 8)) & 1u;
  ++pos_;
  return b;
}

std::vector<uint64_t> histogram(std::span<const uint32_t> symbols, uint32_t alphabet) {
  std::vector<uint64_t> h(alphabet, 0);
  for (uint32_t s : symbols) {
    DLMEM_CHECK(s < alphabet, "symbol ", s, " outside an alphabet of ", alphabet);
    ++h[s];
  }
  return h;
}

namespace {

// Optimal (unlimited) code lengths by the classic two-queue-free heap construction.
std::vector<uint8_t> huffman_lengths(std::span<const uint64_t> freqs, int* max_len) {
  struct Node {
    uint64_t weight;
    int32_t left, right;  // children (-1: leaf)
  };
  std::vector<Node> nodes;
  using Item = std::pair<uint64_t, int32_t>;  // (weight, node), ties broken by node id
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
  std::vector<int32_t> leaf_of(freqs.size(), -1);
  for (size_t s = 0; s < freqs.size(); ++s) {
    if (freqs[s] == 0) continue;
    leaf_of[s] = static_cast<int32_t>(nodes.size());
    heap.emplace(freqs[s], leaf_of[s]);
    nodes.push_back({freqs[s], -1, -1});
  }
  std::vector<uint8_t> lengths(freqs.size(), 0);
  *max_len = 0;
  if (nodes.empty()) return lengths;
  if (nodes.size() == 1) {  // one symbol: a 1-bit code
    for (size_t s = 0; s < freqs.size(); ++s)
      if (leaf_of[s] >= 0) lengths[s] = 1;
    *max_len = 1;
    return lengths;
  }
  while (heap.size() > 1) {
    auto [wa, a] = heap.top();
    heap.pop();
    auto [wb, b] = heap.top();
    heap.pop();
    nodes.push_back({wa + wb, a, b});
    heap.emplace(wa + wb, static_cast<int32_t>(nodes.size() - 1));
  }
  // Depths, from the root down (children always have smaller ids than parents).
  std::vector<int> depth(nodes.size(), 0);
  for (int32_t n = static_cast<int32_t>(nodes.size()) - 1; n >= 0; --n) {
    const Node& x = nodes[static_cast<size_t>(n)];
    if (x.left >= 0) {
      depth[static_cast<size_t>(x.left)] = depth[static_cast<size_t>(n)] + 1;
      depth[static_cast<size_t>(x.right)] = depth[static_cast<size_t>(n)] + 1;
    }
  }
  for (size_t s = 0; s < freqs.size(); ++s) {
    if (leaf_of[s] < 0) continue;
    const int d = depth[static_cast<size_t>(leaf_of[s])];
    *max_len = std::max(*max_len, d);
    lengths[s] = static_cast<uint8_t>(std::min(d, 255));
  }
  return lengths;
}

}  // namespace

HuffmanCode HuffmanCode::build(std::span<const uint64_t> freqs) {
  DLMEM_CHECK(!freqs.empty() && freqs.size() <= kMaxAlphabet, "alphabet of ", freqs.size());
  std::vector<uint64_t> f(freqs.begin(), freqs.end());
  HuffmanCode c;
  for (;;) {
    int max_len = 0;
    c.lengths_ = huffman_lengths(f, &max_len);
    if (max_len <= kMaxCodeLength) break;
    // Note [Canonical codes]: flatten the distribution and retry.
    for (uint64_t& x : f)
      if (x > 0) x = (x + 1) / 2;
  }
  c.assign();
  return c;
}

HuffmanCode HuffmanCode::from_lengths(std::vector<uint8_t> lengths, const std::string& what) {
  if (lengths.empty() || lengths.size() > kMaxAlphabet)
    throw Error(what, ": a Huffman code over ", lengths.size(), " symbols (1 to ", kMaxAlphabet, " are valid)");
  // Kraft: sum 2^-len <= 1, in units of 2^-kMaxCodeLength.
  uint64_t kraft = 0;
  for (uint8_t l : lengths) {
    if (l > kMaxCodeLength) throw Error(what, ": Huffman code length ", int(l), " exceeds ", kMaxCodeLength);
    if (l > 0) kraft += uint64_t{1} << (kMaxCodeLength - l);
  }
  if (kraft > (uint64_t{1} << kMaxCodeLength))
    throw Error(what, ": the Huffman code lengths are over-subscribed (not a prefix code)");
  HuffmanCode c;
  c.lengths_ = std::move(lengths);
  c.assign();
  return c;
}

void HuffmanCode::assign() {
  count_.fill(0);
  for (uint8_t l : lengths_) ++count_[l];
  count_[0] = 0;
  // First code of each length (RFC 1951, 3.2.2).
  std::array<uint32_t, kMaxCodeLength + 2> next{};
  uint32_t code = 0;
  for (int len = 1; len <= kMaxCodeLength; ++len) {
    code = (code + count_[static_cast<size_t>(len - 1)]) << 1;
    next[static_cast<size_t>(len)] = code;
  }
  codes_.assign(lengths_.size(), 0);
  sorted_.clear();
  for (int len = 1; len <= kMaxCodeLength; ++len)
    for (uint32_t s = 0; s < lengths_.size(); ++s)
      if (lengths_[s] == len) {
        codes_[s] = next[static_cast<size_t>(len)]++;
        sorted_.push_back(s);
      }
}

uint64_t HuffmanCode::cost(std::span<const uint64_t> freqs) const {
  DLMEM_CHECK(freqs.size() == lengths_.size(), "frequencies of ", freqs.size(), " symbols, code of ", lengths_.size());
  uint64_t bits = 0;
  for (size_t s = 0; s < freqs.size(); ++s) {
    DLMEM_CHECK(freqs[s] == 0 || lengths_[s] > 0, "symbol ", s, " has no code");
    bits += freqs[s] * lengths_[s];
  }
  return bits;
}

void HuffmanCode::encode(uint32_t symbol, BitWriter& w) const {
  DLMEM_CHECK(symbol < lengths_.size() && lengths_[symbol] > 0, "symbol ", symbol, " has no code");
  w.put(codes_[symbol], lengths_[symbol]);
}

void HuffmanCode::encode(std::span<const uint32_t> symbols, BitWriter& w) const {
  for (uint32_t s : symbols) encode(s, w);
}

uint32_t HuffmanCode::decode(BitReader& r) const {
  // puff.c's decode(): `first` is the first code of the current length, `index` the
  // position of its first symbol in canonical order.
  uint32_t code = 0, first = 0, index = 0;
  for (int len = 1; len <= kMaxCodeLength; ++len) {
    code |= r.bit();
    const uint32_t count = count_[static_cast<size_t>(len)];
    if (code - first < count) return sorted_[index + (code - first)];
    index += count;
    first = (first + count) << 1;
    code <<= 1;
  }
  throw Error(r.what(), ": bits ", r.position() - kMaxCodeLength, "..", r.position(), " are no Huffman code");
}

std::vector<std::byte> pack_lengths(std::span<const uint8_t> lengths) {
  std::vector<std::byte> out((lengths.size() + 1) / 2, std::byte{0});
  for (size_t i = 0; i < lengths.size(); ++i) {
    DLMEM_CHECK(lengths[i] <= kMaxCodeLength, "length ", int(lengths[i]));
    out[i / 2] |= std::byte{static_cast<uint8_t>(i % 2 == 0 ? lengths[i] << 4 : lengths[i])};
  }
  return out;
}

std::vector<uint8_t> unpack_lengths(std::span<const std::byte> packed, uint32_t n) {
  DLMEM_CHECK(packed.size() == (static_cast<size_t>(n) + 1) / 2, "packed lengths of ", n, " symbols");
  std::vector<uint8_t> out(n);
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t b = static_cast<uint8_t>(packed[i / 2]);
    out[i] = i % 2 == 0 ? static_cast<uint8_t>(b >> 4) : static_cast<uint8_t>(b & 0x0f);
  }
  return out;
}

}  // namespace dlmem::deploy
