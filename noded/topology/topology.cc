#include "noded/topology/topology.h"

#include <hwloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <vector>

namespace herd::topology {
namespace {

constexpr unsigned kNvidiaVendor = 0x10de;
constexpr unsigned kClassVga = 0x0300;
constexpr unsigned kClass3d = 0x0302;
constexpr unsigned kClassBaseNetwork = 0x02;
constexpr int64_t kMib = 1024 * 1024;
// hwloc_topology_set_xmlbuffer takes an int size; real exports are well under 1 MiB per socket.
constexpr std::streamoff kMaxXmlBytes = 256 * kMib;

struct TopologyDeleter {
  void operator()(hwloc_topology_t t) const { hwloc_topology_destroy(t); }
};
using TopologyPtr = std::unique_ptr<hwloc_topology, TopologyDeleter>;

std::string BusId(const hwloc_obj_attr_u::hwloc_pcidev_attr_s& pci) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%01x", pci.domain, pci.bus, pci.dev, pci.func);
  return buf;
}

const char* Info(hwloc_obj_t obj, const char* name) {
  return obj == nullptr ? nullptr : hwloc_obj_get_info_by_name(obj, name);
}

bool IsPciPciBridge(hwloc_obj_t obj) {
  return obj != nullptr && obj->type == HWLOC_OBJ_BRIDGE &&
         obj->attr->bridge.upstream_type == HWLOC_OBJ_BRIDGE_PCI;
}

// The PCI-to-PCI bridges above `dev`, nearest first, stopping at the host bridge. The last
// one is the top-most bridge below the host bridge: the PCIe switch (or root port) whose
// subtree can exchange traffic without crossing the CPU.
std::vector<hwloc_obj_t> PciBridgesAbove(hwloc_obj_t dev) {
  std::vector<hwloc_obj_t> bridges;
  for (hwloc_obj_t p = dev->parent; IsPciPciBridge(p); p = p->parent) bridges.push_back(p);
  return bridges;
}

// NUMA node (os index) of the nearest CPU-side object, -1 when it spans none.
int NumaOf(hwloc_topology_t topo, hwloc_obj_t dev) {
  hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(topo, dev);
  if (anc == nullptr || anc->nodeset == nullptr) return -1;
  return hwloc_bitmap_first(anc->nodeset);
}

// Network devices and GPUs found while walking the PCI tree, kept with their hwloc objects
// so locality (shared bridges) can be compared after sorting.
struct PciFound {
  hwloc_obj_t obj;
  std::string bus_id;
  std::vector<hwloc_obj_t> bridges;
};

std::string NicName(hwloc_obj_t dev, const std::string& bus_id) {
  std::string net;
  for (hwloc_obj_t c = dev->io_first_child; c != nullptr; c = c->next_sibling) {
    if (c->type != HWLOC_OBJ_OS_DEVICE || c->name == nullptr) continue;
    if (c->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS) return c->name;
    if (c->attr->osdev.type == HWLOC_OBJ_OSDEV_NETWORK && net.empty()) net = c->name;
  }
  return net.empty() ? bus_id : net;  // a NIC with no driver bound is still named
}

void FillGpuDetails(hwloc_obj_t dev, model::GpuInfo& gpu) {
  for (hwloc_obj_t c = dev->io_first_child; c != nullptr; c = c->next_sibling) {
    if (c->type != HWLOC_OBJ_OS_DEVICE) continue;
    if (const char* m = Info(c, "GPUModel"); m != nullptr && gpu.model.empty()) gpu.model = m;
    if (const char* kib = Info(c, "CUDAGlobalMemorySize"); kib != nullptr && gpu.memory_mib == 0) {
      gpu.memory_mib = std::strtoll(kib, nullptr, 10) / 1024;
    }
    if (const char* uuid = Info(c, "NVIDIAUUID"); uuid != nullptr && gpu.uuid.empty()) {
      gpu.uuid = uuid;
    }
  }
  if (gpu.model.empty()) {
    const char* name = Info(dev, "PCIDevice");
    char fallback[48];
    std::snprintf(fallback, sizeof fallback, "NVIDIA [10de:%04x]", dev->attr->pcidev.device_id);
    gpu.model = name != nullptr ? name : fallback;
  }
}

void FillCpuSide(hwloc_topology_t topo, model::NodeTopology& node) {
  node.sockets = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);

