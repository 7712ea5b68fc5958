// A job's life through herd-ctld and herd-noded in one process (InProcessCluster): submit,
// schedule, launch, start, run, end; cancel; reclaim and restart; who may speak for a node.
#include <algorithm>
#include <map>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "noded/agent.h"
#include "tests/support/configs.h"
#include "tests/support/in_process_cluster.h"

namespace herd::testing {
namespace {

using model::JobState;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr uint32_t kAlice = 1000;
constexpr uint32_t kBob = 1001;

TEST(JobLifecycleTest, SubmittedJobIsLaunchedRunsAndCompletesWithItsExitCode) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->NodeState("n1"), "UP");

  // The node is frozen: the launch waits at it, and the job is STARTING.
  c->FreezeNode("n1", true);
  const model::JobId id = c->Submit(kAlice, Spec(1));
  ASSERT_NE(id, 0);
  c->Cycle();
  model::Job job = c->Job(id);
  EXPECT_EQ(job.state, JobState::kStarting) << job.reason;
  ASSERT_EQ(job.placement.size(), 1u);
  EXPECT_EQ(job.placement[0].node, "n1");
  EXPECT_EQ(job.placement[0].gpus.size(), 1u);
  EXPECT_TRUE(c->jobs("n1").launched.empty());

  // The node takes the launch, starts the job as its user and reports it: RUNNING.
  c->FreezeNode("n1", false);
  c->Settle();
  ASSERT_EQ(c->jobs("n1").launched.size(), 1u);
  const runtime::LaunchSpec& launched = c->jobs("n1").launched[0];
  const std::string key = noded::JobKey(id, 0, 0);
  EXPECT_EQ(launched.job_key, key);
  EXPECT_EQ(launched.uid, kAlice);
  EXPECT_EQ(launched.argv, std::vector<std::string>{"train.py"});
  EXPECT_THAT(launched.env, Contains(Pair("HERD_JOB_ID", std::to_string(id))));
  EXPECT_THAT(launched.env, Contains(Pair("CUDA_VISIBLE_DEVICES",
                                          std::to_string(job.placement[0].gpus[0]))));
  EXPECT_EQ(c->Job(id).state, JobState::kRunning);

  // It exits 0; within one poll of the node it is COMPLETED and the node forgets it.
  ASSERT_TRUE(c->jobs("n1").Exit(key, 0));
  c->Advance(100);
  job = c->Job(id);
  EXPECT_EQ(job.state, JobState::kCompleted) << job.reason;
  EXPECT_EQ(job.exit_code, 0);
  EXPECT_THAT(c->jobs("n1").forgotten, ElementsAre(key));
}

