// Device encoders and decoders for the activation codecs of src/codec, writing the
// host codecs' formats byte for byte (tests compare them): bitmask (Gist, ISCA 2018,
// Sec. 4.1), sparse (Gist Sec. 4.2), zvc (cDMA, HPCA 2018, Sec. IV-B), fp16, bf16 and
// fp8-e4m3 (Gist's delayed precision reduction, Sec. 4.3). See src/codec/*.cpp for the
// formats. The data-dependent ones (zvc, sparse) run in three passes over "super
// blocks" of 64K elements: counts per super block, an exclusive scan of the counts
// (one block), then each super block scans its own words or blocks and writes; the
// only scratch is one u64 per super block.
#include <string>

#include "runtime/cuda/device_util.cuh"
#include "runtime/cuda/kernels.h"
#include "util/error.h"

namespace dlmem::cuda {

namespace {

using u64 = unsigned long long;

__device__ inline void store_f32(uint8_t* p, float v) {
  const uint32_t u = __float_as_uint(v);
  p[0] = static_cast<uint8_t>(u);
  p[1] = static_cast<uint8_t>(u >> 8);
  p[2] = static_cast<uint8_t>(u >> 16);
  p[3] = static_cast<uint8_t>(u >> 24);
}
__device__ inline float load_f32(const uint8_t* p) {
  return __uint_as_float(static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24));
}
__device__ inline bool nonzero(float v) { return __float_as_uint(v) != 0u; }  // +0.0 only is zero
__device__ inline unsigned lanes_below() { return (1u << (threadIdx.x & 31)) - 1u; }

// Exclusive scan over a block of exactly N threads (Hillis-Steele in shared memory).
template <int N>
__device__ u64 block_exclusive_scan(u64 v, u64* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int o = 1; o < N; o <<= 1) {
    const u64 t = static_cast<int>(threadIdx.x) >= o ? sh[threadIdx.x - o] : 0;
    __syncthreads();
    sh[threadIdx.x] += t;
    __syncthreads();
  }
  const u64 r = sh[threadIdx.x] - v;
  __syncthreads();
  return r;
}

// Exclusive scan of totals[0, supers) in place (one block of 1024); *size = head +
// unit * (the sum); when expect != ~0 the sum must equal it (decoders).
__global__ void scan_supers_k(int64_t supers, u64* totals, u64 head, u64 unit, u64* size, u64 expect,
                              DeviceError* err, int node) {
  __shared__ u64 sh[1024];
  const int64_t stripe = (supers + 1023) / 1024;
  const int64_t s0 = threadIdx.x * stripe, s1 = imin(supers, s0 + stripe);
  u64 local = 0;
  for (int64_t s = s0; s < s1; ++s) local += totals[s];
  u64 run = block_exclusive_scan<1024>(local, sh);
  for (int64_t s = s0; s < s1; ++s) {
    const u64 t = totals[s];
    totals[s] = run;
    run += t;
  }
  if (threadIdx.x == 1023) {
    if (size) *size = head + unit * run;
    if (expect != ~0ull && run != expect) record_error(err, node, kCorruptEncoding, static_cast<long long>(run),
                                                       static_cast<long long>(expect), 0);
  }
}

// ---------------------------------------------------------------- bitmask

__global__ void bitmask_encode_k(int64_t n, const float* x, uint8_t* dst) {
  const int64_t bytes = (n + 7) / 8;
  DLMEM_GRID_LOOP(b, bytes) {
    unsigned bits = 0;
    for (int j = 0; j < 8 && 8 * b + j < n; ++j) bits |= static_cast<unsigned>(x[8 * b + j] > 0.0f) << j;
    dst[b] = static_cast<uint8_t>(bits);
  }
}

__global__ void bitmask_decode_k(int64_t n, const uint8_t* src, float* y) {
  DLMEM_GRID_LOOP(i, n) y[i] = static_cast<float>((src[i >> 3] >> (i & 7)) & 1u);
}

// ---------------------------------------------------------------- reduced precision

