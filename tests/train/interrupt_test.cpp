// Faults during training (issue 22): Ctrl-C stops after the step in flight, writes the
// checkpoint, and resuming continues bit-identically, mid-epoch included; a step that
// goes non-finite is stopped at the first node that made the NaN (--check-finite).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "deploy/dlmz.h"
#include "train/checkpoint.h"
#include "util/atomic_file.h"
#include "train/trainer.h"
#include "util/cli_run.h"
#include "util/error.h"
#include "util/temp_dir.h"

namespace dlmem::train {
namespace {

TrainConfig config(int64_t steps) {
  TrainConfig c;
  c.model = "lenet5";
  c.batch = 32;
  c.epochs = 1;
  c.steps_per_epoch = steps;
  c.evaluate = false;
  c.threads = 2;
  c.dataset = "synthetic";
  c.optim.optimizer = ir::Optimizer::sgd;
  return c;
}

TEST(Interrupt, StopsAfterTheStepInFlightAndResumesBitIdenticallyMidEpoch) {
  test_util::TempDir dir;
  constexpr int64_t kSteps = 200;
  Trainer whole(config(kSteps));
  whole.run(nullptr);

  std::atomic<bool> stop{false};
  TrainConfig c = config(kSteps);
  c.interrupt = &stop;
  c.save = dir.path() + "/ck";
  Trainer a(c);
  std::thread poke([&] {
    while (a.steps_done() < 7) std::this_thread::sleep_for(std::chrono::microseconds(200));
    stop.store(true);
  });
  const TrainResult ra = a.run(nullptr);
  poke.join();
  ASSERT_TRUE(ra.interrupted);
  const uint64_t k = a.steps_done();
  ASSERT_GE(k, 7u);
  ASSERT_LT(k, static_cast<uint64_t>(kSteps)) << "the interrupt came after the last step; make kSteps larger";
  EXPECT_TRUE(ra.epochs.empty());  // a partial epoch is not reported as one
  EXPECT_EQ(load_checkpoint(c.save).step, static_cast<int64_t>(k));

  TrainConfig r = config(kSteps);
  r.resume = c.save;
  Trainer b(r);
  const TrainResult rb = b.run(nullptr);
  EXPECT_FALSE(rb.interrupted);
  EXPECT_EQ(b.steps_done(), static_cast<uint64_t>(kSteps));
  EXPECT_EQ(rb.losses.size(), static_cast<size_t>(kSteps) - k);
  EXPECT_EQ(b.state(), whole.state());
}

TEST(Interrupt, CtrlCOnTheCommandLineWritesTheCheckpointAndResumeMatches) {
  test_util::TempDir dir;
  const std::string args = " train --model lenet5 --dataset synthetic --epochs 1 --steps 1000 --batch 32 --optimizer sgd "
                           "--no-eval --threads 2 --seed 5";
  // Built before fork: the child only execs (no allocation between fork and exec).
  const std::string cmd =
      "exec " + std::string(DLMEM_CLI_PATH) + args + " --save " + dir.path() + "/ck > " + dir.path() + "/log 2>&1";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until it trains (the progress bar shows), then Ctrl-C.
  for (int i = 0; i < 400; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    std::ifstream log(dir.path() + "/log");
    const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    if (text.find("epoch 1 [") != std::string::npos) break;
  }
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : -1)
                                 << " instead of stopping; its output:\n"
                                 << std::string((std::istreambuf_iterator<char>(*std::make_unique<std::ifstream>(dir.path() + "/log"))),
                                                std::istreambuf_iterator<char>());
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const Checkpoint ck = load_checkpoint(dir.path() + "/ck");
  ASSERT_GT(ck.step, 0);
  ASSERT_LT(ck.step, 1000) << "the run ended before Ctrl-C";

  // Resume and finish; then the same run without the interruption.
  auto r = test_util::run_cli(args + " --resume " + dir.path() + "/ck --save " + dir.path() + "/resumed");
  ASSERT_EQ(r.code, 0) << r.out;
  r = test_util::run_cli(args + " --save " + dir.path() + "/whole");
  ASSERT_EQ(r.code, 0) << r.out;
  const Checkpoint a = load_checkpoint(dir.path() + "/resumed"), b = load_checkpoint(dir.path() + "/whole");
  EXPECT_EQ(a.step, 1000);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_TRUE(a.tensors[i].data == b.tensors[i].data) << a.tensors[i].name;
  }
}

