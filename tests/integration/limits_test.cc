// Time limits and idle detection: jobs that overstay are ended, with the reason recorded.
#include <stdio.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;

// Interactive jobs (which run within the deserved quota) idle on their GPUs for 2 s are stopped.
constexpr char kShortIdle[] = R"(
default_project = "lab"

[projects.lab]
deserved = { gpu = 4 }
members = ["*"]

[classes.interactive]
idle_timeout = "2s"
)";

// Writes what the node's fed GPU-metrics source reports: "INDEX UTIL_PCT MEM_USED_MIB" lines.
void FeedGpuMetrics(const LocalCluster& c, const std::string& node, const std::string& lines) {
  const std::string path = c.dir() + "/nodes/" + node + "/gpu-metrics";
  std::ofstream(path + ".tmp") << lines;
  rename((path + ".tmp").c_str(), path.c_str());
}

TEST(LimitsIntegrationTest, JobPastItsTimeLimitEndsAsTimeout) {
  auto started = LocalCluster::Start(
      {"", {"ws01=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  auto id = c.Submit("-t 2s -- sleep 300");
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(c.WaitForEnd(*id), "TIMEOUT") << c.log_tail();
  auto job = c.Show(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_THAT((*job)["reason"].get<std::string>(), HasSubstr("time limit of 2s reached"));
}

TEST(LimitsIntegrationTest, IdleInteractiveJobIsStoppedAndABusyOneIsNot) {
  auto started = LocalCluster::Start(
      {kShortIdle, {"ws01=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  // GPU 0 computes, every other GPU is idle.
  FeedGpuMetrics(c, "ws01", "0 85 20000\n1 0 300\n2 0 300\n3 0 300\n");
  auto busy = c.Submit("--interactive -g 1 -- sleep 300");
  ASSERT_TRUE(busy.ok()) << busy.status().message();
  ASSERT_TRUE(c.WaitForState(*busy, "RUNNING")) << c.log_tail();
  auto idle = c.Submit("--interactive -g 1 -- sleep 300");
  ASSERT_TRUE(idle.ok()) << idle.status().message();
  ASSERT_TRUE(c.WaitForState(*idle, "RUNNING")) << c.log_tail();
  // Packing puts the first job on GPU 0; the second lands on an idle GPU.
  ASSERT_EQ((*c.Show(*busy))["placement"][0]["gpus"][0], 0);

  EXPECT_EQ(c.WaitForEnd(*idle), "CANCELLED") << c.log_tail();
  auto job = c.Show(*idle);
  ASSERT_TRUE(job.ok());
  EXPECT_THAT((*job)["reason"].get<std::string>(), HasSubstr("idle"));
  EXPECT_EQ((*c.Show(*busy))["state"], "RUNNING") << "a job computing on its GPU stays";
  c.Herd("cancel " + std::to_string(*busy));
}

// --gpu-memory REQ:LIMIT: the scheduler reserves REQ, the job may use LIMIT. Without MPS the
// limit is advisory and the job is told so.
TEST(LimitsIntegrationTest, GpuMemoryLimitReachesTheJob) {
  if (RunShell("command -v nvidia-cuda-mps-control").exit_code == 0) {
    GTEST_SKIP() << "MPS is installed here: the limit would be enforced on emulated GPUs";
  }
  auto started =
      LocalCluster::Start({"", {"ws01=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  auto id = c.Submit(
      "-g 0.5 --gpu-memory 4G:6G -- sh -c 'echo limit=$HERD_GPU_MEMORY_LIMIT $HERD_GPU_LIMITS'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_EQ(c.WaitForEnd(*id), "COMPLETED") << c.log_tail();
  EXPECT_THAT(c.Herd("logs " + std::to_string(*id)).out, HasSubstr("limit=6144M advisory"));
  auto job = c.Show(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["gpu_memory_mib"], 4096);
  EXPECT_EQ((*job)["gpu_memory_limit_mib"], 6144);

  CommandResult r = c.Herd("submit -g 0.5 --gpu-memory 8G:4G -- true");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("the limit 4G is below the request 8G"));
}

}  // namespace
}  // namespace herd::testing