// After F. Giesen's float_to_half_fast3_rtne / half_to_float, as src/codec/precision.cpp.
__device__ inline uint16_t f32_to_f16(float f) {
  uint32_t u = __float_as_uint(f);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  uint32_t o;
  if (u >= (127u + 16u) << 23) {
    o = u > 0x7F800000u ? (0x7E00u | ((u >> 13) & 0x3FFu)) : 0x7C00u;
  } else if (u < 113u << 23) {
    const float magic = __uint_as_float(((127u - 15u) + (23u - 10u) + 1u) << 23);
    o = __float_as_uint(__fadd_rn(__uint_as_float(u), magic)) - __float_as_uint(magic);
  } else {
    const uint32_t odd = (u >> 13) & 1u;
    u += ((15u - 127u) << 23) + 0xFFFu + odd;
    o = u >> 13;
  }
  return static_cast<uint16_t>((o & 0xFFFFu) | (sign >> 16));
}

__device__ inline float f16_to_f32(uint16_t h) {
  const uint32_t shifted_exp = 0x7C00u << 13;
  uint32_t o = (h & 0x7FFFu) << 13;
  const uint32_t exp = shifted_exp & o;
  o += (127u - 15u) << 23;
  if (exp == shifted_exp) {
    o += (128u - 16u) << 23;
  } else if (exp == 0) {
    o += 1u << 23;
    o = __float_as_uint(__fsub_rn(__uint_as_float(o), __uint_as_float(113u << 23)));
  }
  return __uint_as_float(o | (static_cast<uint32_t>(h & 0x8000u) << 16));
}

