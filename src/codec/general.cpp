// zstd and lz4: general-purpose byte compressors on the raw f32 bytes, for host-side
// swap buffers (where the link, not the encoder, is the bottleneck, they may beat zvc
// on data with runs or repeated values). zstd at level 1; lz4 in 64 MiB chunks (its
// input limit is 2 GB), each prefixed by its compressed size (u32).
#include <lz4.h>
#include <zstd.h>

#include <cstring>

#include "codec/detail.h"
#include "util/error.h"

namespace dlmem::codec::detail {

namespace {

class Zstd final : public Codec {
 public:
  std::string_view name() const override { return "zstd"; }
  Preserves preserves() const override { return Preserves::exact; }
  bool data_dependent() const override { return true; }
  uint64_t bound(uint64_t n) const override { return ZSTD_compressBound(4 * n); }

  uint64_t encode(const float* src, uint64_t n, std::byte* dst) const override {
    thread_local Ctx<ZSTD_CCtx, ZSTD_freeCCtx> cctx{ZSTD_createCCtx()};
    const size_t r = ZSTD_compressCCtx(cctx.p, dst, bound(n), src, 4 * n, 1);
    DLMEM_CHECK(!ZSTD_isError(r), "zstd: ", ZSTD_getErrorName(r));
    return r;
  }

  void decode(const std::byte* src, uint64_t size, uint64_t n, float* dst) const override {
    thread_local Ctx<ZSTD_DCtx, ZSTD_freeDCtx> dctx{ZSTD_createDCtx()};
    const size_t r = ZSTD_decompressDCtx(dctx.p, dst, 4 * n, src, size);
    DLMEM_CHECK(!ZSTD_isError(r) && r == 4 * n, "zstd data does not decode to ", n, " elements: ",
                ZSTD_isError(r) ? ZSTD_getErrorName(r) : "wrong size");
  }

 private:
  template <typename T, size_t (*Free)(T*)>
  struct Ctx {
    T* p;
    ~Ctx() { Free(p); }
  };
};

class Lz4 final : public Codec {
 public:
  static constexpr uint64_t kChunk = uint64_t{64} << 20;  // input bytes per chunk

  std::string_view name() const override { return "lz4"; }
  Preserves preserves() const override { return Preserves::exact; }
  bool data_dependent() const override { return true; }
  uint64_t bound(uint64_t n) const override {
    const uint64_t bytes = 4 * n, full = bytes / kChunk, rest = bytes % kChunk;
    return full * chunk_bound(kChunk) + (rest ? chunk_bound(rest) : 0);
  }

  uint64_t encode(const float* src, uint64_t n, std::byte* dst) const override {
    const auto* in = reinterpret_cast<const char*>(src);
    const uint64_t bytes = 4 * n;
    uint64_t out = 0;
    for (uint64_t off = 0; off < bytes; off += kChunk) {
      const int len = static_cast<int>(std::min(kChunk, bytes - off));
      const int cap = LZ4_compressBound(len);
      const int r = LZ4_compress_default(in + off, reinterpret_cast<char*>(dst + out + 4), len, cap);
      DLMEM_CHECK(r > 0, "lz4 failed to compress ", len, " bytes");
      const uint32_t r32 = static_cast<uint32_t>(r);
      std::memcpy(dst + out, &r32, 4);
      out += 4 + static_cast<uint64_t>(r);
    }
    return out;
  }

  void decode(const std::byte* src, uint64_t size, uint64_t n, float* dst) const override {
    auto* out = reinterpret_cast<char*>(dst);
    const uint64_t bytes = 4 * n;
    uint64_t in = 0;
    for (uint64_t off = 0; off < bytes; off += kChunk) {
      const int len = static_cast<int>(std::min(kChunk, bytes - off));
      DLMEM_CHECK(in + 4 <= size, "lz4 data is truncated");
      uint32_t c;
      std::memcpy(&c, src + in, 4);
      DLMEM_CHECK(in + 4 + c <= size, "lz4 data is truncated");
      const int r = LZ4_decompress_safe(reinterpret_cast<const char*>(src + in + 4), out + off, static_cast<int>(c), len);
      DLMEM_CHECK(r == len, "lz4 chunk does not decode to ", len, " bytes");
      in += 4 + c;
    }
    DLMEM_CHECK(in == size, "lz4 data has ", size - in, " bytes left over");
  }

 private:
  static uint64_t chunk_bound(uint64_t len) { return 4 + static_cast<uint64_t>(LZ4_compressBound(static_cast<int>(len))); }
};

}  // namespace

std::unique_ptr<Codec> make_zstd() { return std::make_unique<Zstd>(); }
std::unique_ptr<Codec> make_lz4() { return std::make_unique<Lz4>(); }

}  // namespace dlmem::codec::detail