// herd-ctld keeps no job's environment or batch script in memory (ctld/job_table.h): the store
// has them, and they still reach the job's node at each launch and its owner in every listing,
// through updates of the job and restarts of herd-ctld; others never see them.
TEST(JobLifecycleTest, EnvironmentAndScriptComeFromTheStoreToTheNodeAndTheOwner) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  model::JobSpec spec = Spec(1);
  spec.env = {{"FOO", "bar"}, {"LANG", "gr\xc3\xbc\xc3\x9f \"q\""}};
  spec.script = "#!/bin/sh\necho hi\n";
  spec.hold = true;
  const model::JobId id = c->Submit(kAlice, spec);
  ASSERT_NE(id, 0);
  auto as_seen_by = [&](uint32_t uid) {
    auto job = c->Client(uid).Show(id);
    EXPECT_TRUE(job.ok()) << job.status().message();
    return job.ok() ? *job : model::Job{};
  };
  auto expect_own = [&](const model::Job& job, const std::string& when) {
    EXPECT_EQ(job.spec.env, spec.env) << when;
    EXPECT_EQ(job.spec.script, spec.script) << when;
  };
  expect_own(as_seen_by(kAlice), "listed to its owner");
  expect_own(c->Job(id), "listed to root");
  EXPECT_TRUE(as_seen_by(kBob).spec.env.empty());
  EXPECT_TRUE(as_seen_by(kBob).spec.script.empty());
  auto why = c->Client(kAlice).Call<proto::WhyReply>(proto::WhyRequest{id});
  ASSERT_TRUE(why.ok()) << why.status().message();
  expect_own(why->job, "herd why to its owner");
  auto theirs = c->Client(kBob).Call<proto::WhyReply>(proto::WhyRequest{id});
  ASSERT_TRUE(theirs.ok()) << theirs.status().message();
  EXPECT_TRUE(theirs->job.spec.env.empty());

  // Written again with the rest of the job (herd update, its state, its reason), and after a
  // restart, the store's environment and script stay.
  proto::UpdateJobRequest rename{.ids = {id}, .name = "renamed"};
  auto updated = c->Client(kAlice).Call<proto::JobActionReply>(rename);
  ASSERT_TRUE(updated.ok()) << updated.status().message();
  ASSERT_TRUE(c->RestartController().ok());
  c->Advance(c->config().scheduler.heartbeat_interval_ms);  // the node registers again
  expect_own(as_seen_by(kAlice), "after an update and a restart");
  EXPECT_EQ(as_seen_by(kAlice).spec.name, "renamed");

  // Released, it is launched with them.
  auto released = c->Client(kAlice).Action("release", id);
  ASSERT_TRUE(released.ok() && released->ok) << released.status().message();
  c->Cycle();
  ASSERT_EQ(c->Job(id).state, JobState::kRunning) << c->Job(id).reason;
  const FakeNodeJobs::Job* run = c->jobs("n1").Find(noded::JobKey(id, 0, 0));
  ASSERT_NE(run, nullptr);
  EXPECT_THAT(run->spec.env, Contains(Pair("FOO", "bar")));
  EXPECT_THAT(run->spec.env, Contains(Pair("LANG", spec.env["LANG"])));
  EXPECT_EQ(run->spec.script, spec.script);
  expect_own(as_seen_by(kAlice), "while it runs");
}

TEST(JobLifecycleTest, FailingCommandEndsFailedWithItsExitCode) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  const model::JobId id = c->SubmitRunning(kAlice, Spec(0));
  ASSERT_NE(id, 0);

  ASSERT_TRUE(c->jobs("n1").Exit(noded::JobKey(id, 0, 0), 3));
  c->Advance(100);
  model::Job job = c->Job(id);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_EQ(job.exit_code, 3);
  EXPECT_EQ(job.reason, "exit code 3");
}

TEST(JobLifecycleTest, CancelKillsTheRunningJobAndOnlyItsOwnerMayCancel) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  const model::JobId id = c->SubmitRunning(kAlice, Spec(1));
  ASSERT_NE(id, 0);
  const std::string key = noded::JobKey(id, 0, 0);

  auto refused = c->Client(kBob).Action("cancel", id);
  ASSERT_TRUE(refused.ok()) << refused.status().message();
  EXPECT_FALSE(refused->ok);
  EXPECT_THAT(refused->message, HasSubstr("permission denied"));
  EXPECT_EQ(c->jobs("n1").Find(key)->kills, 0);
  EXPECT_EQ(c->Job(id).state, JobState::kRunning);

  // The kill reaches the node, the job ends at once (it obeys SIGTERM) and is reported.
  auto cancelled = c->Client(kAlice).Action("cancel", id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status().message();
  EXPECT_TRUE(cancelled->ok) << cancelled->message;
  model::Job job = c->Job(id);
  EXPECT_EQ(job.state, JobState::kCancelled) << job.reason;
  EXPECT_THAT(c->jobs("n1").forgotten, ElementsAre(key));
  EXPECT_TRUE(c->jobs("n1").Running().empty());
}

