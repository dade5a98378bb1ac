#include <iostream>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <atomic>
#include <thread>

#include "cli/commands.h"
#include "models/onnx/onnx.h"
#include "plan/json.h"
#include "runtime/comm.h"
#include "train/trainer.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/host_memory.h"
#include "util/format.h"
#include "util/table.h"
#include <algorithm>

namespace dlmem::cli {

namespace {

struct TrainArgs {
  std::string lossy;  // --lossy[=CODEC]
  ModelArgs model;
  train::TrainConfig cfg;
  double lr = -1;
  bool json = false;
  std::string pool_snapshot;
  std::string export_onnx;          // --export: the trained weights as an ONNX model
  std::string loss = "cross-entropy";
  std::string host_budget;          // "" : what the machine reports available
  // Data parallelism (ir/parallel.h): under mpirun one rank per process, else --ranks
  // threads of this process.
  bool data_parallel = false;
  int ranks = 0;
  int zero = 0;
  bool deterministic_reduce = false;
};

// What the pooled allocator did (--allocator pool).
nlohmann::json pool_json(const runtime::PoolAllocator& pool) {
  const runtime::PoolStats s = pool.stats();
  return {{"capacity", s.capacity},           {"allocated_peak", s.allocated.peak}, {"reserved_peak", s.reserved.peak},
          {"requested_peak", s.requested.peak}, {"allocs", s.allocs},                 {"splits", s.splits},
          {"merges", s.merges},                 {"segment_reserves", s.segment_reserves},
          {"segment_releases", s.segment_releases}, {"fragmentation", s.fragmentation}};
}

// The nodes that took longest, summed over all steps run.
void print_profile(const train::Trainer& t, std::ostream& os) {
  const auto& secs = t.node_seconds();
  std::vector<ir::NodeId> order(secs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<ir::NodeId>(i);
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return secs[static_cast<size_t>(a)] > secs[static_cast<size_t>(b)]; });
  double total = 0;
  for (double s : secs) total += s;
  const double steps = static_cast<double>(std::max<uint64_t>(t.steps_done(), 1));
  Table tab({{"node", Align::Left}, {"op", Align::Left}, {"per step", Align::Right}, {"share", Align::Right}});
  for (size_t i = 0; i < std::min<size_t>(order.size(), 15); ++i) {
    const ir::Node& n = t.graph().node(order[i]);
    const double s = secs[static_cast<size_t>(order[i])];
    tab.add_row({n.name, std::string(ir::op_name(n.op)), human_duration(s / steps),
                 std::to_string(100.0 * s / std::max(total, 1e-12)).substr(0, 4) + "%"});
  }
  os << "\nslowest nodes (kernel time " << human_duration(total / steps) << " per step):\n" << tab.str();
}

// Ctrl-C: the step in flight finishes, then training stops (Trainer, TrainConfig::interrupt).
std::atomic<bool> g_interrupt{false};
extern "C" void on_sigint(int) { g_interrupt.store(true); }

int train_rank(const TrainArgs& a, const train::TrainConfig& c, bool lead);

// Without --data-parallel: one process, one rank. Under mpirun: this process's rank.
// Else --ranks threads, each a rank with its own trainer; a rank that fails stops the
// others (their collectives throw) and its error is the one reported.
int run_ranks(const TrainArgs& a, train::TrainConfig c) {
  if (!a.data_parallel) {
    if (a.ranks || a.zero || a.deterministic_reduce)
      throw Error("--ranks, --zero and --deterministic-reduce need --data-parallel");
    return train_rank(a, c, true);
  }
  if (a.zero < 0 || a.zero > 3) throw Error("--zero takes a ZeRO stage: 0, 1, 2 or 3; got ", a.zero);
  if (c.bucket_mib < 0) throw Error("--bucket-mb must be 0 (one all-reduce per gradient) or positive, got ", c.bucket_mib);
  c.zero = a.zero;
  if (runtime::launched_by_mpirun()) {
    if (a.ranks) throw Error("--ranks is for ranks as threads of one process; under mpirun the ranks are its -np");
    const std::unique_ptr<runtime::Communicator> comm = runtime::make_mpi_comm(a.deterministic_reduce);
    c.comm = comm.get();
    if (comm->size() == 1) return train_rank(a, c, true);
    // A rank that fails ends the job: the others would wait for it in their next
    // collective (and its own MPI_Finalize would wait for them) for ever.
    try {
      return train_rank(a, c, comm->rank() == 0);
    } catch (const InternalError& e) {
      runtime::abort_mpi_job("dlmem: internal error: rank " + std::to_string(comm->rank()) + ": " + e.what(), 3);
    } catch (const std::exception& e) {
      runtime::abort_mpi_job("dlmem: error: rank " + std::to_string(comm->rank()) + " of " + std::to_string(comm->size()) +
                                 ": " + e.what() + " (the other ranks were stopped)",
                             2);
    }
  }
  if (a.ranks < 1)
    throw Error("--data-parallel outside mpirun runs its ranks as threads of this process: give --ranks N, or launch "
                "'mpirun -np N dlmem train --data-parallel ...'");
  const std::vector<std::unique_ptr<runtime::Communicator>> comms = runtime::make_thread_comms(a.ranks);
  if (c.threads == 0) c.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / a.ranks);
  std::vector<int> rcs(static_cast<size_t>(a.ranks), 0);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(a.ranks));
  std::atomic<int> failures{0};
  std::vector<int> failed_order(static_cast<size_t>(a.ranks), -1);
  std::vector<std::thread> threads;
  for (int r = 0; r < a.ranks; ++r)
    threads.emplace_back([&, r] {
      train::TrainConfig cr = c;
      cr.comm = comms[static_cast<size_t>(r)].get();
      try {
        rcs[static_cast<size_t>(r)] = train_rank(a, cr, r == 0);
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
        failed_order[static_cast<size_t>(r)] = failures++;
        runtime::abort_thread_group(*cr.comm, "rank " + std::to_string(r) + " failed; the other ranks stopped");
      }
    });
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < a.ranks; ++r)
    if (failed_order[static_cast<size_t>(r)] == 0) std::rethrow_exception(errors[static_cast<size_t>(r)]);
  return rcs[0];
}

