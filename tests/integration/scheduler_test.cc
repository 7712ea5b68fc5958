// The scheduler's behaviours end to end through the real daemons: over-quota use and reclaim,
// automatic restart of preempted jobs, and what `herd projects` reports.
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;


std::string StateOf(const LocalCluster& c, long id) {
  auto j = c.Show(id);
  return j.ok() ? (*j).value("state", "") : "";
}

TEST(ReclaimIntegrationTest, OverQuotaJobsAreReclaimedAndRestartByThemselves) {
  // A reclaimed job borrows again only after reclaim_backoff (15 minutes unless set; its rule is
  // tested by the scheduler's scenarios and herd-ctld's in-process tests): 2 seconds here.
  auto started = LocalCluster::Start(
      {std::string(kTwoProjects) + "\n[scheduler]\nreclaim_backoff = \"2s\"\n",
       {"ws01=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;

  // Project a takes all four GPUs while b is idle: over its quota of 2.
  std::vector<long> a;
  for (int i = 0; i < 4; ++i) {
    auto id = c.Submit("-p a -g 1 -- sh -c 'echo restart=$HERD_RESTART_COUNT; sleep 300'");
    ASSERT_TRUE(id.ok()) << id.status().message();
    a.push_back(*id);
  }
  for (long id : a) ASSERT_TRUE(c.WaitForState(id, "RUNNING")) << c.log_tail();

  // b asks for its guaranteed 2 GPUs: two of a's jobs are reclaimed, b runs.
  auto b = c.Submit("-p b -g 2 -- sleep 300");
  ASSERT_TRUE(b.ok()) << b.status().message();
  ASSERT_TRUE(c.WaitForState(*b, "RUNNING", std::chrono::seconds(45))) << c.log_tail();

  std::vector<long> requeued, kept;
  for (long id : a) {
    auto j = c.Show(id);
    ASSERT_TRUE(j.ok());
    if ((*j)["restart_count"].get<int>() > 0) {
      requeued.push_back(id);
      EXPECT_EQ((*j)["state"], "PENDING");
    } else {
      kept.push_back(id);
      EXPECT_EQ((*j)["state"], "RUNNING");
    }
  }
  EXPECT_EQ(requeued.size(), 2u) << "reclaim takes the fewest victims: exactly the 2 GPUs b needs";
  EXPECT_EQ(kept.size(), 2u) << "a keeps its guaranteed 2 GPUs";

  CommandResult projects = c.Herd("projects");
  EXPECT_EQ(projects.exit_code, 0) << projects.err;
  EXPECT_THAT(projects.out, HasSubstr("a"));
  EXPECT_THAT(projects.out, HasSubstr("b"));

  // When b is done, the preempted jobs start again on their own (once their backoff has passed),
  // told they were restarted.
  ASSERT_EQ(c.Herd("cancel " + std::to_string(*b)).exit_code, 0);
  for (long id : requeued) {
    ASSERT_TRUE(c.WaitForState(id, "RUNNING", std::chrono::seconds(45))) << c.log_tail();
    auto j = c.Show(id);
    ASSERT_TRUE(j.ok());
    EXPECT_EQ((*j)["restart_count"], 1);
    // The output of the second run follows the first one's.
    std::string logs;
    for (int i = 0; i < 100 && logs.find("restart=1") == std::string::npos; ++i) {
      logs = c.Herd("logs " + std::to_string(id)).out;
    }
    EXPECT_THAT(logs, HasSubstr("restart=1"));
  }
  std::string all;
  for (long id : a) all += " " + std::to_string(id);
  c.Herd("cancel" + all);
}

TEST(ReclaimIntegrationTest, NonPreemptibleJobsStayWithinTheDeservedQuota) {
  auto started = LocalCluster::Start(
      {kTwoProjects, {"ws01=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  auto first = c.Submit("-p a --interactive -g 2 -- sleep 300");
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(c.WaitForState(*first, "RUNNING")) << c.log_tail();
  // Two more GPUs are idle, but a's guarantee is used up and interactive jobs are not preemptible.
  auto second = c.Submit("-p a --interactive -g 1 -- sleep 300");
  ASSERT_TRUE(second.ok()) << second.status().message();
  std::string reason;
  for (int i = 0; i < 100 && reason.empty(); ++i) {
    auto j = c.Show(*second);
    ASSERT_TRUE(j.ok());
    std::string r = (*j).value("reason", "");
    if (r.find("quota") != std::string::npos) reason = r;
  }
  EXPECT_THAT(reason, HasSubstr("quota")) << c.log_tail();
  EXPECT_EQ(StateOf(c, *second), "PENDING");
  c.Herd("cancel " + std::to_string(*first) + " " + std::to_string(*second));
}

}  // namespace
}  // namespace herd::testing
