// --lossy[=CODEC] on `dlmem plan` and `dlmem train`: opting in to reduced-precision
// stashes (Gist's delayed precision reduction) for the compress policy.
#include "cli/commands.h"
#include "codec/codec.h"
#include "util/error.h"

namespace dlmem::cli {

std::string lossy_policy(const std::string& policy, const std::string& lossy) {
  if (lossy.empty()) return policy;
  const codec::Codec* c = codec::find(lossy);
  if (!c || c->preserves() != codec::Preserves::approximate)
    throw Error("--lossy takes a reduced precision for stashed activations: fp16, bf16 or fp8-e4m3 (got '", lossy, "')");
  if (policy != "compress")
    throw Error("--lossy applies to --policy compress (stashes in ", lossy, "); policy '", policy,
                "' keeps every value exact -- or name the precision in the policy: --policy compress:", lossy);
  return "compress:" + lossy;
}

}  // namespace dlmem::cli
