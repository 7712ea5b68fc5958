#include "noded/topology/topology.h"

#include "noded/gpu/gpu.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

// Under -DHERD_SANITIZE=ON: hwloc's pci plugin (libpciaccess) leaks about 200 bytes per load,
// because hwloc dlcloses the plugin with the last topology. Not ours to fix. Matching it needs
// full malloc stacks (the fast unwinder stops inside the plugin). Unused without sanitizers.
extern "C" const char* __asan_default_options() { return "fast_unwind_on_malloc=0"; }
extern "C" const char* __lsan_default_suppressions() { return "leak:hwloc_topology_load\n"; }

namespace herd::topology {
namespace {

const std::string kDir = HERD_TOPOLOGY_DIR;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A private temporary directory, removed with its files at the end of the test.
class TempDir {
 public:
  TempDir() {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/herd-topo-XXXXXX";
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    for (const auto& f : files_) std::remove(f.c_str());
    if (!path_.empty()) rmdir(path_.c_str());
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string f = path_ + "/" + name;
    std::ofstream(f, std::ios::binary) << text;
    files_.push_back(f);
    return f;
  }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

TEST(TopologyTest, DgxXmlHasSocketsNumaAndCores) {
  auto t = LoadXml(kDir + "/dgx-a100-8gpu.xml");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_TRUE(t->emulated);
  EXPECT_EQ(t->source, kDir + "/dgx-a100-8gpu.xml");
  EXPECT_EQ(t->hostname, "dgx-a100-fake");
  EXPECT_EQ(t->sockets, 2);
  ASSERT_EQ(t->numa.size(), 8u);
  EXPECT_EQ(t->Cores(), 128);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(t->numa[i].id, i);
    EXPECT_EQ(t->numa[i].memory_mib, 128 * 1024);
    ASSERT_EQ(t->numa[i].cores.size(), 16u);
    // One id per physical core (the first PU, never the SMT sibling at +128).
    EXPECT_EQ(t->numa[i].cores.front(), 16 * i);
    EXPECT_EQ(t->numa[i].cores.back(), 16 * i + 15);
  }
  EXPECT_EQ(t->memory_mib, 8 * 128 * 1024);
}

// On a real host herd-noded joins hwloc's GPUs (PCI devices, bus order) with NVML's by PCI bus
// id, whatever order and domain width NVML uses. Here NVML's answer is made up, reversed, for
// the GPUs of the DGX XML.
TEST(TopologyTest, NvmlSamplesAreMatchedToHwlocGpusByPciBusId) {
  auto t = LoadXml(kDir + "/dgx-a100-8gpu.xml");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->gpus.size(), 8u);
  std::vector<gpu::GpuSample> samples;
  for (int i = 7; i >= 0; --i) {
    gpu::GpuSample s;
    s.index = 7 - i;
    std::string bus = t->gpus[i].pci_bus_id;  // "0000:b7:00.0" -> NVML's "00000000:B7:00.0"
    for (char& ch : bus) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
    s.pci_bus_id = "0000" + bus;
    s.uuid = "GPU-real-" + std::to_string(i);
    s.memory_total_mib = 81920;
    s.model = "NVIDIA A100-SXM4-80GB";
    samples.push_back(s);
  }
  gpu::EnrichTopology(&*t, samples);
  for (int i = 0; i < 8; ++i) {
    SCOPED_TRACE("GPU " + std::to_string(i));
    EXPECT_EQ(t->gpus[i].index, i) << "indexes stay in PCI bus order";
    EXPECT_EQ(t->gpus[i].uuid, "GPU-real-" + std::to_string(i));
    EXPECT_EQ(t->gpus[i].memory_mib, 81920);
    EXPECT_EQ(t->gpus[i].model, "NVIDIA A100-SXM4-80GB");
  }
}

TEST(TopologyTest, DgxGpusAreInBusOrderWithLocality) {
  auto t = LoadXml(kDir + "/dgx-a100-8gpu.xml");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->gpus.size(), 8u);
  const char* bus[] = {"07", "13", "47", "53", "87", "93", "b7", "c3"};
  const int numa[] = {3, 3, 1, 1, 7, 7, 5, 5};
  for (int i = 0; i < 8; ++i) {
    const auto& g = t->gpus[i];
    SCOPED_TRACE("GPU " + std::to_string(i));
    EXPECT_EQ(g.index, i);
    EXPECT_EQ(g.pci_bus_id, std::string("0000:") + bus[i] + ":00.0");
    EXPECT_EQ(g.model, "NVIDIA A100-SXM4-40GB");
    EXPECT_EQ(g.memory_mib, 40960);
    EXPECT_EQ(g.numa, numa[i]);
    EXPECT_EQ(g.nic, "mlx5_" + std::to_string(i));
    EXPECT_EQ(g.uuid, "GPU-a100fake-0000-0000-0000-00000000000" + std::to_string(i));
    EXPECT_GE(g.pcie_switch, 0);
  }
  for (int i = 0; i < 8; i += 2) {
    EXPECT_EQ(t->gpus[i].pcie_switch, t->gpus[i + 1].pcie_switch) << "pair " << i;
    if (i > 0) {
      EXPECT_NE(t->gpus[i].pcie_switch, t->gpus[i - 1].pcie_switch) << "pair " << i;
    }
  }
}