TEST(JobLifecycleTest, ReclaimedJobsAreRequeuedAndStartAgainAsTheirNextRun) {
  auto c = InProcessCluster::Started({kTwoProjects, {{"n1"}}});
  ASSERT_NE(c, nullptr);
  // a takes all four GPUs while b is idle.
  std::vector<model::JobId> a;
  for (int i = 0; i < 4; ++i) a.push_back(c->Submit(kAlice, Spec(1, "train", "a")));
  c->Cycle();
  for (model::JobId id : a) ASSERT_EQ(c->Job(id).state, JobState::kRunning) << id;

  // b asks for its 2 GPUs: two of a's jobs are stopped, requeued, and b starts in their room.
  const model::JobId b = c->Submit(kBob, Spec(2, "train", "b"));
  ASSERT_NE(b, 0);
  c->Cycle();
  c->Cycle();
  EXPECT_EQ(c->Job(b).state, JobState::kRunning) << c->Job(b).reason;
  std::vector<model::JobId> requeued;
  for (model::JobId id : a) {
    model::Job job = c->Job(id);
    if (job.restart_count == 0) {
      EXPECT_EQ(job.state, JobState::kRunning) << id;
      continue;
    }
    requeued.push_back(id);
    EXPECT_EQ(job.state, JobState::kPending) << id;
    EXPECT_EQ(job.restart_count, 1);
    EXPECT_EQ(job.preemptions, 1);
    // Its first run was killed and, its end acknowledged, forgotten by the node.
    EXPECT_EQ(c->jobs("n1").Find(noded::JobKey(id, 0, 0)), nullptr);
  }
  ASSERT_EQ(requeued.size(), 2u) << "reclaim takes exactly the 2 GPUs b is guaranteed";

  // When b ends, the requeued jobs would run beyond a's deserved 2 GPUs: reclaimed once, each
  // waits out reclaim_backoff (15 minutes) first, then starts again as run 1, told it was
  // restarted.
  ASSERT_TRUE(c->jobs("n1").Exit(noded::JobKey(b, 0, 0), 0));
  c->Cycle();
  for (model::JobId id : requeued) {
    model::Job job = c->Job(id);
    EXPECT_EQ(job.state, JobState::kPending) << id;
    EXPECT_THAT(job.reason, HasSubstr("reclaimed 1 time: waits 15m after its requeue"));
  }
  c->Advance(15 * 60 * 1000);
  c->Cycle();
  for (model::JobId id : requeued) {
    model::Job job = c->Job(id);
    EXPECT_EQ(job.state, JobState::kRunning) << id << ": " << job.reason;
    EXPECT_EQ(job.restart_count, 1);
    const FakeNodeJobs::Job* run = c->jobs("n1").Find(noded::JobKey(id, 1, 0));
    ASSERT_NE(run, nullptr) << id;
    EXPECT_THAT(run->spec.env, Contains(Pair("HERD_RESTART_COUNT", "1")));
  }
  EXPECT_EQ(c->jobs("n1").Running().size(), 4u);
}

// A job the quotas could never let start is refused at submit, saying what to ask instead,
// rather than waiting forever: an interactive job (which starts only within its project's
// guarantee) beyond the project's deserved GPUs, any job beyond a limit of its project or of a
// department above it.
TEST(SubmitTest, JobTheQuotasCanNeverStartIsRefusedWithWhatToAskInstead) {
  auto c = InProcessCluster::Started({R"(
[departments.lab]
limit = { gpu = 3 }
members = ["*"]

[projects.a]
department = "lab"
deserved = { gpu = 2 }

[projects.free]
deserved = { gpu = 0 }
members = ["*"]
)", {{"n1"}}});
  ASSERT_NE(c, nullptr);
  TestClient alice = c->Client(kAlice);
  auto refused = alice.Submit(Spec(3, "interactive", "a"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kInvalid);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("class interactive starts only within the project's guaranteed quota, and "
                        "project a is guaranteed 2 GPUs (the job needs 3 GPUs): ask for less, use "
                        "a class that may borrow idle GPUs (--class train)"));
  refused = alice.Submit(Spec(1, "interactive", "free"));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("project free is guaranteed 0 GPUs"));
  refused = alice.Submit(Spec(4, "train", "a"));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(),
              HasSubstr("the job needs 4 GPUs but department lab may use at most 3 GPUs"));
  // Within them: accepted (a CPU-only interactive job needs no GPU guarantee).
  EXPECT_TRUE(alice.Submit(Spec(2, "interactive", "a")).ok());
  EXPECT_TRUE(alice.Submit(Spec(3, "train", "a")).ok());
  EXPECT_TRUE(alice.Submit(Spec(0, "interactive", "free")).ok());
}