__device__ inline uint16_t f32_to_bf16(float f) {
  const uint32_t u = __float_as_uint(f);
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = (u >> 16) | 0x40u;
  return static_cast<uint16_t>((u & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}

__device__ inline uint8_t f32_to_e4m3(float f) {
  const uint32_t u = __float_as_uint(f);
  const uint32_t sign = (u >> 24) & 0x80u;
  const uint32_t ax = u & 0x7FFFFFFFu;
  const float a = __uint_as_float(ax);
  const uint32_t r = ax + 0x7FFFFu + ((ax >> 20) & 1u);
  const uint32_t normal = (((r >> 23) - 120u) << 3) | ((r >> 20) & 7u);
  const uint32_t sub = __float_as_uint(__fadd_rn(__fmul_rn(a, 512.0f), 8388608.0f)) - 0x4B000000u;
  uint32_t code = ax < 0x3C800000u ? sub : normal;
  code = ax >= 0x43E00000u ? 0x7Eu : code;
  code = ax >= 0x7F800000u ? 0x7Fu : code;
  return static_cast<uint8_t>(sign | code);
}

__device__ inline float e4m3_to_f32(uint8_t c) {
  const uint32_t s = (static_cast<uint32_t>(c) & 0x80u) << 24, e = (c >> 3) & 15u, m = c & 7u;
  float mag;
  if (e == 15 && m == 7) mag = __uint_as_float(0x7FC00000u);
  else if (e == 0) mag = __fmul_rn(static_cast<float>(m), 1.0f / 512.0f);
  else mag = __uint_as_float(((e + 120u) << 23) | (m << 20));
  return __uint_as_float(__float_as_uint(mag) | s);
}

__global__ void precision_encode_k(DeviceCodec c, int64_t n, const float* x, uint8_t* dst) {
  auto* d16 = reinterpret_cast<uint16_t*>(dst);
  DLMEM_GRID_LOOP(i, n) {
    const float v = x[i];
    if (c == DeviceCodec::fp16) d16[i] = f32_to_f16(v);
    else if (c == DeviceCodec::bf16) d16[i] = f32_to_bf16(v);
    else dst[i] = f32_to_e4m3(v);
  }
}

__global__ void precision_decode_k(DeviceCodec c, int64_t n, const uint8_t* src, float* y) {
  const auto* s16 = reinterpret_cast<const uint16_t*>(src);
  DLMEM_GRID_LOOP(i, n) {
    if (c == DeviceCodec::fp16) y[i] = f16_to_f32(s16[i]);
    else if (c == DeviceCodec::bf16) y[i] = __uint_as_float(static_cast<uint32_t>(s16[i]) << 16);
    else y[i] = e4m3_to_f32(src[i]);
  }
}

// ---------------------------------------------------------------- zvc
// ceil(n/64) u64 mask words, then the non-zero values. Super block: 1024 words.

constexpr int64_t kZvcSuper = 1024;

// Mask words (written to dst) and the non-zero count per super block.
__global__ void zvc_mask_k(int64_t n, const float* x, uint8_t* dst, u64* totals) {
  __shared__ u64 sh[32];
  const int64_t words = (n + 63) / 64;
  const int64_t w0 = static_cast<int64_t>(blockIdx.x) * kZvcSuper, w1 = imin(words, w0 + kZvcSuper);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  u64 count = 0;
  for (int64_t q = w0 + warp; q < w1; q += warps) {
    const int64_t e0 = 64 * q + lane, e1 = e0 + 32;
    const unsigned lo = __ballot_sync(0xffffffffu, e0 < n && nonzero(x[e0]));
    const unsigned hi = __ballot_sync(0xffffffffu, e1 < n && nonzero(x[e1]));
    const u64 word = static_cast<u64>(lo) | (static_cast<u64>(hi) << 32);
    if (lane == 0) reinterpret_cast<u64*>(dst)[q] = word;
    count += static_cast<u64>(__popcll(word));
  }
  count = block_sum(lane == 0 ? count : 0ull, sh);
  if (threadIdx.x == 0) totals[blockIdx.x] = count;
}

// Each word's first value index: the super block's base plus a scan of its words.
__device__ void zvc_offsets(int64_t words, const u64* mask, const u64* base, u64* off /*1024*/, u64* sh) {
  const int64_t q = static_cast<int64_t>(blockIdx.x) * kZvcSuper + threadIdx.x;
  const u64 cnt = q < words ? static_cast<u64>(__popcll(mask[q])) : 0;
  off[threadIdx.x] = base[blockIdx.x] + block_exclusive_scan<1024>(cnt, sh);
  __syncthreads();
}

__global__ void zvc_scatter_k(int64_t n, const float* x, uint8_t* dst, const u64* base) {
  __shared__ u64 sh[1024], off[1024];
  const int64_t words = (n + 63) / 64;
  const u64* mask = reinterpret_cast<const u64*>(dst);
  float* vals = reinterpret_cast<float*>(dst + words * 8);
  zvc_offsets(words, mask, base, off, sh);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int t = warp; t < kZvcSuper; t += 32) {
    const int64_t q = static_cast<int64_t>(blockIdx.x) * kZvcSuper + t;
    if (q >= words) break;
    const u64 word = mask[q];
    const unsigned lo = static_cast<unsigned>(word), hi = static_cast<unsigned>(word >> 32);
    if ((lo >> lane) & 1u) vals[off[t] + __popc(lo & lanes_below())] = x[64 * q + lane];
    if ((hi >> lane) & 1u) vals[off[t] + __popc(lo) + __popc(hi & lanes_below())] = x[64 * q + 32 + lane];
  }
}

__global__ void zvc_count_k(int64_t n, const uint8_t* src, u64* totals) {
  __shared__ u64 sh[32];
  const int64_t words = (n + 63) / 64;
  const u64* mask = reinterpret_cast<const u64*>(src);
  const int64_t w0 = static_cast<int64_t>(blockIdx.x) * kZvcSuper, w1 = imin(words, w0 + kZvcSuper);
  u64 count = 0;
  for (int64_t q = w0 + threadIdx.x; q < w1; q += blockDim.x) count += static_cast<u64>(__popcll(mask[q]));
  count = block_sum(count, sh);
  if (threadIdx.x == 0) totals[blockIdx.x] = count;
}

__global__ void zvc_gather_k(int64_t n, u64 nnz, const uint8_t* src, float* y, const u64* base, DeviceError* err,
                             int node) {
  __shared__ u64 sh[1024], off[1024];
  const int64_t words = (n + 63) / 64;
  const u64* mask = reinterpret_cast<const u64*>(src);
  const float* vals = reinterpret_cast<const float*>(src + words * 8);
  zvc_offsets(words, mask, base, off, sh);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int t = warp; t < kZvcSuper; t += 32) {
    const int64_t q = static_cast<int64_t>(blockIdx.x) * kZvcSuper + t;
    if (q >= words) break;
    const u64 word = mask[q];
    const unsigned lo = static_cast<unsigned>(word), hi = static_cast<unsigned>(word >> 32);
    for (int half = 0; half < 2; ++half) {
      const int64_t e = 64 * q + 32 * half + lane;
      if (e >= n) continue;
      const unsigned m = half ? hi : lo;
      float v = 0.f;
      if ((m >> lane) & 1u) {
        const u64 k = off[t] + (half ? __popc(lo) : 0) + __popc(m & lanes_below());
        if (k < nnz) v = vals[k];
        else record_error(err, node, kCorruptEncoding, static_cast<long long>(k), static_cast<long long>(nnz), 1);
      }
      y[e] = v;
    }
  }
}

