// Topology discovery for herd-noded: the sockets, NUMA nodes, cores, GPUs and NICs of a node,
// read through hwloc either from this host or from an hwloc XML file (an emulated node).
// Both paths share one conversion from the hwloc tree to model::NodeTopology, so an XML export
// of a real host (`lstopo --of xml`) and the host itself describe the node the same way.
// Thread-safety: every function builds and frees its own hwloc topology; safe to call
// concurrently. No function changes the process environment.
#pragma once

#include <string>

#include "common/model/node.h"
#include "common/util/status.h"

namespace herd::topology {

// Discovers this host, I/O devices included, skipping hwloc's OpenCL and GL probes
// (the HWLOC_COMPONENTS=-opencl,-gl behaviour). emulated=false, source="hwloc".
// GPUs are NVIDIA PCI display/3D devices in PCI bus order; their memory is 0 unless an hwloc
// CUDA osdev reports it (Debian's hwloc has no CUDA/NVML plugin).
Result<model::NodeTopology> DiscoverHost();

// Loads the hwloc XML file at `path` as an emulated node: emulated=true, source=path.
// kNotFound when the file does not exist; kInvalid when it is unreadable, malformed, or lacks
// the complete_cpuset/complete_nodeset attributes on a CPU-side object (hwloc 2.9 would crash
// on such a file, so it is refused before hwloc parses it).
Result<model::NodeTopology> LoadXml(const std::string& path);

}  // namespace herd::topology