// A job held to a pool (--pool) that a limit of that pool could never admit is refused at submit;
// one free to run outside the pool is not.
TEST(SubmitTest, JobAPoolLimitCanNeverAdmitIsRefused) {
  auto c = InProcessCluster::Started({R"(
[pools.train]
nodes = ["n1"]

[projects.a]
limit = { "pool.train" = 2 }
members = ["*"]
)", {{"n1"}, {"n2"}}});
  ASSERT_NE(c, nullptr);
  TestClient alice = c->Client(kAlice);
  model::JobSpec spec = Spec(3, "train", "a");
  spec.pool = "train";
  auto refused = alice.Submit(spec);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kInvalid);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("the job needs 3 GPUs in pool train but project a may use at most 2 GPUs "
                        "there: ask for less, or for another pool (--pool)"));
  spec.pool = "";
  EXPECT_TRUE(alice.Submit(spec).ok());
  spec = Spec(2, "train", "a");
  spec.pool = "train";
  EXPECT_TRUE(alice.Submit(spec).ok());
}

// A job allowed only GPU types (--gpu-type) whose limits each keep it below its need is refused
// at submit, naming the limit; one that may use any type, or fits, is not.
TEST(SubmitTest, JobTheTypedLimitsCanNeverAdmitIsRefused) {
  auto c = InProcessCluster::Started({R"(
[projects.a]
limit = { "gpu.a100" = 2, "gpu.h100" = 1 }
members = ["*"]
)", {{"n1"}}});
  ASSERT_NE(c, nullptr);
  TestClient alice = c->Client(kAlice);
  model::JobSpec spec = Spec(3, "train", "a");
  spec.gpu_types = {"a100"};
  auto refused = alice.Submit(spec);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kInvalid);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("the job needs 3 GPUs of type a100 but project a may use at most 2 GPUs "
                        "of that type: ask for less, or for another type (--gpu-type)"));
  spec.gpu_types = {"a100", "h100"};
  refused = alice.Submit(spec);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("may use at most 1 GPU of that type"));
  spec.gpu_types = {};
  EXPECT_TRUE(alice.Submit(spec).ok());
  spec = Spec(2, "train", "a");
  spec.gpu_types = {"a100"};
  EXPECT_TRUE(alice.Submit(spec).ok());
}

// herd-ctld tells the scheduler which quota pool each node is in ([pools.NAME] of herd.toml): a
// project at its limit in pool train starts no more jobs there, and its jobs free to run anywhere
// start outside the pool.
TEST(JobLifecycleTest, APoolLimitHoldsOnThatPoolsNodesOnly) {
  auto c = InProcessCluster::Started({R"(
[pools.train]
nodes = ["n2"]

[projects.a]
limit = { "pool.train" = 2 }
members = ["*"]
)", {{"n1"}, {"n2"}}});
  ASSERT_NE(c, nullptr);
  model::JobSpec in_pool = Spec(1, "train", "a");
  in_pool.pool = "train";
  std::vector<model::JobId> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(c->Submit(kAlice, in_pool));
  const model::JobId anywhere = c->Submit(kAlice, Spec(1, "train", "a"));
  c->Cycle();
  int running = 0;
  for (model::JobId id : ids) {
    model::Job job = c->Job(id);
    if (job.state == JobState::kRunning || job.state == JobState::kStarting) {
      ++running;
      EXPECT_EQ(job.placement.at(0).node, "n2");
    } else {
      EXPECT_THAT(job.reason, HasSubstr("project a is at its limit of 2 GPUs in pool train (2 in "
                                        "use, job needs 1)"));
    }
  }
  EXPECT_EQ(running, 2);
  model::Job job = c->Job(anywhere);
  ASSERT_FALSE(job.placement.empty()) << job.reason;
  EXPECT_EQ(job.placement.at(0).node, "n1");
}

// A session (herd run, --pty) in a container is refused at submit with what to do instead, not
// failed on its node once scheduled; without a session an image is fine, and so is a session
// without one.
TEST(SubmitTest, ASessionInAContainerIsRefusedWithWhatToDoInstead) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  TestClient alice = c->Client(kAlice);
  model::JobSpec spec = Spec(0);
  spec.image = "/images/pytorch";
  spec.session = "pty";
  auto refused = alice.Submit(spec);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kInvalid);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("interactive sessions (herd run, --pty) cannot run in a container "
                        "(--image) yet: run without --image, or submit the job without --pty and "
                        "use herd exec JOB -- bash"));
  spec.session = "pipes";
  EXPECT_FALSE(alice.Submit(spec).ok());
  spec.session = "";
  EXPECT_TRUE(alice.Submit(spec).ok());
  spec.image = "";
  spec.session = "pty";
  EXPECT_TRUE(alice.Submit(spec).ok());
}

