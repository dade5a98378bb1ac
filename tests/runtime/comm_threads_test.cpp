// The thread transport of data parallelism (runtime/comm.h, comm_threads.cpp) on its
// own: every collective against sums computed here in rank order, over rank counts
// that do not divide the tensors, in place and not, hundreds of rounds in a row (the
// barrier's generations; this file is also the TSan suite of the communication path,
// scripts/sanitize.sh), and a rank that fails while the others wait in a collective.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "runtime/comm.h"
#include "util/error.h"

namespace dlmem::runtime {
namespace {

// Runs fn(rank, comm) on `ranks` threads; returns the errors' messages ("" if none).
std::vector<std::string> on_ranks(int ranks, const std::function<void(int, Communicator&)>& fn) {
  const auto comms = make_thread_comms(ranks);
  std::vector<std::string> errors(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      try {
        fn(r, *comms[static_cast<size_t>(r)]);
      } catch (const Error& e) {
        errors[static_cast<size_t>(r)] = e.what();
      }
      // A failed assertion returns from this rank only: release the others, which
      // would wait for it in their next collective.
      if (::testing::Test::HasFailure() || !errors[static_cast<size_t>(r)].empty())
        abort_thread_group(*comms[static_cast<size_t>(r)], "rank " + std::to_string(r) + " failed");
    });
  for (auto& t : threads) t.join();
  return errors;
}

// Rank r's element i, distinct per rank, round, and element.
float value(int r, int round, int64_t i) { return static_cast<float>((r + 1) * 0.37 + round * 0.011 + i * 1e-3); }

// The mean over ranks in rank order, as the transport promises (Note [Reduction order]).
float mean(int ranks, int round, int64_t i) {
  float s = 0.f;
  for (int k = 0; k < ranks; ++k) s += value(k, round, i);
  return s / static_cast<float>(ranks);
}

TEST(ThreadComm, EveryCollectiveIsTheRankOrderResultOverUnevenShards) {
  for (int ranks : {1, 2, 3, 5})
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000}}) {
      SCOPED_TRACE(std::to_string(ranks) + " ranks, " + std::to_string(n) + " elements");
      const int64_t s = shard_size(n, ranks);
      std::atomic<int> checked{0};
      const auto errors = on_ranks(ranks, [&](int r, Communicator& c) {
        ASSERT_EQ(c.rank(), r);
        ASSERT_EQ(c.size(), ranks);
        std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n)),
            ws(static_cast<size_t>(c.workspace_floats(n, false) + 1));
        for (int round = 0; round < 50; ++round) {
          for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = value(r, round, i);
          // all-reduce, out of place and in place
          c.allreduce_mean(x.data(), y.data(), n, ws.data());
          for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[static_cast<size_t>(i)], mean(ranks, round, i)) << i;
          c.allreduce_mean(x.data(), x.data(), n, ws.data());
          ASSERT_EQ(0, std::memcmp(x.data(), y.data(), x.size() * sizeof(float)));
          // reduce-scatter: this rank's shard of the mean, zero-padded to s
          for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = value(r, round, i);
          std::vector<float> shard(static_cast<size_t>(s), -1.f);
          c.reduce_scatter_mean(x.data(), shard.data(), n, nullptr);
          for (int64_t j = 0; j < s; ++j) {
            const int64_t i = r * s + j;
            ASSERT_EQ(shard[static_cast<size_t>(j)], i < n ? mean(ranks, round, i) : 0.f) << j;
          }
          // all-gather of those shards: the whole mean again
          std::vector<float> whole(static_cast<size_t>(n), -1.f);
          c.all_gather(shard.data(), whole.data(), n);
          ASSERT_EQ(0, std::memcmp(whole.data(), y.data(), whole.size() * sizeof(float)));
          // every rank's value, and rank (ranks - 1)'s bytes everywhere
          const std::vector<double> vs = c.gather_doubles(r + round * 0.5);
          for (int k = 0; k < ranks; ++k) ASSERT_EQ(vs[static_cast<size_t>(k)], k + round * 0.5);
          int64_t b = r == ranks - 1 ? 1000 + round : -1;
          c.broadcast(&b, sizeof b, ranks - 1);
          ASSERT_EQ(b, 1000 + round);
        }
        ++checked;
      });
      for (const std::string& e : errors) EXPECT_EQ(e, "");
      EXPECT_EQ(checked.load(), ranks);
    }
}

TEST(ThreadComm, AFailedRankReleasesTheOthersWaitingInACollective) {
  // Rank 2 fails before its third all-reduce; ranks 0, 1 and 3 are (or will be) waiting
  // in it: they throw with the reason instead of waiting for ever.
  const int ranks = 4;
  const auto comms = make_thread_comms(ranks);
  std::vector<std::string> errors(ranks);
  std::vector<int> rounds(ranks, 0);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      Communicator& c = *comms[static_cast<size_t>(r)];
      std::vector<float> x(64, 1.f), ws(static_cast<size_t>(c.workspace_floats(64, false)));
      try {
        for (int round = 0; round < 1000; ++round) {
          if (r == 2 && round == 2) {
            abort_thread_group(c, "rank 2 failed");
            return;
          }
          c.allreduce_mean(x.data(), x.data(), 64, ws.data());
          rounds[static_cast<size_t>(r)] = round + 1;
        }
      } catch (const Error& e) {
        errors[static_cast<size_t>(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r : {0, 1, 3}) {
    EXPECT_NE(errors[static_cast<size_t>(r)].find("rank 2 failed"), std::string::npos) << r << ": " << errors[static_cast<size_t>(r)];
    EXPECT_EQ(rounds[static_cast<size_t>(r)], 2) << r;
  }
  EXPECT_EQ(errors[2], "");
}

}  // namespace
}  // namespace dlmem::runtime