// ---------------------------------------------------------------- sparse
// u16 count per 256-element block, then per block: indices (5c bytes), mask
// (L/8 + 4c) or raw (4L), whichever is smallest (ties: raw, then mask). Super block:
// 256 blocks.

constexpr int64_t kBlock = 256, kSparseSuper = 256;

__host__ __device__ inline int mode_of(u64 c, u64 len) {  // 0 indices, 1 mask, 2 raw
  const u64 raw = 4 * len, mask = (len + 7) / 8 + 4 * c, idx = 5 * c;
  if (raw <= mask && raw <= idx) return 2;
  return mask <= idx ? 1 : 0;
}
__host__ __device__ inline u64 payload_bytes(u64 c, u64 len) {
  switch (mode_of(c, len)) {
    case 2: return 4 * len;
    case 1: return (len + 7) / 8 + 4 * c;
    default: return 5 * c;
  }
}

// The 8 ballots (256 bits) of one block's non-zeros; lane-uniform.
__device__ inline void block_masks(const float* x, int64_t len, unsigned* m) {
  const int lane = threadIdx.x & 31;
  for (int r = 0; r < 8; ++r) {
    const int64_t j = 32 * r + lane;
    m[r] = __ballot_sync(0xffffffffu, j < len && nonzero(x[j]));
  }
}

__global__ void sparse_count_k(int64_t n, const float* x, uint8_t* dst, u64* totals) {
  __shared__ u64 sh[32];
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const int64_t b0 = static_cast<int64_t>(blockIdx.x) * kSparseSuper, b1 = imin(blocks, b0 + kSparseSuper);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  u64 bytes = 0;
  for (int64_t b = b0 + warp; b < b1; b += warps) {
    const int64_t len = imin(kBlock, n - b * kBlock);
    unsigned m[8];
    block_masks(x + b * kBlock, len, m);
    u64 c = 0;
    for (int r = 0; r < 8; ++r) c += static_cast<u64>(__popc(m[r]));
    if (lane == 0) {
      reinterpret_cast<uint16_t*>(dst)[b] = static_cast<uint16_t>(c);
      bytes += payload_bytes(c, static_cast<u64>(len));
    }
  }
  bytes = block_sum(bytes, sh);
  if (threadIdx.x == 0) totals[blockIdx.x] = bytes;
}

// Payload offset of each block of the super block (from the header counts).
__device__ bool sparse_offsets(int64_t n, const uint16_t* head, const u64* base, u64* off /*256*/, u64* sh) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kSparseSuper + threadIdx.x;
  u64 bytes = 0;
  bool bad = false;
  if (b < blocks) {
    const u64 len = static_cast<u64>(imin(kBlock, n - b * kBlock)), c = head[b];
    bad = c > len;
    bytes = bad ? 0 : payload_bytes(c, len);
  }
  off[threadIdx.x] = base[blockIdx.x] + block_exclusive_scan<kSparseSuper>(bytes, sh);
  return __syncthreads_or(bad);
}