int run(TrainArgs& a) {
  // Ctrl-C from here on stops between steps; a second one ends the process at once
  // (SA_RESETHAND). Before the first step it stops before any.
  struct sigaction sa{}, old{};
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old);
  train::TrainConfig& c = a.cfg;
  c.model = a.model.model;
  c.batch = a.model.batch;
  c.model_config = a.model.config(true);
  c.optim.optimizer = a.model.parsed_optimizer();
  if (c.optim.optimizer == ir::Optimizer::none) throw Error("train needs an optimizer: --optimizer sgd or adam");
  if (!a.pool_snapshot.empty() && c.allocator != "pool")
    throw Error("--pool-snapshot needs --allocator pool (the static allocator has no pool to show)");
  c.optim.lr = a.lr > 0 ? a.lr : (c.optim.optimizer == ir::Optimizer::adam ? 1e-3 : 0.01);
  if (a.lr == 0 || (a.lr < 0 && a.lr != -1)) throw Error("--lr must be positive, got ", a.lr);
  if (a.loss != "cross-entropy")
    throw Error("unknown --loss '", a.loss, "'; dlmem trains classifiers with cross-entropy (the mean softmax "
                "cross-entropy of the model's [batch, classes] output)");
  if (!a.export_onnx.empty() && !c.model.ends_with(".onnx"))
    throw Error("--export writes an ONNX model with the trained weights and needs --onnx (a zoo model has no ONNX file "
                "to start from; use --save for a checkpoint)");
  c.policy = resolve_policy(c.policy, c.budget, a.lossy);
  c.plan_options.lossy = a.lossy;
  c.plan_options.host_budget = host_budget(a.host_budget);
  c.interrupt = &g_interrupt;
  const int rc = run_ranks(a, c);
  sigaction(SIGINT, &old, nullptr);
  return rc;
}