  std::vector<hwloc_obj_t> numa_objs;
  for (hwloc_obj_t n = nullptr; (n = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, n));) {
    numa_objs.push_back(n);
  }
  std::sort(numa_objs.begin(), numa_objs.end(),
            [](hwloc_obj_t a, hwloc_obj_t b) { return a->os_index < b->os_index; });
  for (hwloc_obj_t n : numa_objs) {
    model::NumaInfo info;
    info.id = static_cast<int>(n->os_index);
    info.memory_mib = static_cast<int64_t>(n->attr->numanode.local_memory / kMib);
    node.memory_mib += info.memory_mib;
    node.numa.push_back(std::move(info));
  }
  if (node.numa.empty()) node.numa.push_back(model::NumaInfo{});  // hwloc 2 always has one

  // A core without a NUMA node covering it (odd firmware) goes to NUMA 0, or the first node.
  size_t fallback = 0;
  for (size_t i = 0; i < node.numa.size(); ++i) {
    if (node.numa[i].id == 0) fallback = i;
  }
  // Some platforms expose PUs without Core objects; each PU is then a core.
  hwloc_obj_type_t core_type =
      hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
  for (hwloc_obj_t c = nullptr; (c = hwloc_get_next_obj_by_type(topo, core_type, c));) {
    int first_pu = c->cpuset == nullptr ? -1 : hwloc_bitmap_first(c->cpuset);
    if (first_pu < 0) continue;
    size_t slot = fallback;
    for (size_t i = 0; i < numa_objs.size(); ++i) {
      if (numa_objs[i]->cpuset != nullptr &&
          hwloc_bitmap_isincluded(c->cpuset, numa_objs[i]->cpuset)) {
        slot = i;
        break;
      }
    }
    node.numa[slot].cores.push_back(first_pu);
  }
  for (auto& n : node.numa) std::sort(n.cores.begin(), n.cores.end());
}

// The one conversion both entry points use. Reads only `topo`, plus gethostname() when the
// topology names no host.
model::NodeTopology Convert(hwloc_topology_t topo) {
  model::NodeTopology node;
  if (const char* host = Info(hwloc_get_root_obj(topo), "HostName"); host != nullptr && *host) {
    node.hostname = host;
  } else {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) == 0) node.hostname = buf;
  }
  FillCpuSide(topo, node);

  // Top-most bridges below a host bridge, numbered in bus order: these are the switch ids.
  std::vector<std::pair<std::string, hwloc_obj_t>> tops;
  for (hwloc_obj_t b = nullptr; (b = hwloc_get_next_bridge(topo, b));) {
    if (IsPciPciBridge(b) && !IsPciPciBridge(b->parent)) {
      tops.emplace_back(BusId(b->attr->bridge.upstream.pci), b);
    }
  }
  std::sort(tops.begin(), tops.end());
  std::map<hwloc_obj_t, int> switch_id;
  for (size_t i = 0; i < tops.size(); ++i) switch_id[tops[i].second] = static_cast<int>(i);
  auto switch_of = [&](const PciFound& f) {
    return f.bridges.empty() ? -1 : switch_id.at(f.bridges.back());
  };

  std::vector<PciFound> gpus, nics;
  for (hwloc_obj_t d = nullptr; (d = hwloc_get_next_pcidev(topo, d));) {
    const auto& pci = d->attr->pcidev;
    PciFound f{d, BusId(pci), PciBridgesAbove(d)};
    if (pci.vendor_id == kNvidiaVendor && (pci.class_id == kClass3d || pci.class_id == kClassVga)) {
      gpus.push_back(std::move(f));
    } else if ((pci.class_id >> 8) == kClassBaseNetwork) {
      nics.push_back(std::move(f));
    }
  }
  // hwloc walks in locality order; CUDA_DEVICE_ORDER=PCI_BUS_ID numbering needs bus order.
  auto by_bus = [](const PciFound& a, const PciFound& b) { return a.bus_id < b.bus_id; };
  std::sort(gpus.begin(), gpus.end(), by_bus);
  std::sort(nics.begin(), nics.end(), by_bus);

  for (const PciFound& f : nics) {
    node.nics.push_back(
        model::NicInfo{NicName(f.obj, f.bus_id), f.bus_id, NumaOf(topo, f.obj), switch_of(f)});
  }
  for (const PciFound& f : gpus) {
    model::GpuInfo gpu;
    gpu.index = static_cast<int>(node.gpus.size());
    gpu.pci_bus_id = f.bus_id;
    gpu.numa = NumaOf(topo, f.obj);
    gpu.pcie_switch = switch_of(f);
    FillGpuDetails(f.obj, gpu);
    // Nearest NIC: the one sharing the lowest bridge (same downstream port before same switch),
    // else the first one on the same NUMA node.
    for (hwloc_obj_t bridge : f.bridges) {
      for (size_t i = 0; i < nics.size() && gpu.nic.empty(); ++i) {
        const auto& nb = nics[i].bridges;
        if (std::find(nb.begin(), nb.end(), bridge) != nb.end()) gpu.nic = node.nics[i].name;
      }
      if (!gpu.nic.empty()) break;
    }
    for (size_t i = 0; i < node.nics.size() && gpu.nic.empty() && gpu.numa >= 0; ++i) {
      if (node.nics[i].numa == gpu.numa) gpu.nic = node.nics[i].name;
    }
    node.gpus.push_back(std::move(gpu));
  }
  return node;
}