__global__ void sparse_write_k(int64_t n, const float* x, uint8_t* dst, const u64* base) {
  __shared__ u64 sh[kSparseSuper], off[kSparseSuper];
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const auto* head = reinterpret_cast<const uint16_t*>(dst);
  sparse_offsets(n, head, base, off, sh);
  uint8_t* payload = dst + 2 * blocks;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int t = warp; t < kSparseSuper; t += warps) {
    const int64_t b = static_cast<int64_t>(blockIdx.x) * kSparseSuper + t;
    if (b >= blocks) break;
    const int64_t len = imin(kBlock, n - b * kBlock);
    const float* xb = x + b * kBlock;
    const u64 c = head[b];
    uint8_t* p = payload + off[t];
    const int mode = mode_of(c, static_cast<u64>(len));
    if (mode == 2) {
      for (int64_t j = lane; j < len; j += 32) store_f32(p + 4 * j, xb[j]);
      continue;
    }
    unsigned m[8];
    block_masks(xb, len, m);
    const u64 mb = static_cast<u64>((len + 7) / 8);
    if (mode == 1)
      for (u64 k = static_cast<u64>(lane); k < mb; k += 32) p[k] = static_cast<uint8_t>(m[k / 4] >> (8 * (k % 4)));
    u64 before = 0;
    for (int r = 0; r < 8; ++r) {
      if ((m[r] >> lane) & 1u) {
        const u64 k = before + static_cast<u64>(__popc(m[r] & lanes_below()));
        const float v = xb[32 * r + lane];
        if (mode == 1) {
          store_f32(p + mb + 4 * k, v);
        } else {
          p[k] = static_cast<uint8_t>(32 * r + lane);
          store_f32(p + c + 4 * k, v);
        }
      }
      before += static_cast<u64>(__popc(m[r]));
    }
  }
}

__global__ void sparse_size_k(int64_t n, const uint8_t* src, u64* totals, DeviceError* err, int node) {
  __shared__ u64 sh[32];
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const auto* head = reinterpret_cast<const uint16_t*>(src);
  const int64_t b0 = static_cast<int64_t>(blockIdx.x) * kSparseSuper, b1 = imin(blocks, b0 + kSparseSuper);
  u64 bytes = 0;
  for (int64_t b = b0 + threadIdx.x; b < b1; b += blockDim.x) {
    const u64 len = static_cast<u64>(imin(kBlock, n - b * kBlock)), c = head[b];
    if (c > len) record_error(err, node, kCorruptEncoding, static_cast<long long>(c), b, 2);
    else bytes += payload_bytes(c, len);
  }
  bytes = block_sum(bytes, sh);
  if (threadIdx.x == 0) totals[blockIdx.x] = bytes;
}

