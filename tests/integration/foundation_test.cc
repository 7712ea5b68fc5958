// A job's whole path with the real parts: herd CLI -> herd-ctld (SQLite, MUNGE) -> herd-noded
// (emulated topology, herd-shim, cgroups or runc) and back.
#include <unistd.h>

#include <fstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/support/eventually.h"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;

class FoundationTest : public SharedClusterTest<FoundationTest> {};

TEST_F(FoundationTest, NodesRegisterWithTheirEmulatedGpus) {
  CommandResult r = c().Herd("nodes");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("dgx01"));
  EXPECT_THAT(r.out, HasSubstr("ws01"));
  EXPECT_THAT(r.out, HasSubstr("0/8"));
  EXPECT_THAT(r.out, HasSubstr("emulated"));
}

TEST_F(FoundationTest, JobCompletesAndItsOutputIsKept) {
  auto id = c().Submit("-g 2 -J hello -- sh -c 'echo hello from $HERD_JOB_ID; echo gpus=$CUDA_VISIBLE_DEVICES'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_EQ(c().WaitForEnd(*id), "COMPLETED") << c().log_tail();
  CommandResult logs = c().Herd("logs " + std::to_string(*id));
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_THAT(logs.out, HasSubstr("hello from " + std::to_string(*id)));
  EXPECT_THAT(logs.out, ::testing::ContainsRegex("gpus=[0-9],[0-9]"));
  auto job = c().Show(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["exit_code"], 0);
}

TEST_F(FoundationTest, FailedJobKeepsItsExitCode) {
  auto id = c().Submit("-- sh -c 'exit 3'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  CommandResult wait = c().Herd("wait " + std::to_string(*id) + " --timeout 60s");
  EXPECT_EQ(wait.exit_code, 3) << wait.out << wait.err;
  auto job = c().Show(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["state"], "FAILED");
  EXPECT_EQ((*job)["exit_code"], 3);
  EXPECT_THAT((*job)["reason"].get<std::string>(), HasSubstr("exit code 3"));
}

TEST_F(FoundationTest, CancelStopsARunningJob) {
  auto id = c().Submit("-- sleep 300");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(c().WaitForState(*id, "RUNNING")) << c().log_tail();
  CommandResult r = c().Herd("cancel " + std::to_string(*id));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(c().WaitForEnd(*id), "CANCELLED");
}

TEST_F(FoundationTest, SuspendFreezesAndResumeLetsItFinish) {
  auto id = c().Submit(
      "-- sh -c 'i=0; while [ $i -lt 40 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(c().WaitForState(*id, "RUNNING")) << c().log_tail();
  ASSERT_EQ(c().Herd("suspend " + std::to_string(*id)).exit_code, 0);
  ASSERT_TRUE(c().WaitForState(*id, "SUSPENDED"));
  // herd-ctld says SUSPENDED when it sends the order; the freeze has landed once herd-noded
  // marks the job's directory (after the kernel reported the cgroup frozen).
  auto job = c().Show(*id);
  ASSERT_TRUE(job.ok()) << job.status().message();
  const std::string node = (*job)["placement"][0]["node"];
  const std::string suspended = c().JobDir(node, *id) + "/suspended";
  ASSERT_TRUE(Eventually(std::chrono::seconds(10), [&] {
    return access(suspended.c_str(), F_OK) == 0;
  })) << c().log_tail();
  std::string before = c().Herd("logs " + std::to_string(*id)).out;
  // The test itself: no progress over an interval, which only time can show.
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  std::string after = c().Herd("logs " + std::to_string(*id)).out;
  EXPECT_EQ(before, after) << "a suspended job kept writing output";
  ASSERT_EQ(c().Herd("resume " + std::to_string(*id)).exit_code, 0);
  EXPECT_EQ(c().WaitForEnd(*id), "COMPLETED");
  EXPECT_THAT(c().Herd("logs " + std::to_string(*id)).out, HasSubstr("tick 39"));
}

TEST_F(FoundationTest, TwoHalfGpuJobsShareOneGpu) {
  auto a = c().Submit("-g 0.5 -- sleep 30");
  auto b = c().Submit("-g 0.5 -- sleep 30");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(c().WaitForState(*a, "RUNNING")) << c().log_tail();
  ASSERT_TRUE(c().WaitForState(*b, "RUNNING")) << c().log_tail();
  auto ja = c().Show(*a), jb = c().Show(*b);
  ASSERT_TRUE(ja.ok() && jb.ok());
  EXPECT_EQ((*ja)["placement"][0]["node"], (*jb)["placement"][0]["node"]);
  EXPECT_EQ((*ja)["placement"][0]["gpus"], (*jb)["placement"][0]["gpus"]);
  c().Herd("cancel " + std::to_string(*a) + " " + std::to_string(*b));
  EXPECT_EQ(c().WaitForEnd(*a), "CANCELLED");
  EXPECT_EQ(c().WaitForEnd(*b), "CANCELLED");
}

TEST_F(FoundationTest, GangWorkersGetTheirRanks) {
  auto id = c().Submit("-N 2 -g 4 -- sh -c 'echo rank=$RANK world=$WORLD_SIZE master=$MASTER_ADDR'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_EQ(c().WaitForEnd(*id), "COMPLETED") << c().log_tail();
  EXPECT_THAT(c().Herd("logs " + std::to_string(*id) + " -w 0").out, HasSubstr("rank=0 world=2"));
  EXPECT_THAT(c().Herd("logs " + std::to_string(*id) + " -w 1").out, HasSubstr("rank=1 world=2"));
}

TEST_F(FoundationTest, ContainerJobRunsInItsOwnRootfs) {
  std::string why;
  std::string rootfs = MakeRootfs(c().dir(), &why);
  if (rootfs.empty()) GTEST_SKIP() << why;
  std::ofstream(c().dir() + "/host-secret") << "secret";
  auto id = c().Submit("--image " + rootfs + " -- sh -c 'echo inside; cat " + c().dir() +
                       "/host-secret || echo no-host-file'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_EQ(c().WaitForEnd(*id), "COMPLETED") << c().log_tail();
  std::string out = c().Herd("logs " + std::to_string(*id)).out;
  EXPECT_THAT(out, HasSubstr("inside"));
  EXPECT_THAT(out, HasSubstr("no-host-file"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("secret\n")));
}

TEST_F(FoundationTest, BadInputIsRejectedAndNothingIsLost) {
  std::string before = c().Herd("jobs --all --json").out;
  CommandResult r = c().Herd("submit --no-such-flag -- true");
  EXPECT_EQ(r.exit_code, 1);
  r = c().Herd("submit --gpus -1 -- true");
  EXPECT_EQ(r.exit_code, 1);
  r = c().Herd("submit --gpus 1.5 -- true");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("1.5"));
  r = c().Herd("submit --gpus 16 -- true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("largest node has 8"));
  r = c().Herd("submit -p no-such-project -- true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown project"));
  r = c().Herd("cancel 999999");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out + r.err, HasSubstr("not found"));
  EXPECT_EQ(c().Herd("jobs --all --json").out, before);
}

TEST(ConfigCheckTest, MalformedConfigNamesTheLine) {
  char dir[] = "/tmp/herd-cfg.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/herd.toml";
  std::ofstream(path) << "[controller]\nlisten = [\"tcp://127.0.0.1:1\"]\n\n[scheduler]\n"
                         "placement = \"best\"\n";
  CommandResult r = RunShell(BinDir() + "/herd-ctld --check-config --config " + path);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("herd.toml:5"));
  RunShell(std::string("rm -rf ") + dir);
}

// Reading a directory yields no text: it passed as an empty, valid herd.toml.
TEST(ConfigCheckTest, ADirectoryIsRefusedByName) {
  char dir[] = "/tmp/herd-cfg.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  CommandResult r = RunShell(BinDir() + "/herd-ctld --check-config --config " + dir);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, HasSubstr(std::string(dir) + " is a directory: give the configuration file"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("OK")));
  RunShell(std::string("rm -rf ") + dir);
}

// --print-config (named in etc/herd.toml) prints every key with its default as TOML that herd
// reads back to the same configuration; herd-noded prints the same.
TEST(ConfigCheckTest, PrintConfigShowsTheEffectiveConfigAsTomlThatReadsBack) {
  char dir[] = "/tmp/herd-cfg.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/herd.toml";
  std::ofstream(path) << "[scheduler]\nkill_grace = \"0s\"\n[projects.vision]\n"
                         "deserved = { gpu = 4 }\nmembers = [\"alice\"]\n";
  CommandResult printed = RunShell(BinDir() + "/herd-ctld --print-config --config " + path);
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_THAT(printed.out, HasSubstr("preempt_grace = \"30s\""));  // a default, filled in
  EXPECT_THAT(printed.out, HasSubstr("kill_grace = 0"));
  EXPECT_THAT(printed.out, HasSubstr("[projects.vision]"));
  EXPECT_THAT(printed.out, HasSubstr("max_pending_per_user = 10000"));
  const std::string again = std::string(dir) + "/printed.toml";
  std::ofstream(again) << printed.out;
  CommandResult reread = RunShell(BinDir() + "/herd-ctld --print-config --config " + again);
  EXPECT_EQ(reread.exit_code, 0) << reread.err;
  EXPECT_EQ(reread.out, printed.out);
  EXPECT_EQ(reread.err, "");
  CommandResult noded = RunShell(BinDir() + "/herd-noded --print-config --config " + path);
  EXPECT_EQ(noded.exit_code, 0) << noded.err;
  EXPECT_EQ(noded.out, printed.out);
  RunShell(std::string("rm -rf ") + dir);
}

}  // namespace
}  // namespace herd::testing
