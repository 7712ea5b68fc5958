// What an admin does to a running cluster: drain a node, reload the configuration.
#include <unistd.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;

TEST(AdminIntegrationTest, DrainedNodeKeepsItsJobsAndTakesNoNewOnes) {
  auto started = LocalCluster::Start({});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  CommandResult r = c.Herd("admin drain dgx01");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("drained"));
  EXPECT_THAT(c.Herd("nodes").out, HasSubstr("DRAIN"));
  // An 8-GPU job fits only on dgx01: it waits while the node is drained, then runs.
  auto id = c.Submit("-g 8 -- true");
  ASSERT_TRUE(id.ok()) << id.status().message();
  auto small = c.Submit("-g 1 -- true");
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(c.WaitForEnd(*small), "COMPLETED");
  auto job = c.Show(*small);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["placement"][0]["node"], "ws01");
  EXPECT_EQ((*c.Show(*id))["state"], "PENDING");
  ASSERT_EQ(c.Herd("admin undrain dgx01").exit_code, 0);
  EXPECT_EQ(c.WaitForEnd(*id), "COMPLETED");
  r = c.Herd("admin drain no-such-node");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no node named"));
}

TEST(AdminIntegrationTest, ReconfigureRefusesABadFileAndKeepsRunning) {
  auto started = LocalCluster::Start({});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  const std::string path = c.dir() + "/herd.toml";
  std::string good;
  {
    std::ifstream in(path);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(path) << good << "\n[projects.vision]\ndeserved = { gpu = -2 }\n";
  CommandResult r = c.Herd("admin reconfigure");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("herd.toml:"));
  EXPECT_THAT(r.err, HasSubstr("running configuration stays"));
  EXPECT_EQ(c.Herd("jobs").exit_code, 0) << "herd-ctld must stay up";

  std::ofstream(path) << good << "\n[projects.vision]\nmembers = [\"*\"]\n";
  r = c.Herd("admin reconfigure");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto id = c.Submit("-p vision -- true");
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(c.WaitForEnd(*id), "COMPLETED");
  // check-config validates without a controller.
  EXPECT_EQ(c.Herd("admin check-config " + path).exit_code, 0);
}

// herd admin snapshot writes a live scheduling cycle that herd-sim replays to the same decisions;
// an edited snapshot shows what the scheduler would have done instead.
TEST(AdminIntegrationTest, SnapshotOfALiveCycleReplaysToTheDecisionsItHad) {
  auto started = LocalCluster::Start({});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  auto big = c.Submit("-g 8 -- sleep 987654");
  ASSERT_TRUE(big.ok()) << big.status().message();
  ASSERT_TRUE(c.WaitForState(*big, "RUNNING")) << c.log_tail();
  auto waits = c.Submit("-g 8 -- true");  // fits only where `big` runs
  ASSERT_TRUE(waits.ok()) << waits.status().message();
  CommandResult r = c.Herd("admin snapshot");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = std::to_string(*big), wid = std::to_string(*waits);
  EXPECT_THAT(r.out, HasSubstr("\nrunning " + id + " "));
  EXPECT_THAT(r.out, HasSubstr("\npending " + wid + " "));
  EXPECT_THAT(r.out, HasSubstr("\nexpect reason " + wid + " contains"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("987654"))) << "a snapshot holds no command";
  const std::string file = c.dir() + "/live.scenario";
  std::ofstream(file) << r.out;
  const std::string sim = BinDir() + "/herd-sim";
  CommandResult replay = RunShell(sim + " replay " + file);
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err << "\n" << r.out;
  EXPECT_THAT(replay.out, HasSubstr("expectations: all "));
  // Without the running job, the waiting one would have started: the replay says so.
  std::string edited;
  for (size_t at = 0, end; at < r.out.size(); at = end + 1) {
    end = r.out.find('\n', at);
    if (end == std::string::npos) end = r.out.size();
    const std::string line = r.out.substr(at, end - at);
    if (line.rfind("running " + id + " ", 0) != 0) edited += line + "\n";
  }
  std::ofstream(file) << edited;
  replay = RunShell(sim + " replay " + file);
  EXPECT_EQ(replay.exit_code, 1) << replay.out << replay.err;
  EXPECT_THAT(replay.out, HasSubstr("start " + wid + " "));
  EXPECT_EQ(RunShell(sim + " replay " + c.dir() + "/no-such-file").exit_code, 2);
}

TEST(AdminIntegrationTest, OnlyAdminsMayAdminister) {
  auto started = LocalCluster::Start({});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  if (getuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  if (RunShell("command -v setpriv").exit_code != 0) GTEST_SKIP() << "setpriv is not installed";
  for (const char* verb : {"admin drain dgx01", "admin snapshot"}) {
    CommandResult r = c.HerdAs(65534, 65534, verb);
    EXPECT_EQ(r.exit_code, 2) << verb;
    EXPECT_THAT(r.err, HasSubstr("permission denied")) << verb;
  }
}

TEST(AdminIntegrationTest, RootJobsRunOnlyWhereTheAdminAllowsThem) {
  if (getuid() != 0) GTEST_SKIP() << "needs root";
  if (RunShell("command -v setpriv").exit_code != 0) GTEST_SKIP() << "setpriv is not installed";
  auto started = LocalCluster::Start({"[controller]\nallow_root_jobs = false\n", {}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  CommandResult r = c.Herd("submit -- id -u");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("submit as a normal user"));
  r = c.HerdAs(65534, 65534, "submit -q -- id -u");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const long id = std::stol(r.out);
  EXPECT_EQ(c.WaitForEnd(id), "COMPLETED");
  EXPECT_THAT(c.Herd("logs " + std::to_string(id)).out, HasSubstr("65534"));
}

}  // namespace
}  // namespace herd::testing
