// The hardware of one node as herd-noded discovers it (hwloc) and the controller schedules it.
// Built by noded/topology; carried in Register messages; read by ctld and ctld/sched.
// Thread-safety: plain value types.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace herd::model {

struct GpuInfo {
  int index = 0;            // CUDA index: position in PCI bus order
  std::string model;        // "NVIDIA A100-SXM4-40GB"
  int64_t memory_mib = 0;
  std::string pci_bus_id;   // "0000:07:00.0"
  int numa = -1;            // NUMA node id nearest the GPU, -1 unknown
  int pcie_switch = -1;     // id of the PCIe switch above it (GPUs sharing one talk fastest), -1 none
  std::string nic;          // nearest NIC name ("mlx5_0"), empty if none
  std::string uuid;         // NVML UUID where known
  bool operator==(const GpuInfo&) const = default;
};

struct NicInfo {
  std::string name;         // "mlx5_0" or "eth0"
  std::string pci_bus_id;
  int numa = -1;
  int pcie_switch = -1;
  bool operator==(const NicInfo&) const = default;
};

struct NumaInfo {
  int id = 0;
  std::vector<int> cores;   // logical core ids (one per physical core, first PU)
  int64_t memory_mib = 0;
  bool operator==(const NumaInfo&) const = default;
};

struct NodeTopology {
  std::string hostname;
  int sockets = 0;
  std::vector<NumaInfo> numa;
  std::vector<GpuInfo> gpus;  // sorted by pci_bus_id; gpus[i].index == i
  std::vector<NicInfo> nics;
  int64_t memory_mib = 0;
  bool emulated = false;      // loaded from an XML file, not this host
  std::string source;         // "hwloc" or the XML path

  int Cores() const {
    int n = 0;
    for (const auto& d : numa) n += static_cast<int>(d.cores.size());
    return n;
  }
  bool operator==(const NodeTopology&) const = default;
};

enum class NodeState { kUp, kDown, kDrain };
const char* NodeStateName(NodeState s);

}  // namespace herd::model