TEST(JobLifecycleTest, HigherClassPreemptsALowerOneOfItsProject) {
  auto c = InProcessCluster::Started({R"(
[projects.vision]
deserved = { gpu = 4 }
members = ["*"]

[classes.train]
min_runtime = 0
)",
                         {{"n1"}}});
  ASSERT_NE(c, nullptr);
  std::vector<model::JobId> train;
  for (int i = 0; i < 2; ++i) {
    train.push_back(c->Submit(kAlice, Spec(2, "train", "vision")));
    c->Cycle();  // the second starts a second later: the younger
  }
  const model::JobId interactive = c->Submit(kAlice, Spec(2, "interactive", "vision"));
  ASSERT_NE(interactive, 0);
  c->Cycle();
  c->Cycle();
  EXPECT_EQ(c->Job(interactive).state, JobState::kRunning) << c->Job(interactive).reason;
  // The younger train job gave way (less work lost) and waits to run again.
  EXPECT_EQ(c->Job(train[0]).state, JobState::kRunning);
  model::Job evicted = c->Job(train[1]);
  EXPECT_EQ(evicted.state, JobState::kPending);
  EXPECT_EQ(evicted.restart_count, 1);
}

TEST(JobLifecycleTest, ResentEndReportIsAcknowledgedAndChangesNothing) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  const model::JobId id = c->SubmitRunning(kAlice, Spec(1));
  ASSERT_NE(id, 0);
  const std::string key = noded::JobKey(id, 0, 0);

  // The first acknowledgement is lost: the node reports the end again after 2 s.
  int acks_dropped = 0;
  c->network().set_filter([&](const InProcessNetwork::Message& m) {
    if (m.to_server || m.envelope.type != "event_ack" || acks_dropped > 0) return true;
    ++acks_dropped;
    return false;
  });
  ASSERT_TRUE(c->jobs("n1").Exit(key, 0));
  c->Advance(100);
  const model::Job ended = c->Job(id);
  EXPECT_EQ(ended.state, JobState::kCompleted);
  EXPECT_EQ(acks_dropped, 1);
  EXPECT_TRUE(c->jobs("n1").forgotten.empty());

  c->Advance(2000);
  int reports = 0;
  for (const auto& m : c->network().log()) {
    if (!m.to_server || m.envelope.type != "job_event") continue;
    auto ev = proto::BodyOf<proto::JobEvent>(m.envelope);
    reports += ev.ok() && ev->report.id == id && ev->report.state == "ENDED";
  }
  EXPECT_EQ(reports, 2);
  EXPECT_THAT(c->jobs("n1").forgotten, ElementsAre(key));
  const model::Job after = c->Job(id);
  EXPECT_EQ(after.state, JobState::kCompleted);
  EXPECT_EQ(after.exit_code, 0);
  EXPECT_EQ(after.end_time, ended.end_time);
  EXPECT_EQ(after.restart_count, 0);
}

// ---- what a pending job waits for ----

