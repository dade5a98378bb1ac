// The policy `dlmem plan` and `dlmem train` plan with, from --policy, --budget and
// --lossy[=CODEC] (opting in to reduced-precision stashes: Gist's delayed precision
// reduction, for the compress policy and the joint planner).
#include "cli/commands.h"
#include "codec/codec.h"
#include "util/error.h"

namespace dlmem::cli {

std::string resolve_policy(const std::string& policy, const std::string& budget, const std::string& lossy) {
  const std::string named = !policy.empty() ? policy : budget.empty() ? "default" : "auto";
  if (lossy.empty()) return named;
  const codec::Codec* c = codec::find(lossy);
  if (!c || c->preserves() != codec::Preserves::approximate)
    throw Error("--lossy takes a reduced precision for stashed activations: fp16, bf16 or fp8-e4m3 (got '", lossy, "')");
  if (named == "auto") return named;  // the joint planner reads PlanOptions::lossy
  if (named != "compress")
    throw Error("--lossy applies to --policy compress and --policy auto (stashes in ", lossy, "); policy '", named,
                "' keeps every value exact -- or name the precision in the policy: --policy compress:", lossy);
  return "compress:" + lossy;
}

}  // namespace dlmem::cli