TEST(CheckFinite, NamesTheFirstNodeThatWentNonFinite) {
  TrainConfig c = config(20);
  c.optim.lr = 1e12;
  c.check_finite = true;
  Trainer t(c);
  try {
    t.run(nullptr);
    FAIL() << "a learning rate of 1e12 trained 20 finite steps";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("node '"), std::string::npos) << m;
    EXPECT_NE(m.find("first non-finite value"), std::string::npos) << m;
  }
  const auto r = test_util::run_cli("train --model lenet5 --dataset synthetic --steps 20 --epochs 1 --no-eval --optimizer sgd "
                                    "--lr 1e12 --check-finite");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("first non-finite value"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace dlmem::train

namespace dlmem::train {
namespace {

std::vector<std::byte> bytes_of(const std::string& path) { return read_file(path); }

TEST(SaveFaults, AFileSizeLimitFailsClearlyAndKeepsTheOldCheckpoint) {
  test_util::TempDir dir;
  const std::string ck = dir.path() + "/m.ckpt";
  const std::string args = " train --model lenet5 --dataset synthetic --epochs 1 --steps 2 --batch 16 --no-eval --optimizer sgd";
  auto r = test_util::run_cli(args + " --save " + ck);
  ASSERT_EQ(r.code, 0) << r.out;
  const std::vector<std::byte> before = bytes_of(ck);
  // 64 blocks of 512 bytes: far below a LeNet-5 checkpoint (1.7 MB).
  const std::string cmd = "sh -c 'ulimit -f 64; exec " + std::string(DLMEM_CLI_PATH) + args + " --seed 9 --save " + ck + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << "killed instead of failing: " << out;
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find(ck), std::string::npos) << out;
  EXPECT_EQ(bytes_of(ck), before);  // the old checkpoint, untouched
  EXPECT_NO_THROW(load_checkpoint(ck));
  // No temporary file is left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(SaveFaults, KilledAtRandomPointsTheCheckpointIsAlwaysOldOrNew) {
  test_util::TempDir dir;
  const std::string ck = dir.path() + "/m.ckpt";
  const std::string args = " train --model lenet5 --dataset synthetic --epochs 1 --steps 1 --batch 16 --no-eval --optimizer sgd";
  ASSERT_EQ(test_util::run_cli(args + " --save " + ck).code, 0);
  int completed = 0;
  for (int i = 0; i < 12; ++i) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const std::string cmd = std::string(DLMEM_CLI_PATH) + args + " --seed " + std::to_string(i) + " --save " + ck;
      execl("/bin/sh", "sh", "-c", ("exec " + cmd + " > /dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(40 * i));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    completed += WIFEXITED(status);
    EXPECT_NO_THROW(load_checkpoint(ck)) << "after a kill at " << 40 * i << " ms";
  }
  // Some runs died mid-way (the property is about those), and the file always loaded.
  EXPECT_LT(completed, 12);
}

TEST(SaveFaults, KilledWhileCompressingTheDlmzIsAlwaysOldOrNew) {
  test_util::TempDir dir;
  const std::string ck = dir.path() + "/m.ckpt", out = dir.path() + "/m.dlmz";
  ASSERT_EQ(test_util::run_cli(" train --model mlp --dataset synthetic --epochs 1 --steps 2 --batch 16 --no-eval --optimizer "
                               "sgd --save " + ck).code, 0);
  const std::string args = " compress --model mlp --dataset synthetic --checkpoint " + ck +
                           " --prune-rounds 1 --retrain-epochs 0 --finetune-epochs 0 --no-eval --out " + out;
  auto r = test_util::run_cli(args);
  ASSERT_EQ(r.code, 0) << r.out;
  int completed = 0;
  for (int i = 0; i < 10; ++i) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", ("exec " + std::string(DLMEM_CLI_PATH) + args + " > /dev/null 2>&1").c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30 * i));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    completed += WIFEXITED(status);
    EXPECT_NO_THROW(deploy::load_dlmz(out)) << "after a kill at " << 30 * i << " ms";
  }
  EXPECT_LT(completed, 10);
}

}  // namespace
}  // namespace dlmem::train
