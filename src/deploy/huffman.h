// Canonical, length-limited Huffman coding of small alphabets (the third stage of Deep
// Compression: Han, Mao and Dally, ICLR 2016, Sec. 4), and the bit streams it writes.
//
//   std::vector<uint32_t> symbols = {3, 3, 0, 7, 3};
//   deploy::HuffmanCode code = deploy::HuffmanCode::build(deploy::histogram(symbols, 8));
//   deploy::BitWriter w;
//   code.encode(symbols, w);                       // code.lengths() goes in the file
//   deploy::HuffmanCode back = deploy::HuffmanCode::from_lengths(code.lengths(), "tensor fc1");
//   deploy::BitReader r(w.bytes(), w.bits(), "tensor fc1");
//   back.decode(r) == 3, ...                        // dlmem::Error on a malformed stream
//
// Note [Canonical codes]: a code is stored as one length per symbol of the alphabet
// (0 = the symbol does not occur, else 1..kMaxCodeLength bits); codes are assigned in
// the order (length, symbol), as DEFLATE does (RFC 1951, Sec. 3.2.2), so the lengths
// alone rebuild the code. Bits are written most significant first. Lengths are limited
// to kMaxCodeLength = 15 so that they fit in a nibble: when the optimal code is
// deeper, the frequencies are halved (rounding up, keeping every used symbol at >= 1)
// and the code rebuilt until it fits -- a common heuristic (e.g. bzip2's) that costs
// almost nothing on the skewed distributions it is used for. Alphabets are limited to
// kMaxAlphabet = 4096 symbols, which a 15-bit code can always hold.
//
// Decoding follows zlib's puff.c (Mark Adler): per length, the count of codes and the
// symbols in canonical order; one bit at a time. It validates the lengths (no
// over-subscribed code) and never reads past the stream's declared bits, so malformed
// input is an Error, never a crash.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace dlmem::deploy {

inline constexpr int kMaxCodeLength = 15;
inline constexpr uint32_t kMaxAlphabet = 4096;

// Appends bits to a byte vector, most significant bit of each byte first.
class BitWriter {
 public:
  // Writes the low `count` bits of `bits` (count <= 32), the highest of them first.
  void put(uint32_t bits, int count);
  uint64_t bits() const { return bits_; }
  const std::vector<std::byte>& bytes() const { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
  uint64_t bits_ = 0;
};

// Reads a stream of `bits` bits from `bytes` (at least ceil(bits / 8) of them).
// `what` names the stream in error messages.
class BitReader {
 public:
  BitReader(std::span<const std::byte> bytes, uint64_t bits, std::string what);
  // The next bit; dlmem::Error past the end of the stream.
  uint32_t bit();
  uint64_t position() const { return pos_; }
  uint64_t remaining() const { return bits_ - pos_; }
  const std::string& what() const { return what_; }

 private:
  std::span<const std::byte> bytes_;
  uint64_t bits_;
  uint64_t pos_ = 0;
  std::string what_;
};

// Occurrences of each symbol of an alphabet of `alphabet` symbols. DLMEM_CHECK that
// every symbol is below `alphabet`.
std::vector<uint64_t> histogram(std::span<const uint32_t> symbols, uint32_t alphabet);

class HuffmanCode {
 public:
  // The optimal code for these frequencies (limited to kMaxCodeLength bits). Symbols
  // with frequency 0 get no code; a single used symbol gets a 1-bit code.
  // DLMEM_CHECK: 1 <= freqs.size() <= kMaxAlphabet.
  static HuffmanCode build(std::span<const uint64_t> freqs);
  // The code these lengths describe (Note [Canonical codes]). dlmem::Error naming
  // `what` when a length is over kMaxCodeLength, the alphabet is too large or empty,
  // or the lengths over-subscribe the code space (Kraft sum > 1).
  static HuffmanCode from_lengths(std::vector<uint8_t> lengths, const std::string& what);

  const std::vector<uint8_t>& lengths() const { return lengths_; }
  uint32_t alphabet() const { return static_cast<uint32_t>(lengths_.size()); }
  // Bits the encoding of these frequencies takes with this code.
  uint64_t cost(std::span<const uint64_t> freqs) const;

  // DLMEM_CHECK that each symbol has a code.
  void encode(uint32_t symbol, BitWriter& w) const;
  void encode(std::span<const uint32_t> symbols, BitWriter& w) const;
  // The next symbol; dlmem::Error (naming the reader's stream) on a bit pattern that is
  // no code or a stream that ends inside a code.
  uint32_t decode(BitReader& r) const;

 private:
  std::vector<uint8_t> lengths_;
  std::vector<uint32_t> codes_;                     // per symbol, valid where length > 0
  std::array<uint32_t, kMaxCodeLength + 1> count_{};  // codes of each length
  std::vector<uint32_t> sorted_;                    // symbols in canonical order
  void assign();
};

// Nibble packing of code lengths (two per byte, the first in the high nibble): the
// form a code takes in a .dlmz file, ceil(n / 2) bytes.
std::vector<std::byte> pack_lengths(std::span<const uint8_t> lengths);
std::vector<uint8_t> unpack_lengths(std::span<const std::byte> packed, uint32_t n);

}  // namespace dlmem::deploy