// One rank's training (the only one without --data-parallel); `lead` (rank 0) prints.
int train_rank(const TrainArgs& a, const train::TrainConfig& c, bool lead) {
  train::Trainer t(c);
  const plan::Plan& p = t.plan();
  std::ostream* log = a.json || !lead ? nullptr : &std::cerr;
  if (log)
    *log << c.model << ": " << human_count(static_cast<uint64_t>(t.graph().parameter_count())) << " parameters, batch " << c.batch
         << ", policy " << p.policy << (p.stats.chosen.empty() ? "" : " (" + p.stats.chosen + ")") << ", device arena " << human_bytes(p.device_arena)
         << (p.budget ? " (budget " + human_bytes(p.budget) + ")" : std::string()) << ", "
         << (c.device == "cuda" ? "cuda (" + runtime::cuda_device_info().name + ")"
                                : (c.threads ? std::to_string(c.threads) : "default") + " threads")
         << "\n";
  if (log && t.ranks() > 1)
    *log << "data parallel: " << t.ranks() << " ranks (" << c.comm->name() << "), ZeRO " << c.zero << ", "
         << c.batch / t.ranks() << " samples per rank and step; per rank: " << human_bytes(p.stats.peak_by_role[static_cast<size_t>(ir::Role::weight)])
         << " weights, " << human_bytes(p.stats.peak_by_role[static_cast<size_t>(ir::Role::optimizer_state)])
         << " optimizer state at the peak\n";
  train::TrainResult r = t.run(log);
  // --export: gathering ZeRO's shards is a collective, so every rank takes part; the
  // lead writes.
  std::map<std::string, std::vector<float>> trained;
  if (!a.export_onnx.empty() && !r.interrupted) trained = t.state();
  if (!lead) return r.interrupted ? 130 : 0;
  if (r.interrupted) {
    std::cerr << "\ninterrupted after step " << t.steps_done() << ": "
              << (c.save.empty() ? "no --save was given, nothing written"
                                 : "checkpoint " + c.save + " written; continue with --resume " + c.save)
              << "\n";
    return 130;
  }
  const runtime::PoolAllocator* pool = t.executor().pool();
  if (pool && !a.pool_snapshot.empty()) {
    const std::string text = pool->snapshot().dump(1);
    write_file_atomic(a.pool_snapshot, std::as_bytes(std::span<const char>(text.data(), text.size())));
  }
  if (a.json) {
    nlohmann::json ep = nlohmann::json::array();
    for (const auto& e : r.epochs)
      ep.push_back({{"epoch", e.epoch}, {"train_loss", e.train_loss}, {"train_accuracy", e.train_accuracy},
                    {"test_accuracy", e.test_accuracy}, {"seconds", e.seconds}, {"samples_per_second", e.samples_per_second}});
    nlohmann::json j{{"model", c.model}, {"policy", p.policy}, {"chosen", p.stats.chosen}, {"budget", p.budget}, {"device_arena", r.arena},
                     {"planned_peak", r.planned_peak}, {"measured_peak", r.peak_device}, {"allocator", c.allocator},
                     {"losses", r.losses}, {"epochs", ep}};
    if (t.ranks() > 1)
      j["data_parallel"] = {{"ranks", t.ranks()},
                            {"transport", c.comm->name()},
                            {"zero", c.zero},
                            {"samples_per_rank", c.batch / t.ranks()},
                            {"peak_by_role", plan::stats_json(p)["peak_by_role"]}};
    if (pool) j["pool"] = pool_json(*pool);
    std::cout << j.dump(2) << "\n";
  } else {
    std::cerr << "peak device memory " << human_bytes(r.peak_device) << " measured, " << human_bytes(r.planned_peak)
              << " planned, arena " << human_bytes(r.arena) << "\n";
    if (pool) {
      const runtime::PoolStats s = pool->stats();
      std::cerr << "pool allocator: reserved peak " << human_bytes(s.reserved.peak) << ", allocated peak "
                << human_bytes(s.allocated.peak) << " (asked " << human_bytes(s.requested.peak) << ") of "
                << human_bytes(s.capacity) << "; " << s.allocs << " allocations, " << s.splits << " splits, " << s.merges
                << " merges, " << s.segment_reserves << " segments reserved, fragmentation now "
                << std::to_string(100 * s.fragmentation).substr(0, 4) << "%\n";
    }
    if (!a.pool_snapshot.empty() && pool) std::cerr << "wrote " << a.pool_snapshot << "\n";
    if (!c.save.empty()) std::cerr << "saved " << c.save << "\n";
  }
  if (!a.export_onnx.empty()) {
    // Weights (and batch-norm running statistics) by initializer name; the optimizer's
    // state is not part of the model.
    models::onnx::export_model(c.model, a.export_onnx, trained);
    if (!a.json) std::cerr << "exported " << a.export_onnx << " (the model with its trained weights)\n";
  }
  if (c.profile) print_profile(t, std::cerr);
  return 0;
}

}  // namespace

