// Faults of the daemons, in one process (InProcessCluster): herd-ctld restarted over its
// database, a node silent past node_timeout and back, herd-noded restarted under running jobs.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "noded/agent.h"
#include "tests/support/in_process_cluster.h"

namespace herd::testing {
namespace {

using model::JobState;
using ::testing::ElementsAre;

constexpr uint32_t kAlice = 1000;

TEST(ControllerRestartTest, RunningJobsStayRunningAndTheirLaterEndsAreRecorded) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  const model::JobId id = c->SubmitRunning(kAlice, Spec(1));
  ASSERT_NE(id, 0);
  const model::Job before = c->Job(id);

  ASSERT_TRUE(c->RestartController().ok());
  // The node learns from its next heartbeat that this herd-ctld does not know it, and
  // registers again with what it runs.
  c->Advance(c->config().scheduler.heartbeat_interval_ms);
  EXPECT_EQ(c->NodeState("n1"), "UP");
  model::Job job = c->Job(id);
  EXPECT_EQ(job.state, JobState::kRunning) << job.reason;
  EXPECT_EQ(job.restart_count, 0);
  EXPECT_EQ(job.start_time, before.start_time);
  EXPECT_EQ(job.placement, before.placement);
  EXPECT_EQ(c->jobs("n1").launched.size(), 1u) << "the job was not launched again";

  ASSERT_TRUE(c->jobs("n1").Exit(noded::JobKey(id, 0, 0), 5));
  c->Advance(100);
  job = c->Job(id);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_EQ(job.exit_code, 5);
}

TEST(ControllerRestartTest, JobThatEndsWhileTheControllerIsDownKeepsItsExitCode) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  const model::JobId id = c->SubmitRunning(kAlice, Spec(1));
  ASSERT_NE(id, 0);

  c->StopController();
  ASSERT_TRUE(c->jobs("n1").Exit(noded::JobKey(id, 0, 0), 0));
  c->Advance(10'000);  // its end report goes nowhere, again and again
  ASSERT_TRUE(c->StartController().ok());
  c->Advance(c->config().scheduler.heartbeat_interval_ms);
  model::Job job = c->Job(id);
  EXPECT_EQ(job.state, JobState::kCompleted) << job.reason;
  EXPECT_EQ(job.exit_code, 0);
  EXPECT_THAT(c->jobs("n1").forgotten, ElementsAre(noded::JobKey(id, 0, 0)));
}

TEST(ControllerRestartTest, CancelUnderWayEndsCancelledAfterARestart) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  const model::JobId id = c->SubmitRunning(kAlice, Spec(1));
  ASSERT_NE(id, 0);

  // The kill is sent, but n1 is frozen: the job still runs when herd-ctld restarts.
  c->FreezeNode("n1", true);
  auto cancelled = c->Client(kAlice).Action("cancel", id);
  ASSERT_TRUE(cancelled.ok() && cancelled->ok);
  ASSERT_TRUE(c->RestartController().ok());
  c->FreezeNode("n1", false);
  c->Advance(c->config().scheduler.heartbeat_interval_ms);
  model::Job job = c->Job(id);
  EXPECT_EQ(job.state, JobState::kCancelled) << job.reason;
  EXPECT_TRUE(c->jobs("n1").Running().empty());
}

constexpr char kShortNodeTimeout[] = R"(
[scheduler]
node_timeout = "10s"
)";

TEST(NodeLossTest, SilentNodeGoesDownItsJobIsRequeuedAndOnItsReturnOnlyTheNewRunRuns) {
  auto c = InProcessCluster::Started({kShortNodeTimeout, {{"n1"}}});
  ASSERT_NE(c, nullptr);
  const model::JobId id = c->SubmitRunning(kAlice, Spec(1));
  ASSERT_NE(id, 0);

  // n1 stops answering (frozen): after node_timeout it is DOWN and its train job requeued.
  c->FreezeNode("n1", true);
  c->Advance(9'000);
  EXPECT_EQ(c->NodeState("n1"), "UP");
  EXPECT_EQ(c->Job(id).state, JobState::kRunning);
  c->Advance(2'000);
  EXPECT_EQ(c->NodeState("n1"), "DOWN");
  model::Job job = c->Job(id);
  EXPECT_EQ(job.state, JobState::kPending);
  EXPECT_EQ(job.restart_count, 1);

  // n1 thaws: it registers again, its old run is killed and the new run is the only one.
  c->FreezeNode("n1", false);
  c->Advance(2 * c->config().scheduler.cycle_interval_ms);
  EXPECT_EQ(c->NodeState("n1"), "UP");
  job = c->Job(id);
  EXPECT_EQ(job.state, JobState::kRunning) << job.reason;
  EXPECT_EQ(job.restart_count, 1);
  EXPECT_THAT(c->jobs("n1").Running(), ElementsAre(noded::JobKey(id, 1, 0)));
  EXPECT_EQ(c->jobs("n1").Find(noded::JobKey(id, 0, 0)), nullptr)
      << "the old run's end was reported and acknowledged";
}

TEST(NodeLossTest, NodeDaemonRestartKeepsItsJobsRunning) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  const model::JobId id = c->SubmitRunning(kAlice, Spec(1));
  ASSERT_NE(id, 0);

  ASSERT_TRUE(c->StartNode("n1").ok());  // a new herd-noded, on a new connection
  c->Settle();
  model::Job job = c->Job(id);
  EXPECT_EQ(job.state, JobState::kRunning) << job.reason;
  EXPECT_EQ(job.restart_count, 0);
  EXPECT_EQ(c->jobs("n1").launched.size(), 1u);

  // The new herd-noded reports the job's end.
  ASSERT_TRUE(c->jobs("n1").Exit(noded::JobKey(id, 0, 0), 0));
  c->Advance(100);
  EXPECT_EQ(c->Job(id).state, JobState::kCompleted);
}

TEST(NodeLossTest, JobWhoseLaunchWasLostWithTheNodeDaemonIsRequeuedNotFailed) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  // The launch waits at a frozen herd-noded, which is then replaced (kill -9, start).
  c->FreezeNode("n1", true);
  const model::JobId id = c->Submit(kAlice, Spec(1));
  ASSERT_NE(id, 0);
  c->Cycle();
  ASSERT_EQ(c->Job(id).state, JobState::kStarting);
  c->StopNode("n1");
  ASSERT_TRUE(c->StartNode("n1").ok());
  c->Settle();
  c->Cycle();
  model::Job job = c->Job(id);
  EXPECT_EQ(job.state, JobState::kRunning) << job.reason;
  EXPECT_EQ(job.restart_count, 1);
  EXPECT_THAT(c->jobs("n1").Running(), ElementsAre(noded::JobKey(id, 1, 0)));
}

}  // namespace
}  // namespace herd::testing