__global__ void sparse_read_k(int64_t n, u64 payload_size, const uint8_t* src, float* y, const u64* base,
                              DeviceError* err, int node) {
  __shared__ u64 sh[kSparseSuper], off[kSparseSuper];
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const auto* head = reinterpret_cast<const uint16_t*>(src);
  if (sparse_offsets(n, head, base, off, sh)) return;  // corrupt counts: reported by sparse_size_k
  const uint8_t* payload = src + 2 * blocks;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int t = warp; t < kSparseSuper; t += warps) {
    const int64_t b = static_cast<int64_t>(blockIdx.x) * kSparseSuper + t;
    if (b >= blocks) break;
    const int64_t len = imin(kBlock, n - b * kBlock);
    float* yb = y + b * kBlock;
    const u64 c = head[b];
    if (off[t] + payload_bytes(c, static_cast<u64>(len)) > payload_size) {
      if (lane == 0) record_error(err, node, kCorruptEncoding, b, static_cast<long long>(payload_size), 3);
      continue;
    }
    const uint8_t* p = payload + off[t];
    const int mode = mode_of(c, static_cast<u64>(len));
    if (mode == 2) {
      for (int64_t j = lane; j < len; j += 32) yb[j] = load_f32(p + 4 * j);
    } else if (mode == 1) {
      const u64 mb = static_cast<u64>((len + 7) / 8);
      u64 before = 0;
      for (int r = 0; r < 8; ++r) {
        const int64_t j = 32 * r + lane;
        const bool set = j < len && ((p[j / 8] >> (j % 8)) & 1u);
        const unsigned m = __ballot_sync(0xffffffffu, set);
        if (j < len) {
          const u64 k = before + static_cast<u64>(__popc(m & lanes_below()));
          yb[j] = set && k < c ? load_f32(p + mb + 4 * k) : 0.f;
        }
        before += static_cast<u64>(__popc(m));
      }
      if (before != c && lane == 0) record_error(err, node, kCorruptEncoding, b, static_cast<long long>(before), 4);
    } else {
      for (int64_t j = lane; j < len; j += 32) yb[j] = 0.f;
      __syncwarp();
      for (u64 k = static_cast<u64>(lane); k < c; k += 32) {
        const int64_t j = p[k];
        if (j < len) yb[j] = load_f32(p + c + 4 * k);
        else record_error(err, node, kCorruptEncoding, b, j, 5);
      }
    }
  }
}

int64_t supers(DeviceCodec c, uint64_t n) {
  if (c == DeviceCodec::zvc) return static_cast<int64_t>(((n + 63) / 64 + kZvcSuper - 1) / kZvcSuper);
  if (c == DeviceCodec::sparse) return static_cast<int64_t>(((n + kBlock - 1) / kBlock + kSparseSuper - 1) / kSparseSuper);
  return 0;
}

void set_size(const Launch& l, unsigned long long* size, u64 value) {
  if (!size) return;  // the caller knows the size (codecs that are not data-dependent)
  // A tiny copy from pageable host memory: the value is captured when the call returns.
  const cudaError_t e = cudaMemcpyAsync(size, &value, sizeof(value), cudaMemcpyHostToDevice, l.stream);
  DLMEM_CHECK(e == cudaSuccess, "cudaMemcpyAsync: ", cudaGetErrorString(e));
}

}  // namespace

std::optional<DeviceCodec> device_codec(std::string_view name) {
  if (name == "bitmask") return DeviceCodec::bitmask;
  if (name == "sparse") return DeviceCodec::sparse;
  if (name == "zvc") return DeviceCodec::zvc;
  if (name == "fp16") return DeviceCodec::fp16;
  if (name == "bf16") return DeviceCodec::bf16;
  if (name == "fp8-e4m3") return DeviceCodec::fp8_e4m3;
  return std::nullopt;
}

size_t codec_scratch_bytes(DeviceCodec c, uint64_t n) { return static_cast<size_t>(supers(c, n)) * sizeof(u64); }

