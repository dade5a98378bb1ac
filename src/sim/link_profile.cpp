#include "sim/link_profile.h"

#include "util/error.h"

namespace dlmem::sim {

namespace {
constexpr double kGB = 1e9;
}

const std::vector<LinkProfile>& named_links() {
  static const std::vector<LinkProfile> links = {
      // NVIDIA Tesla V100 datasheet (2018): NVLink 2.0, 300 GB/s per GPU both ways together.
      {"nvlink-v100", "NVLink 2.0, 150 GB/s each way per GPU (Tesla V100 datasheet, 2018)", 150 * kGB, 2e-6},
      // NVIDIA A100 datasheet (2021): third-generation NVLink, 600 GB/s per GPU.
      {"nvlink-a100", "NVLink 3.0, 300 GB/s each way per GPU (A100 datasheet, 2021)", 300 * kGB, 2e-6},
      // NVIDIA H100 datasheet (2023): fourth-generation NVLink, 900 GB/s per GPU.
      {"nvlink-h100", "NVLink 4.0, 450 GB/s each way per GPU (H100 datasheet, 2023)", 450 * kGB, 2e-6},
      // PCIe Gen3 x16 between GPUs without NVLink (K40, P100 PCIe): 15.75 GB/s each way.
      {"pcie-gen3", "PCIe Gen3 x16, 15.75 GB/s each way (PCI-SIG)", 15.75 * kGB, 5e-6},
      // NVIDIA ConnectX-7 product brief (2022): 400 Gb/s NDR InfiniBand per port.
      {"ib-400", "InfiniBand NDR 400 Gb/s, 50 GB/s each way (ConnectX-7 product brief, 2022)", 50 * kGB, 5e-6},
      // NVIDIA ConnectX-6 product brief (2020): 200 Gb/s HDR InfiniBand.
      {"ib-200", "InfiniBand HDR 200 Gb/s, 25 GB/s each way (ConnectX-6 product brief, 2020)", 25 * kGB, 5e-6},
      {"ethernet-100", "100 Gb/s Ethernet (TCP), 12.5 GB/s each way", 12.5 * kGB, 20e-6},
      {"ethernet-10", "10 Gb/s Ethernet (TCP), 1.25 GB/s each way", 1.25 * kGB, 50e-6},
      // Ranks on one machine (threads, or MPI's shared-memory transport): a copy through
      // memory, taken as a conservative 5 GB/s each way (one core's memcpy).
      {"shm", "shared memory on one machine, 5 GB/s each way (ranks as threads or local MPI processes)", 5 * kGB, 1e-6},
  };
  return links;
}

LinkProfile link_profile(std::string_view name) {
  std::string known;
  for (const LinkProfile& l : named_links()) {
    if (l.name == name) return l;
    known += (known.empty() ? "" : ", ") + l.name;
  }
  throw Error("unknown interconnect '", name, "'; known: ", known);
}

LinkProfile link_profile_for(std::string_view device) {
  if (device.starts_with("v100")) return link_profile("nvlink-v100");
  if (device.starts_with("a100")) return link_profile("nvlink-a100");
  if (device.starts_with("h100") || device.starts_with("h200")) return link_profile("nvlink-h100");
  if (device.starts_with("k40") || device.starts_with("p100")) return link_profile("pcie-gen3");
  return link_profile("shm");
}

}  // namespace dlmem::sim
