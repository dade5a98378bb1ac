// `dlmem place FILE.csv`: the offset placement problem from outside dlmem (the CSV the
// dynamic storage allocation literature shares), solved by the heuristics every plan
// uses and then the exact search (plan/placement.h, Note [Exact placement]).
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "plan/place_problem.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/format.h"
#include "util/table.h"

namespace dlmem::cli {

namespace {

struct PlaceArgs {
  std::string file;
  std::string out;
  bool json = false;
  double time_limit = 1;
};

int run(const PlaceArgs& a) {
  if (a.time_limit < 0) throw Error("--time-limit must be >= 0 seconds, got ", a.time_limit);
  const plan::PlaceProblem pb = plan::read_place_csv(a.file);
  const auto t0 = std::chrono::steady_clock::now();
  const plan::Placement heuristic = plan::place_intervals(pb.intervals, plan::PlaceAlgo::best);
  const double heuristic_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const plan::ExactResult r = plan::place_exact(pb.intervals, heuristic, {.time_limit_s = a.time_limit});
  const std::vector<uint64_t> offsets = plan::problem_offsets(pb, r.placement);
  DLMEM_CHECK(plan::find_overlap(pb, offsets).empty(), "placement overlaps: ", plan::find_overlap(pb, offsets));
  const uint64_t height = plan::problem_height(pb, offsets);
  const uint64_t heuristic_height = plan::problem_height(pb, plan::problem_offsets(pb, heuristic));
  const uint64_t live = plan::problem_max_live(pb);
  const double ratio = live ? static_cast<double>(height) / static_cast<double>(live) : 1;
  const std::string won = std::string(plan::place_algo_name(r.placement.algo));
  if (!a.out.empty()) {
    const std::string text = plan::offsets_csv(pb, offsets);
    write_file_atomic(a.out, std::as_bytes(std::span<const char>(text.data(), text.size())));
  }
  if (a.json) {
    nlohmann::json j{{"file", a.file},          {"buffers", pb.ids.size()},  {"alignment", pb.alignment},
                     {"height", height},        {"max_live", live},          {"height_over_max_live", ratio},
                     {"algorithm", won},        {"status", r.status},        {"optimal", r.optimal},
                     {"heuristic_height", heuristic_height}, {"heuristic_seconds", heuristic_s},
                     {"exact_seconds", r.seconds}, {"nodes", r.nodes}};
    if (!a.out.empty()) j["out"] = a.out;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  Table t({{"", Align::Left}, {"value", Align::Right}, {"note", Align::Left}});
  t.add_row({"buffers", std::to_string(pb.ids.size()), "alignment " + std::to_string(pb.alignment)});
  t.add_row({"height", std::to_string(height), "by " + won});
  t.add_row({"max live (lower bound)", std::to_string(live), "height / max live = " + std::to_string(ratio).substr(0, 6)});
  t.add_row({"best heuristic", std::to_string(heuristic_height), "in " + human_duration(heuristic_s)});
  t.add_row({"exact search", r.status, std::to_string(r.nodes) + " nodes in " + human_duration(r.seconds)});
  std::cout << t.str();
  if (!r.optimal)
    std::cout << "gap to the lower bound: " << std::to_string(100 * (ratio - 1)).substr(0, 6)
              << "% (raise --time-limit to search longer)\n";
  if (!a.out.empty()) std::cout << "wrote " << a.out << "\n";
  return 0;
}

}  // namespace

std::function<int()> add_place(CLI::App& app) {
  auto* cmd = app.add_subcommand("place", "solve an offset placement problem from a CSV file (id,lower,upper,size[,alignment])");
  auto a = std::make_shared<PlaceArgs>();
  cmd->add_option("file", a->file, "CSV: one buffer per row, id,lower,upper,size[,alignment], lifetimes [lower, upper)")
      ->required();
  cmd->add_option("--out,-o", a->out, "write the offsets as CSV (id,offset), atomically");
  cmd->add_flag("--json", a->json, "one JSON object");
  cmd->add_option("--time-limit", a->time_limit, "seconds the exact search may take after the heuristics")
      ->capture_default_str();
  return [a] { return run(*a); };
}

}  // namespace dlmem::cli
