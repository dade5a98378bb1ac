// Codec throughput against memcpy on the same buffer (Google Benchmark): every codec's
// encode and decode, single-threaded, on ReLU-like data (a normal distribution with
// its negative half zeroed: about 50% zeros, as ReLU outputs of trained nets, cDMA
// Sec. III) and on a sparser buffer (1 in 8 non-zero). Throughput counts the raw f32
// bytes. After the Google Benchmark run, one JSON line per (codec, direction, data,
// size) on stdout with GB/s and the ratio to memcpy of the same bytes in the same run
// (BENCHMARKING.md: ratios from one run).
//
//   build/release/codec_bench            # 4 MiB and 64 MiB buffers
//   build/release/codec_bench --quick    # 4 MiB only, shorter runs (make bench)
// Google Benchmark's own flags (--benchmark_filter=zvc, ...) pass through; its table
// goes to stderr.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.h"

namespace {

using dlmem::codec::Codec;

// 64-byte aligned buffers (as the executor's arena gives).
struct Aligned {
  explicit Aligned(size_t bytes) : p(static_cast<std::byte*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64))) {}
  ~Aligned() { std::free(p); }
  Aligned(const Aligned&) = delete;
  Aligned& operator=(const Aligned&) = delete;
  std::byte* p;
};

struct Data {
  std::unique_ptr<Aligned> raw;  // n floats
  uint64_t n = 0;
};

// density: the fraction of non-zeros.
const Data& data(const std::string& kind, uint64_t n) {
  static std::map<std::pair<std::string, uint64_t>, Data> cache;
  Data& d = cache[{kind, n}];
  if (!d.raw) {
    d.n = n;
    d.raw = std::make_unique<Aligned>(4 * n);
    auto* x = reinterpret_cast<float*>(d.raw->p);
    std::mt19937 rng(42);
    std::normal_distribution<float> normal;
    for (uint64_t i = 0; i < n; ++i) {
      const float v = normal(rng);
      x[i] = kind == "relu" ? std::max(v, 0.0f) : (rng() % 8 == 0 ? std::abs(v) : 0.0f);
    }
  }
  return d;
}

void bm_memcpy(benchmark::State& st, std::string kind, uint64_t n) {
  const Data& d = data(kind, n);
  Aligned dst(4 * n);
  for (auto _ : st) {
    std::memcpy(dst.p, d.raw->p, 4 * n);
    benchmark::DoNotOptimize(dst.p);
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * 4 * n));
}

void bm_encode(benchmark::State& st, const Codec* c, std::string kind, uint64_t n) {
  const Data& d = data(kind, n);
  Aligned dst(c->bound(n));
  uint64_t size = 0;
  for (auto _ : st) {
    size = c->encode(reinterpret_cast<const float*>(d.raw->p), n, dst.p);
    benchmark::DoNotOptimize(dst.p);
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * 4 * n));
  st.counters["ratio"] = static_cast<double>(4 * n) / static_cast<double>(size);
}

void bm_decode(benchmark::State& st, const Codec* c, std::string kind, uint64_t n) {
  const Data& d = data(kind, n);
  Aligned enc(c->bound(n));
  const uint64_t size = c->encode(reinterpret_cast<const float*>(d.raw->p), n, enc.p);
  Aligned dst(4 * n);
  for (auto _ : st) {
    c->decode(enc.p, size, n, reinterpret_cast<float*>(dst.p));
    benchmark::DoNotOptimize(dst.p);
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * 4 * n));
}

// Keeps every run's bytes per second (and still prints the usual table to stderr).
class Collector : public benchmark::ConsoleReporter {
 public:
  Collector() : benchmark::ConsoleReporter() { SetOutputStream(&std::cerr); SetErrorStream(&std::cerr); }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.error_occurred || r.run_type != Run::RT_Iteration) continue;
      const auto it = r.counters.find("bytes_per_second");
      if (it != r.counters.end()) gbps[r.benchmark_name()] = it->second.value / 1e9;
      const auto ratio = r.counters.find("ratio");
      if (ratio != r.counters.end()) ratios[r.benchmark_name()] = ratio->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> gbps, ratios;
};

std::string name(const std::string& op, const std::string& codec, const std::string& kind, uint64_t n) {
  return op + "/" + codec + "/" + kind + "/" + std::to_string(4 * n >> 20) + "MiB";
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "--quick") quick = true;
    else args.push_back(argv[i]);
  }
  std::string min_time = quick ? "--benchmark_min_time=0.05" : "--benchmark_min_time=0.5";
  args.insert(args.begin() + 1, min_time.data());
  int n_args = static_cast<int>(args.size());
  benchmark::Initialize(&n_args, args.data());

  std::vector<uint64_t> sizes = {uint64_t{1} << 20};  // 4 MiB: in the last-level cache
  if (!quick) sizes.push_back(uint64_t{1} << 24);     // 64 MiB: from memory
  const std::vector<std::string> kinds = {"relu", "sparse8"};
  for (uint64_t n : sizes)
    for (const std::string& kind : kinds) {
      benchmark::RegisterBenchmark(name("memcpy", "memcpy", kind, n).c_str(), bm_memcpy, kind, n);
      for (const Codec* c : dlmem::codec::all()) {
        benchmark::RegisterBenchmark(name("encode", std::string(c->name()), kind, n).c_str(), bm_encode, c, kind, n);
        benchmark::RegisterBenchmark(name("decode", std::string(c->name()), kind, n).c_str(), bm_decode, c, kind, n);
      }
    }
  Collector rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  benchmark::Shutdown();

  for (uint64_t n : sizes)
    for (const std::string& kind : kinds) {
      const auto mc = rep.gbps.find(name("memcpy", "memcpy", kind, n));
      if (mc == rep.gbps.end()) continue;
      for (const Codec* c : dlmem::codec::all())
        for (const char* op : {"encode", "decode"}) {
          const std::string key = name(op, std::string(c->name()), kind, n);
          const auto it = rep.gbps.find(key);
          if (it == rep.gbps.end()) continue;
          const auto ratio = rep.ratios.find(name("encode", std::string(c->name()), kind, n));
          std::cout << "{\"bench\":\"codec\",\"codec\":\"" << c->name() << "\",\"op\":\"" << op << "\",\"data\":\"" << kind
                    << "\",\"bytes\":" << 4 * n << ",\"gbps\":" << it->second << ",\"memcpy_gbps\":" << mc->second
                    << ",\"vs_memcpy\":" << it->second / mc->second
                    << ",\"compression_ratio\":" << (ratio == rep.ratios.end() ? 0.0 : ratio->second)
                    << ",\"quick\":" << (quick ? "true" : "false") << "}\n";
        }
    }
  return 0;
}