std::function<int()> add_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "train a zoo model on the cpu or cuda backend");
  auto a = std::make_shared<TrainArgs>();
  a->model.optimizer = "adam";  // train's default: Adam, lr 1e-3
  a->model.add(*cmd, 64);
  auto& c = a->cfg;
  c.policy = "";  // resolve_policy: auto with --budget, else default
  cmd->add_option("--dataset", c.dataset, "fashion-mnist | synthetic | auto")->capture_default_str();
  cmd->add_option("--data-dir", c.data_dir, "Fashion-MNIST directory (default /usr/share/datasets/fashion-mnist)");
  cmd->add_option("--epochs", c.epochs, "epochs")->capture_default_str();
  cmd->add_option("--steps", c.steps_per_epoch, "steps per epoch (0: the whole dataset)");
  cmd->add_option("--budget", c.budget, "device memory: bytes (64MiB) or a share of the default plan's need (40%)");
  cmd->add_option("--policy,-p", c.policy, "memory policy (see 'dlmem plan --help'); default: auto with --budget, else default");
  cmd->add_flag("--lossy{fp16}", a->lossy,
                "with --policy compress or auto: stash feature maps in reduced precision (lossy, opt-in): --lossy (fp16), "
                "--lossy=bf16, --lossy=fp8-e4m3");
  cmd->add_option("--host-budget", a->host_budget,
                  "host memory swapped tensors may fill: bytes (16GiB) or a share of what the machine reports available "
                  "(50%); default: what it reports available (a plan over it is refused)");
  cmd->add_option("--place-time-limit", c.plan_options.place_time_limit_s,
                  "seconds the exact placement search may take when the heuristics' arena is over the budget (0: never)")
      ->capture_default_str();
  cmd->add_option("--allocator", c.allocator, "device memory: static (the plan's offsets) | pool (pooled allocator)")
      ->capture_default_str();
  cmd->add_option("--pool-snapshot", a->pool_snapshot, "with --allocator pool: write the pool's segments and blocks as JSON");
  cmd->add_option("--lr", a->lr, "learning rate (default 0.01 for sgd, 0.001 for adam)");
  cmd->add_option("--momentum", c.optim.momentum, "sgd momentum")->capture_default_str();
  cmd->add_option("--weight-decay", c.optim.weight_decay, "L2 weight decay")->capture_default_str();
  cmd->add_option("--threads", c.threads, "compute threads (0: default)")->capture_default_str();
  cmd->add_option("--device", c.device,
                  "cpu (oneDNN) | cuda (an NVIDIA GPU: cuDNN, cuBLAS) | a device profile the plan is made for, run on "
                  "the cpu backend (v100-16gb, h100-80gb, file.json), as 'dlmem plan --device'")
      ->capture_default_str();
  cmd->add_option("--seed", c.seed, "seed of initialisation, shuffling and dropout")->capture_default_str();
  cmd->add_option("--save", c.save, "write a checkpoint after training, or when Ctrl-C stops it (atomically)");
  cmd->add_flag("--check-finite", c.check_finite,
                "check every node's outputs for NaN and infinity: stop at the first node that makes one, naming it");
  cmd->add_option("--export", a->export_onnx, "with --onnx: write the model with its trained weights as FILE.onnx (atomically)");
  cmd->add_option("--loss", a->loss, "the loss of an imported model: cross-entropy (on its [batch, classes] output)")
      ->capture_default_str();
  cmd->add_option("--resume", c.resume, "start from a checkpoint");
  cmd->add_flag("!--no-eval", c.evaluate, "skip test accuracy");
  cmd->add_flag("--json", a->json, "print the result as one JSON object (no progress bar)");
  cmd->add_flag("--profile", c.profile, "time every instruction; print the slowest nodes");
  cmd->add_flag("--data-parallel", a->data_parallel,
                "data-parallel training: --batch is the global batch, each rank trains on its share; under "
                "'mpirun -np N' one rank per process (Open MPI), else --ranks threads of this process");
  cmd->add_option("--ranks", a->ranks, "with --data-parallel outside mpirun: ranks as threads of this process");
  cmd->add_option("--zero", a->zero,
                  "with --data-parallel: ZeRO stage: 0 all-reduce gradients (DDP), 1 shard optimizer state, 2 also "
                  "gradients, 3 also weights (gathered before use)")
      ->capture_default_str();
  cmd->add_option("--bucket-mb", c.bucket_mib,
                  "with --data-parallel, ZeRO 0/1: gradients all-reduced in buckets of this many MiB, as DDP (0: one "
                  "all-reduce per gradient)")
      ->capture_default_str();
  cmd->add_flag("--deterministic-reduce", a->deterministic_reduce,
                "with --data-parallel under mpirun: sum over ranks in rank order (bit-identical across runs and rank "
                "transports; the thread ranks always do)");
  cmd->add_option("--link", c.link,
                  "the interconnect the plan's collectives are simulated on: nvlink-v100 | nvlink-a100 | nvlink-h100 | "
                  "pcie-gen3 | ib-400 | ib-200 | ethernet-100 | ethernet-10 | shm (default: the --device's)");
  return [a] { return run(*a); };
}

}  // namespace dlmem::cli