// herd why names what a job waits for from the code its reason was given with.
TEST(PendingReasonTest, WhySaysWhatEachJobWaitsForAndEstimatesOnlyWhatCanBeEstimated) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  ASSERT_NE(c->SubmitRunning(kBob, Spec(4)), 0);  // every GPU of n1
  TestClient alice = c->Client(kAlice);
  model::JobSpec held = Spec(1);
  held.hold = true;
  auto held_id = alice.Submit(held);
  ASSERT_TRUE(held_id.ok()) << held_id.status().message();
  model::JobSpec after = Spec(1);
  after.after = {std::to_string(*held_id)};
  auto after_id = alice.Submit(after);
  ASSERT_TRUE(after_id.ok()) << after_id.status().message();
  auto waiting = alice.Submit(Spec(1));
  ASSERT_TRUE(waiting.ok()) << waiting.status().message();
  c->Cycle();

  auto why = [&](model::JobId id) {
    auto r = alice.Call<proto::WhyReply>(proto::WhyRequest{id});
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : proto::WhyReply{};
  };
  proto::WhyReply r = why(*held_id);
  EXPECT_EQ(r.waits_for, "hold");
  EXPECT_EQ(r.job.reason_code, "held_by_user");
  EXPECT_EQ(r.job.reason, "held by user: herd release " + std::to_string(*held_id));
  EXPECT_EQ(r.estimate_note, "no estimate: it waits for its hold");
  r = why(*after_id);
  EXPECT_EQ(r.waits_for, "dependency");
  EXPECT_EQ(r.job.reason_code, "after_ok");
  EXPECT_EQ(r.job.reason, "waiting for job " + std::to_string(*held_id) + " to complete");
  r = why(*waiting);
  EXPECT_EQ(r.waits_for, "resources") << r.job.reason;
  EXPECT_THAT(r.job.reason, HasSubstr("1 GPU"));

  // Released, it waits in line like any other job (the release asks for a cycle at once).
  auto released = alice.Action("release", *held_id);
  ASSERT_TRUE(released.ok() && released->ok) << released.status().message();
  c->Cycle();
  EXPECT_EQ(why(*held_id).waits_for, "resources");
}

// A job held back by its project's limit, or by the deserved quota its class must stay within,
// carries the code of that reason (herd jobs and herd why print it as reason_code). The store
// keeps no code: after herd-ctld restarts, the next cycle gives it again.
TEST(PendingReasonTest, AJobWaitingOnQuotaCarriesTheCodeOfItsReason) {
  auto c = InProcessCluster::Started({R"(
[projects.a]
limit = { gpu = 2 }
members = ["*"]

[projects.b]
deserved = { gpu = 1 }
members = ["*"]
)", {{"n1"}}});
  ASSERT_NE(c, nullptr);
  ASSERT_NE(c->SubmitRunning(kBob, Spec(2, "train", "a")), 0);
  ASSERT_NE(c->SubmitRunning(kBob, Spec(1, "interactive", "b")), 0);
  const model::JobId limited = c->Submit(kAlice, Spec(1, "train", "a"));
  const model::JobId beyond = c->Submit(kAlice, Spec(1, "interactive", "b"));
  ASSERT_TRUE(limited != 0 && beyond != 0);
  c->Cycle();  // one of n1's 4 GPUs is free: quotas alone hold them back

  model::Job job = c->Job(limited);
  EXPECT_EQ(job.state, JobState::kPending);
  EXPECT_EQ(job.reason_code, "limit") << job.reason;
  EXPECT_THAT(job.reason, HasSubstr("project a is at its limit of 2 GPUs"));
  auto why = c->Client(kAlice).Call<proto::WhyReply>(proto::WhyRequest{limited});
  ASSERT_TRUE(why.ok()) << why.status().message();
  EXPECT_EQ(why->waits_for, "quota");
  EXPECT_EQ(why->job.reason_code, "limit");
  job = c->Job(beyond);
  EXPECT_EQ(job.reason_code, "within_quota_only") << job.reason;
  EXPECT_THAT(job.reason, HasSubstr("interactive jobs run only within the project's deserved"));

  ASSERT_TRUE(c->RestartController().ok());
  c->Advance(c->config().scheduler.heartbeat_interval_ms);  // n1 registers again
  c->Cycle();
  EXPECT_EQ(c->Job(limited).reason_code, "limit") << c->Job(limited).reason;
  EXPECT_EQ(c->Job(beyond).reason_code, "within_quota_only");
}

// A session's estimate counts only its project's jobs that may not be evicted against the deserved
// quota, as the scheduler does: the project's training jobs beyond its quota give the session no
// wait of their own, only the GPUs they hold until their time limits end them.
TEST(PendingReasonTest, SessionEstimateCountsOnlyFirmJobsAgainstTheDeservedQuota) {
  auto c = InProcessCluster::Started({R"(
[projects.vision]
deserved = { gpu = 2 }
members = ["*"]

[projects.nlp]
deserved = { gpu = 2 }
members = ["*"]

[classes.train]
min_runtime = "4h"
)",
                                      {{"n1"}}});
  ASSERT_NE(c, nullptr);
  model::JobSpec shorter = Spec(2, "train", "vision"), longer = Spec(2, "train", "vision");
  shorter.time_limit_s = 3600;
  longer.time_limit_s = 7200;
  const model::JobId first = c->SubmitRunning(kAlice, shorter);
  const model::JobId second = c->SubmitRunning(kAlice, longer);
  ASSERT_NE(first, 0);
  ASSERT_NE(second, 0);
  TestClient alice = c->Client(kAlice);
  auto session = alice.Submit(Spec(1, "interactive", "vision"));
  ASSERT_TRUE(session.ok()) << session.status().message();
  c->Cycle();
  auto r = alice.Call<proto::WhyReply>(proto::WhyRequest{*session});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->job.state, JobState::kPending) << r->job.reason;
  // Both training jobs (4 GPUs, 2 beyond the quota) are young; the first to end frees 2 GPUs, and
  // the session's project holds no firm job: it may start then, not once both have ended.
  EXPECT_EQ(r->estimated_start, c->Job(first).start_time + 3600) << r->estimate_note;
}