// Creates a topology that keeps GPUs, NICs and the bridges above them (hwloc drops all I/O
// objects unless told otherwise) and skips the OpenCL and X11 probes.
Result<TopologyPtr> NewTopology() {
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) return Internal("hwloc_topology_init failed");
  TopologyPtr topo(raw);
  hwloc_topology_set_io_types_filter(raw, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  // Blacklisting a component this hwloc build lacks fails harmlessly, so the result is ignored.
  hwloc_topology_set_components(raw, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "opencl");
  hwloc_topology_set_components(raw, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "gl");
  return topo;
}

// hwloc 2.9's XML importer dereferences complete_cpuset/complete_nodeset without checking
// them, so a CPU-side object lacking either crashes the process. Only I/O and Misc objects
// may omit them.
Status CheckXmlSets(const std::string& xml, const std::string& path) {
  static const char* const kNoSets[] = {"Bridge", "PCIDev", "OSDev", "Misc"};
  size_t objects = 0;
  for (size_t pos = 0; (pos = xml.find("<object", pos)) != std::string::npos;) {
    size_t end = xml.find('>', pos);
    if (end == std::string::npos) return Invalid(path + ": truncated <object> tag");
    std::string tag = xml.substr(pos, end - pos);
    pos = end;
    ++objects;
    size_t t = tag.find("type=");
    if (t == std::string::npos || t + 6 > tag.size()) {
      return Invalid(path + ": <object> without a type attribute");
    }
    std::string type = tag.substr(t + 6, tag.find_first_of("\"'", t + 6) - (t + 6));
    if (std::find(std::begin(kNoSets), std::end(kNoSets), type) != std::end(kNoSets)) continue;
    for (const char* attr : {"complete_cpuset=", "complete_nodeset="}) {
      if (tag.find(attr) == std::string::npos) {
        return Invalid(path + ": " + type + " object lacks " +
                       std::string(attr, std::strlen(attr) - 1) +
                       " (export the file with lstopo --of xml from hwloc 2)");
      }
    }
  }
  if (objects == 0) return Invalid(path + ": not an hwloc XML topology (no <object>)");
  return Status::Ok();
}

}  // namespace

Result<model::NodeTopology> DiscoverHost() {
  Result<TopologyPtr> topo = NewTopology();
  if (!topo.ok()) return topo.status();
  if (hwloc_topology_load(topo->get()) != 0) {
    return Internal(std::string("hwloc could not discover this host: ") + std::strerror(errno));
  }
  model::NodeTopology node = Convert(topo->get());
  node.source = "hwloc";
  return node;
}

Result<model::NodeTopology> LoadXml(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return NotFound("topology file not found: " + path);
    return Invalid("cannot open topology file " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return Invalid("topology file " + path + " is not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Invalid("cannot open topology file " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad() || !text) return Invalid("cannot read topology file " + path);
  std::string xml = std::move(text).str();
  if (static_cast<std::streamoff>(xml.size()) > kMaxXmlBytes) {
    return Invalid("topology file " + path + " is larger than 256 MiB");
  }
  HERD_RETURN_IF_ERROR(CheckXmlSets(xml, path));

  Result<TopologyPtr> topo = NewTopology();
  if (!topo.ok()) return topo.status();
  // Parse the bytes already checked, not the file again (it could change in between).
  // hwloc parses the buffer here already; a malformed or truncated file fails here or in load.
  if (hwloc_topology_set_xmlbuffer(topo->get(), xml.c_str(), static_cast<int>(xml.size() + 1)) !=
          0 ||
      hwloc_topology_load(topo->get()) != 0) {
    return Invalid("hwloc could not parse topology file " + path +
                   " (malformed or truncated hwloc XML)");
  }
  model::NodeTopology node = Convert(topo->get());
  node.emulated = true;
  node.source = path;
  return node;
}

}  // namespace herd::topology