TEST(TopologyTest, DgxNicsAreListedWithLocality) {
  auto t = LoadXml(kDir + "/dgx-a100-8gpu.xml");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->nics.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(t->nics[i].name, "mlx5_" + std::to_string(i));
    EXPECT_EQ(t->nics[i].numa, t->gpus[i].numa);
    EXPECT_EQ(t->nics[i].pcie_switch, t->gpus[i].pcie_switch);
  }
  EXPECT_EQ(t->nics[0].pci_bus_id, "0000:0c:00.0");
}

TEST(TopologyTest, WorkstationHasFourGpusOnOneNumaNode) {
  auto t = LoadXml(kDir + "/workstation-4gpu.xml");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->sockets, 1);
  ASSERT_EQ(t->numa.size(), 1u);
  EXPECT_EQ(t->Cores(), 16);
  EXPECT_EQ(t->memory_mib, 128 * 1024);
  ASSERT_EQ(t->gpus.size(), 4u);
  for (const auto& g : t->gpus) {
    EXPECT_EQ(g.model, "NVIDIA RTX A6000");
    EXPECT_EQ(g.memory_mib, 48 * 1024);
    EXPECT_EQ(g.numa, 0);
    // The only NIC sits under its own host bridge: found through the NUMA node.
    EXPECT_EQ(g.nic, "enp65s0f0");
  }
  EXPECT_EQ(t->gpus[0].pcie_switch, t->gpus[1].pcie_switch);
  EXPECT_EQ(t->gpus[2].pcie_switch, t->gpus[3].pcie_switch);
  EXPECT_NE(t->gpus[0].pcie_switch, t->gpus[2].pcie_switch);
  ASSERT_EQ(t->nics.size(), 1u);
  EXPECT_EQ(t->nics[0].pcie_switch, -1);
}

TEST(TopologyTest, CpuNodeHasNoGpus) {
  auto t = LoadXml(kDir + "/cpu-node.xml");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->sockets, 2);
  EXPECT_EQ(t->numa.size(), 2u);
  EXPECT_EQ(t->Cores(), 32);
  EXPECT_EQ(t->memory_mib, 256 * 1024);
  EXPECT_TRUE(t->gpus.empty());
}

TEST(TopologyTest, MissingFileIsNotFoundAndNamesThePath) {
  auto t = LoadXml("/nonexistent/herd/topology.xml");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kNotFound);
  EXPECT_NE(t.status().message().find("/nonexistent/herd/topology.xml"), std::string::npos);
}

TEST(TopologyTest, MalformedXmlIsAnError) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  for (const char* text : {"", "not xml at all", "<topology><object type=\"Machine\"",
                           "<?xml version=\"1.0\"?><topology version=\"2.0\"></topology>"}) {
    auto t = LoadXml(dir.Write("bad.xml", text));
    EXPECT_FALSE(t.ok()) << "accepted: " << text;
  }
}

TEST(TopologyTest, TruncatedDgxFileIsAnError) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  std::string full = ReadFile(kDir + "/dgx-a100-8gpu.xml");
  ASSERT_GT(full.size(), 100000u);
  // Cuts mid-tag (caught before hwloc) and at line ends (well-formed tags, unclosed elements).
  size_t line_500 = 0;
  for (int i = 0; i < 500; ++i) line_500 = full.find('\n', line_500) + 1;
  for (size_t cut : {size_t{200}, size_t{70000}, full.size() - 40, line_500, full.size() - 12}) {
    auto t = LoadXml(dir.Write("trunc.xml", full.substr(0, cut)));
    EXPECT_FALSE(t.ok()) << "accepted a copy cut at " << cut;
  }
}

// hwloc 2.9 segfaults on these; LoadXml must refuse them first.
TEST(TopologyTest, FileWithoutCompleteSetsIsRefusedNotCrashed) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  std::string full = ReadFile(kDir + "/dgx-a100-8gpu.xml");
  for (const char* attr : {" complete_cpuset=\"[^\"]*\"", " complete_nodeset=\"[^\"]*\""}) {
    auto t = LoadXml(dir.Write("nosets.xml", std::regex_replace(full, std::regex(attr), "")));
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), Code::kInvalid);
  }
}

TEST(TopologyTest, DiscoverHostFindsThisMachine) {
  auto t = DiscoverHost();
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_FALSE(t->emulated);
  EXPECT_EQ(t->source, "hwloc");
  EXPECT_GE(t->Cores(), 1);
  EXPECT_GE(t->numa.size(), 1u);
  EXPECT_GT(t->memory_mib, 0);
  EXPECT_FALSE(t->hostname.empty());
  for (size_t i = 0; i < t->gpus.size(); ++i) EXPECT_EQ(t->gpus[i].index, static_cast<int>(i));
}

}  // namespace
}  // namespace herd::topology