// ---- who may speak for a node ----

proto::Envelope RegisterOf(const std::string& node) {
  proto::RegisterRequest req;
  req.node = node;
  req.topology.gpus.resize(8);
  for (int g = 0; g < 8; ++g) req.topology.gpus[g].index = g;
  req.topology.numa.push_back({0, {0, 1, 2, 3}, 1024});
  req.topology.memory_mib = 1024;
  req.instance = 7;
  return proto::MakeEnvelope(req, 1);
}

Status ReplyTo(net::Dealer& conn) {
  auto reply = conn.Receive(0);
  if (!reply) return Unavailable("no reply");
  return net::ReplyStatus(*reply);
}

// `herd projects`: a department's row counts the jobs of every project below it (they showed 0/0).
TEST(ProjectsReportTest, DepartmentRowsCountTheJobsOfTheirProjects) {
  auto c = InProcessCluster::Started({R"(
default_project = "other"
[departments.research]
members = ["*"]
[departments.cv]
parent = "research"
[projects.vision]
department = "cv"
deserved = { gpu = 4 }
[projects.speech]
department = "research"
[projects.other]
members = ["*"]
)",
                                      {{"n1"}}});
  ASSERT_NE(c, nullptr);
  ASSERT_NE(c->SubmitRunning(kAlice, Spec(4, "train", "vision")), 0);  // every GPU of n1
  ASSERT_NE(c->Submit(kAlice, Spec(1, "train", "speech")), 0);
  ASSERT_NE(c->Submit(kBob, Spec(1, "train", "speech")), 0);
  ASSERT_NE(c->Submit(kBob, Spec(1, "train", "other")), 0);
  c->Cycle();
  auto reply = c->Client(kAlice).Call<proto::ProjectsReply>(proto::ProjectsRequest{});
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  std::map<std::string, std::pair<int64_t, int64_t>> rows;  // name -> running, pending
  for (const auto& p : reply->projects) rows[p.name] = {p.running_jobs, p.pending_jobs};
  EXPECT_EQ(rows["vision"], std::make_pair(int64_t{1}, int64_t{0}));
  EXPECT_EQ(rows["speech"], std::make_pair(int64_t{0}, int64_t{2}));
  EXPECT_EQ(rows["cv"], std::make_pair(int64_t{1}, int64_t{0}));
  EXPECT_EQ(rows["research"], std::make_pair(int64_t{1}, int64_t{2}));
  EXPECT_EQ(rows["other"], std::make_pair(int64_t{0}, int64_t{1}));
}

