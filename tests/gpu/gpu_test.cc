// Tests for noded/gpu: metrics sources, topology enrichment and the MPS manager. No GPU needed:
// NVML is whatever this host has (usually nothing), and MPS is driven through a fake control
// binary, a shell script that records how it was run.
#include "noded/gpu/gpu.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace herd::gpu {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using Env = std::vector<std::pair<std::string, std::string>>;

class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/gpu_test.XXXXXX";
    path_ = mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path + ".tmp") << text;
  std::filesystem::rename(path + ".tmp", path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(NvmlTest, OpenNvmlReportsAMissingLibraryOrSamples) {
  auto nvml = OpenNvml();
  if (!nvml.ok()) {
    std::cout << "NVML: " << nvml.status().message() << "\n";
    if (nvml.status().code() == Code::kNotFound) {
      EXPECT_EQ(nvml.status().message(), "libnvidia-ml.so.1 not found: no GPU metrics");
    } else {
      EXPECT_EQ(nvml.status().code(), Code::kUnavailable);  // library present, driver not loaded
    }
    return;
  }
  EXPECT_EQ((*nvml)->Name(), "nvml");
  auto samples = (*nvml)->Sample();
  ASSERT_TRUE(samples.ok()) << samples.status().message();
  std::cout << "NVML: " << samples->size() << " GPU(s)\n";
  for (size_t i = 0; i < samples->size(); ++i) {
    EXPECT_EQ((*samples)[i].index, static_cast<int>(i));
    if (i > 0) {
      EXPECT_LT((*samples)[i - 1].pci_bus_id, (*samples)[i].pci_bus_id);
    }
  }
}

TEST(FedSourceTest, ParsesOneLinePerGpuSortedByIndex) {
  TempDir dir;
  std::string feed = dir.path() + "/gpus";
  WriteFile(feed, "# index util used [total]\n1 75 2048 40960\n\n0 10 512\n");
  auto source = OpenFedSource(feed);
  EXPECT_EQ(source->Name(), "fed:" + feed);
  auto samples = source->Sample();
  ASSERT_TRUE(samples.ok()) << samples.status().message();
  ASSERT_EQ(samples->size(), 2u);
  EXPECT_EQ((*samples)[0].index, 0);
  EXPECT_EQ((*samples)[0].utilization_pct, 10);
  EXPECT_EQ((*samples)[0].memory_used_mib, 512);
  EXPECT_EQ((*samples)[0].memory_total_mib, -1);
  EXPECT_EQ((*samples)[1].index, 1);
  EXPECT_EQ((*samples)[1].utilization_pct, 75);
  EXPECT_EQ((*samples)[1].memory_used_mib, 2048);
  EXPECT_EQ((*samples)[1].memory_total_mib, 40960);
}

TEST(FedSourceTest, RereadsTheFileAtEverySample) {
  TempDir dir;
  std::string feed = dir.path() + "/gpus";
  auto source = OpenFedSource(feed);
  WriteFile(feed, "0 10 100\n");
  ASSERT_EQ(source->Sample()->at(0).utilization_pct, 10);
  WriteFile(feed, "0 90 100\n");
  EXPECT_EQ(source->Sample()->at(0).utilization_pct, 90);
}

TEST(FedSourceTest, MalformedLineFailsTheSampleNamingFileAndLine) {
  TempDir dir;
  std::string feed = dir.path() + "/gpus";
  for (const std::string bad :
       {"0 ten 100", "0 10", "0 10 100 200 300", "0 150 100", "0 10 100 x"}) {
    WriteFile(feed, "1 5 5\n" + bad + "\n");
    auto samples = OpenFedSource(feed)->Sample();
    ASSERT_FALSE(samples.ok()) << bad;
    EXPECT_EQ(samples.status().code(), Code::kInvalid);
    EXPECT_THAT(samples.status().message(), HasSubstr(feed + ":2: expected"));
    EXPECT_THAT(samples.status().message(), HasSubstr("'" + bad + "'"));
  }
}

TEST(FedSourceTest, MissingFileGivesNoSamples) {
  TempDir dir;
  auto samples = OpenFedSource(dir.path() + "/absent")->Sample();
  ASSERT_TRUE(samples.ok()) << samples.status().message();
  EXPECT_TRUE(samples->empty());
}

TEST(OpenMetricsSourceTest, PicksTheSourceFromTheSpec) {
  std::string note = "stale";
  EXPECT_EQ(OpenMetricsSource("fed:/x", &note)->Name(), "fed:/x");
  EXPECT_EQ(note, "");
  EXPECT_EQ(OpenMetricsSource("none", &note)->Name(), "none");
  EXPECT_TRUE(NoMetrics()->Sample()->empty());

  auto unknown = OpenMetricsSource("dcgm", &note);
  EXPECT_EQ(unknown->Name(), "none");
  EXPECT_THAT(note, HasSubstr("unknown GPU metrics source 'dcgm'"));

  auto nvml = OpenMetricsSource("nvml", &note);
  std::cout << "nvml spec -> " << nvml->Name() << (note.empty() ? "" : ": " + note) << "\n";
  if (nvml->Name() == "none") {
    EXPECT_THAT(note, HasSubstr("no GPU metrics"));
  } else {
    EXPECT_EQ(nvml->Name(), "nvml");
    EXPECT_EQ(note, "");
  }
}

TEST(EnrichTopologyTest, FillsMemoryUuidAndModelMatchedByPciBusId) {
  model::NodeTopology topo;
  for (const char* bus_id : {"0000:07:00.0", "0000:0A:00.0", "0000:0b:00.0"}) {
    model::GpuInfo gpu;  // as hwloc without NVML finds it
    gpu.index = static_cast<int>(topo.gpus.size());
    gpu.model = "GA100";
    gpu.pci_bus_id = bus_id;
    topo.gpus.push_back(gpu);
  }
  std::vector<GpuSample> samples = {
      {.index = 0,
       .uuid = "GPU-bbb",
       .pci_bus_id = "00000000:0a:00.0",
       .memory_total_mib = 81920,
       .model = "NVIDIA A100-SXM4-80GB"},
      {.index = 1,
       .uuid = "GPU-aaa",
       .pci_bus_id = "00000000:07:00.0",
       .memory_total_mib = 40960,
       .model = "NVIDIA A100-SXM4-40GB"},
  };
  EnrichTopology(&topo, samples);
  EXPECT_EQ(topo.gpus[0].uuid, "GPU-aaa");
  EXPECT_EQ(topo.gpus[0].memory_mib, 40960);
  EXPECT_EQ(topo.gpus[0].model, "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(topo.gpus[1].uuid, "GPU-bbb");
  EXPECT_EQ(topo.gpus[1].memory_mib, 81920);
  EXPECT_EQ(topo.gpus[2].uuid, "");  // no sample: left as hwloc found it
  EXPECT_EQ(topo.gpus[2].memory_mib, 0);
  EXPECT_EQ(topo.gpus[2].model, "GA100");
}

TEST(EnrichTopologyTest, NormalizesPciBusIdsToHwlocForm) {
  EXPECT_EQ(NormalizePciBusId("00000000:07:00.0"), "0000:07:00.0");
  EXPECT_EQ(NormalizePciBusId("0000:0A:00.0"), "0000:0a:00.0");
  EXPECT_EQ(NormalizePciBusId("00010000:07:00.0"), "10000:07:00.0");
  EXPECT_EQ(NormalizePciBusId("07:00.0"), "0000:07:00.0");
}

// A fake nvidia-cuda-mps-control: appends one line per run to `record` with its arguments, the
// MPS environment and what it read on stdin; exits `d_status` for -d and 0 otherwise.
std::string WriteFakeControl(const std::string& dir, const std::string& name,
                             const std::string& record, int d_status = 0) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << "#!/bin/sh\n"
                         "input=\n"
                         "if [ $# -eq 0 ]; then read -r input; fi\n"
                         "echo \"args=[$*] visible=$CUDA_VISIBLE_DEVICES"
                         " pipe=$CUDA_MPS_PIPE_DIRECTORY log=$CUDA_MPS_LOG_DIRECTORY"
                         " stdin=[$input]\" >> '"
                      << record
                      << "'\n"
                         "if [ \"$1\" = -d ]; then exit "
                      << d_status
                      << "; fi\n"
                         "exit 0\n";
  chmod(path.c_str(), 0755);
  return path;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(MpsManagerTest, StartsOneDaemonPerGpuAndStopsItAfterItsLastJob) {
  TempDir dir;
  std::string record = dir.path() + "/record";
  std::string state = dir.path() + "/state";
  MpsManager mps(state, WriteFakeControl(dir.path(), "fake-nvidia-cuda-mps-control", record));
  ASSERT_TRUE(mps.Available());
  std::string pipe3 = state + "/mps/3/pipe", log3 = state + "/mps/3/log";
  std::string daemon3 = "visible=3 pipe=" + pipe3 + " log=" + log3;

  auto a = mps.Acquire("job-a", 3, 250, 8192);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_THAT(
      *a, ElementsAre(Pair("CUDA_MPS_PIPE_DIRECTORY", pipe3), Pair("CUDA_MPS_LOG_DIRECTORY", log3),
                      Pair("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "25"),
                      Pair("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "0=8192M"),
                      Pair("HERD_GPU_LIMITS", "enforced-mps")));
  EXPECT_THAT(Lines(ReadFile(record)), ElementsAre("args=[-d] " + daemon3 + " stdin=[]"));
  EXPECT_TRUE(std::filesystem::is_directory(pipe3));
  EXPECT_TRUE(std::filesystem::is_directory(log3));

  auto b = mps.Acquire("job-b", 3, 333, 0);  // same GPU: no second daemon
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_THAT(
      *b, ElementsAre(Pair("CUDA_MPS_PIPE_DIRECTORY", pipe3), Pair("CUDA_MPS_LOG_DIRECTORY", log3),
                      Pair("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "34"),
                      Pair("HERD_GPU_LIMITS", "enforced-mps")));
  ASSERT_TRUE(mps.Acquire("job-b", 3, 333, 0).ok());  // repeated: still one share
  ASSERT_TRUE(mps.Acquire("job-c", 5, 500, 0).ok());  // another GPU: its own daemon
  EXPECT_EQ(mps.Acquire("job-b", 5, 500, 0).status().code(), Code::kInvalid);
  EXPECT_EQ(Lines(ReadFile(record)).size(), 2u);
  EXPECT_THAT(Lines(ReadFile(record))[1], HasSubstr("args=[-d] visible=5 "));

  mps.Release("job-a");
  mps.Release("unknown");
  EXPECT_EQ(Lines(ReadFile(record)).size(), 2u);  // job-b still uses GPU 3
  mps.Release("job-b");
  auto lines = Lines(ReadFile(record));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2], "args=[] " + daemon3 + " stdin=[quit]");

  ASSERT_TRUE(mps.Acquire("job-d", 3, 100, 0).ok());  // GPU 3 again: a fresh daemon
  EXPECT_EQ(Lines(ReadFile(record)).size(), 4u);
}

TEST(MpsManagerTest, DaemonThatDoesNotStartIsUnavailable) {
  TempDir dir;
  std::string record = dir.path() + "/record";
  MpsManager mps(dir.path() + "/state",
                 WriteFakeControl(dir.path(), "fake-nvidia-cuda-mps-control", record, 1));
  auto env = mps.Acquire("job-a", 0, 500, 0);
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.status().code(), Code::kUnavailable);
  EXPECT_THAT(env.status().message(), HasSubstr("exited with 1"));
  mps.Release("job-a");  // never held: nothing to stop
  EXPECT_EQ(Lines(ReadFile(record)).size(), 1u);
}

TEST(MpsManagerTest, RejectsBadShares) {
  TempDir dir;
  MpsManager mps(dir.path(), WriteFakeControl(dir.path(), "fake-nvidia-cuda-mps-control",
                                              dir.path() + "/record"));
  EXPECT_EQ(mps.Acquire("j", 0, 0, 0).status().code(), Code::kInvalid);
  EXPECT_EQ(mps.Acquire("j", 0, 1001, 0).status().code(), Code::kInvalid);
  EXPECT_EQ(mps.Acquire("j", -1, 500, 0).status().code(), Code::kInvalid);
  EXPECT_EQ(mps.Acquire("", 0, 500, 0).status().code(), Code::kInvalid);
}

// Sets PATH for one test and restores it.
class ScopedPath {
 public:
  explicit ScopedPath(const std::string& path) {
    const char* old = std::getenv("PATH");
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv("PATH", path.c_str(), 1);
  }
  ~ScopedPath() { had_ ? setenv("PATH", old_.c_str(), 1) : unsetenv("PATH"); }

 private:
  bool had_ = false;
  std::string old_;
};

TEST(MpsManagerTest, WithoutControlBinaryLimitsAreAdvisory) {
  TempDir dir;
  ScopedPath path(dir.path());  // an empty directory: no nvidia-cuda-mps-control
  MpsManager mps(dir.path() + "/state", "");
  EXPECT_FALSE(mps.Available());
  EXPECT_FALSE(MpsManager(dir.path(), dir.path() + "/fake-absent").Available());
  auto env = mps.Acquire("job-a", 0, 250, 4096);
  ASSERT_TRUE(env.ok()) << env.status().message();
  EXPECT_THAT(*env, ElementsAre(Pair("HERD_GPU_MEMORY_LIMIT", "4096M"),
                                Pair("HERD_GPU_LIMITS", "advisory")));
  EXPECT_THAT(*mps.Acquire("job-b", 0, 250, 0), ElementsAre(Pair("HERD_GPU_LIMITS", "advisory")));
  mps.Release("job-a");
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/state"));  // no daemon was ever run
}

TEST(MpsManagerTest, SearchesPathForTheControlBinary) {
  TempDir dir;
  // The fake has the real name here because PATH search looks for that name.
  WriteFakeControl(dir.path(), "nvidia-cuda-mps-control", dir.path() + "/record");
  ScopedPath path("/nonexistent:" + dir.path());
  MpsManager mps(dir.path() + "/state", "");
  EXPECT_TRUE(mps.Available());
  ASSERT_TRUE(mps.Acquire("job-a", 1, 500, 0).ok());
  EXPECT_THAT(ReadFile(dir.path() + "/record"), HasSubstr("args=[-d] visible=1 "));
}

}  // namespace
}  // namespace herd::gpu