void codec_encode(const Launch& l, DeviceCodec c, const float* x, uint64_t n, uint8_t* dst, unsigned long long* size,
                  void* scratch) {
  const int64_t nn = static_cast<int64_t>(n);
  auto* totals = static_cast<u64*>(scratch);
  switch (c) {
    case DeviceCodec::bitmask:
      if (n) bitmask_encode_k<<<grid_for((nn + 7) / 8), kThreads, 0, l.stream>>>(nn, x, dst);
      set_size(l, size, (n + 7) / 8);
      break;
    case DeviceCodec::fp16:
    case DeviceCodec::bf16:
    case DeviceCodec::fp8_e4m3:
      if (n) precision_encode_k<<<grid_for(nn), kThreads, 0, l.stream>>>(c, nn, x, dst);
      set_size(l, size, c == DeviceCodec::fp8_e4m3 ? n : 2 * n);
      break;
    case DeviceCodec::zvc: {
      const int64_t s = supers(c, n);
      if (s == 0) return set_size(l, size, 0);
      zvc_mask_k<<<static_cast<unsigned>(s), kThreads, 0, l.stream>>>(nn, x, dst, totals);
      check_launch("zvc_mask");
      scan_supers_k<<<1, 1024, 0, l.stream>>>(s, totals, (n + 63) / 64 * 8, 4, size, ~0ull, l.err, l.node);
      check_launch("zvc_scan");
      zvc_scatter_k<<<static_cast<unsigned>(s), 1024, 0, l.stream>>>(nn, x, dst, totals);
      break;
    }
    case DeviceCodec::sparse: {
      const int64_t s = supers(c, n);
      if (s == 0) return set_size(l, size, 0);
      sparse_count_k<<<static_cast<unsigned>(s), kThreads, 0, l.stream>>>(nn, x, dst, totals);
      check_launch("sparse_count");
      scan_supers_k<<<1, 1024, 0, l.stream>>>(s, totals, 2 * ((n + kBlock - 1) / kBlock), 1, size, ~0ull, l.err,
                                              l.node);
      check_launch("sparse_scan");
      sparse_write_k<<<static_cast<unsigned>(s), kSparseSuper, 0, l.stream>>>(nn, x, dst, totals);
      break;
    }
  }
  check_launch("codec_encode");
}

void codec_decode(const Launch& l, DeviceCodec c, const uint8_t* src, uint64_t size, uint64_t n, float* dst,
                  void* scratch) {
  const int64_t nn = static_cast<int64_t>(n);
  auto* totals = static_cast<u64*>(scratch);
  switch (c) {
    case DeviceCodec::bitmask:
      if (size != (n + 7) / 8) throw Error("bitmask data of ", size, " bytes does not hold ", n, " elements");
      if (n) bitmask_decode_k<<<grid_for(nn), kThreads, 0, l.stream>>>(nn, src, dst);
      break;
    case DeviceCodec::fp16:
    case DeviceCodec::bf16:
    case DeviceCodec::fp8_e4m3:
      if (size != (c == DeviceCodec::fp8_e4m3 ? n : 2 * n))
        throw Error("reduced-precision data of ", size, " bytes does not hold ", n, " elements");
      if (n) precision_decode_k<<<grid_for(nn), kThreads, 0, l.stream>>>(c, nn, src, dst);
      break;
    case DeviceCodec::zvc: {
      const uint64_t mask = (n + 63) / 64 * 8;
      if (size < mask || (size - mask) % 4 != 0 || size > mask + 4 * n)
        throw Error("zvc data of ", size, " bytes cannot hold ", n, " elements");
      const int64_t s = supers(c, n);
      if (s == 0) return;
      zvc_count_k<<<static_cast<unsigned>(s), kThreads, 0, l.stream>>>(nn, src, totals);
      check_launch("zvc_count");
      const u64 nnz = (size - mask) / 4;
      scan_supers_k<<<1, 1024, 0, l.stream>>>(s, totals, 0, 1, nullptr, nnz, l.err, l.node);
      check_launch("zvc_scan");
      zvc_gather_k<<<static_cast<unsigned>(s), 1024, 0, l.stream>>>(nn, nnz, src, dst, totals, l.err, l.node);
      break;
    }
    case DeviceCodec::sparse: {
      const uint64_t head = 2 * ((n + kBlock - 1) / kBlock);
      if (size < head) throw Error("sparse data of ", size, " bytes cannot hold ", n, " elements");
      const int64_t s = supers(c, n);
      if (s == 0) return;
      sparse_size_k<<<static_cast<unsigned>(s), kThreads, 0, l.stream>>>(nn, src, totals, l.err, l.node);
      check_launch("sparse_size");
      scan_supers_k<<<1, 1024, 0, l.stream>>>(s, totals, 0, 1, nullptr, size - head, l.err, l.node);
      check_launch("sparse_scan");
      sparse_read_k<<<static_cast<unsigned>(s), kSparseSuper, 0, l.stream>>>(nn, size - head, src, dst, totals, l.err,
                                                                              l.node);
      break;
    }
  }
  check_launch("codec_decode");
}

}  // namespace dlmem::cuda