TEST(NodeIdentityTest, RegisterFromANonRootUserOrWithAnotherMessagesCredentialIsRefused) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  auto conn = c->network().Connect();

  ASSERT_TRUE(conn->Send(SignedAs(4242, RegisterOf("rogue"))).ok());
  c->Settle();
  Status s = ReplyTo(*conn);
  EXPECT_EQ(s.code(), Code::kDenied) << s.message();
  EXPECT_THAT(s.message(), HasSubstr("only root or herd-ctld's user may speak for a node"));

  ASSERT_TRUE(conn->Send(SignedForOtherMessage(0, RegisterOf("rogue"))).ok());
  c->Settle();
  s = ReplyTo(*conn);
  EXPECT_EQ(s.code(), Code::kDenied) << s.message();
  EXPECT_THAT(s.message(), HasSubstr("made for another message"));
  EXPECT_EQ(c->NodeState("rogue"), "");

  // A submit with another message's credential is refused the same way.
  proto::SubmitRequest submit{Spec(1), {}, {}};
  ASSERT_TRUE(conn->Send(SignedForOtherMessage(kAlice, proto::MakeEnvelope(submit, 2))).ok());
  c->Settle();
  s = ReplyTo(*conn);
  EXPECT_EQ(s.code(), Code::kDenied) << s.message();
}

// herd-ctld's handler table: each entry says who may send its message.
TEST(RequestTableTest, UnknownTypeAdminAndNodeMessagesAreRefusedToOthersBeforeTheirHandler) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  auto conn = c->network().Connect();

  proto::Envelope unknown = proto::MakeEnvelope(proto::NodesRequest{}, 1);
  unknown.type = "teleport";
  ASSERT_TRUE(conn->Send(SignedAs(kAlice, unknown)).ok());
  c->Settle();
  Status s = ReplyTo(*conn);
  EXPECT_EQ(s.code(), Code::kInvalid) << s.message();
  EXPECT_EQ(s.message(), "unknown request 'teleport': herd and herd-ctld versions may differ");

  // An admin request from a user is refused before its handler runs.
  proto::Envelope admin = proto::MakeEnvelope(proto::AdminRequest{"drain", {"n1"}}, 2);
  ASSERT_TRUE(conn->Send(SignedAs(kAlice, admin)).ok());
  c->Settle();
  s = ReplyTo(*conn);
  EXPECT_EQ(s.code(), Code::kDenied) << s.message();
  EXPECT_THAT(s.message(), HasSubstr("herd admin is for root and the admins"));
  EXPECT_EQ(c->NodeState("n1"), "UP");

  for (const proto::Envelope& node_message :
       {proto::MakeEnvelope(proto::Heartbeat{"n1", {}, {}, ""}, 3),
        proto::MakeEnvelope(proto::JobEvent{"n1", {}}, 4),
        proto::MakeEnvelope(proto::LogsData{1, {}, ""}, 5)}) {
    ASSERT_TRUE(conn->Send(SignedAs(kAlice, node_message)).ok());
    c->Settle();
    s = ReplyTo(*conn);
    EXPECT_EQ(s.code(), Code::kDenied) << node_message.type << ": " << s.message();
  }

  // Root's admin request goes through.
  ASSERT_TRUE(conn->Send(SignedAs(0, admin)).ok());
  c->Settle();
  auto reply = conn->Receive(0);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->type, proto::MessageName<proto::AdminReply>());
  EXPECT_EQ(c->NodeState("n1"), "DRAIN");
}

TEST(NodeIdentityTest, JobEventFromAnotherConnectionThanTheNodesIsRefused) {
  auto c = InProcessCluster::Started();
  ASSERT_NE(c, nullptr);
  const model::JobId id = c->SubmitRunning(kAlice, Spec(1));
  ASSERT_NE(id, 0);

  // Root, but not on the connection n1 registered from: it cannot end n1's job.
  auto conn = c->network().Connect();
  proto::JobEvent ev{"n1", {id, 0, "ENDED", 0, "", {}, 0, false}};
  ASSERT_TRUE(conn->Send(SignedAs(0, proto::MakeEnvelope(ev, 1))).ok());
  c->Settle();
  Status s = ReplyTo(*conn);
  EXPECT_EQ(s.code(), Code::kNotRegistered) << s.message();
  EXPECT_THAT(s.message(), HasSubstr("not registered with this herd-ctld on this connection"));
  EXPECT_EQ(c->Job(id).state, JobState::kRunning);
}

}  // namespace
}  // namespace herd::testing
