// Interconnects between data-parallel ranks (ir/parallel.h): what the cost model prices
// a collective on. A collective of a tensor of b bytes over N ranks by a ring algorithm
// takes steps x latency + factor x b / bandwidth, with factor 2(N-1)/N and 2(N-1) steps
// for an all-reduce, (N-1)/N and N-1 for a reduce-scatter or an all-gather
// (ir::OpDef::comm_factor) -- the model of NCCL's and MPI's ring collectives (Patarasuk
// and Yuan, JPDC 2009). Bandwidths are per direction per rank, from the datasheets cited
// in link_profile.cpp.
//
//   sim::LinkProfile l = sim::link_profile("ib-400");
//   sim::link_profile_for("h100-80gb").name   // "nvlink-h100": the GPU's own fabric
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dlmem::sim {

struct LinkProfile {
  std::string name;          // "nvlink-h100", "ib-400", "shm"
  std::string description;   // with the source of the figures
  double bandwidth = 0;      // bytes/s per direction per rank
  double latency = 0;        // seconds per ring step
};

const std::vector<LinkProfile>& named_links();
// By name; dlmem::Error for an unknown one, listing the known ones.
LinkProfile link_profile(std::string_view name);
// The interconnect ranks on a device of this profile use by default: NVLink for the
// SXM GPUs, PCIe for the others, shared memory for `host` (ranks on one machine).
LinkProfile link_profile_for(std::string_view device_profile_name);

}  // namespace dlmem::sim
