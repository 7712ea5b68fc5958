// Arrays as one thing (dependencies on a whole array or on ARRAY_INDEX, members by array) and
// the verbs a batch user reaches for: hold/release, requeue, update, cancel by filters, drain
// with a reason. herd-ctld and herd-noded in one process (InProcessCluster).
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "noded/agent.h"
#include "tests/support/in_process_cluster.h"

namespace herd::testing {
namespace {

using model::JobState;
using ::testing::HasSubstr;

constexpr uint32_t kAlice = 1000;
constexpr uint32_t kBob = 1001;
constexpr uint32_t kAdmin = 1002;  // "user1002", an admin of herd.toml

constexpr char kConfig[] = R"(
admins = ["user1002"]
default_project = "a"

[projects.a]
members = ["*"]

[projects.b]
members = ["user1001"]

[classes.train]
max_time = "1h"
min_runtime = 0
)";

std::unique_ptr<InProcessCluster> Cluster() {
  InProcessCluster::Options o;
  o.toml = kConfig;
  return InProcessCluster::Started(o);
}

Result<proto::JobActionReply> Act(InProcessCluster& c, uint32_t uid, proto::JobActionRequest r) {
  return c.Client(uid).Call<proto::JobActionReply>(r);
}

// What job `id` waits for, as herd why says ("hold", "scheduler", ...).
std::string WaitsFor(InProcessCluster& c, model::JobId id) {
  auto why = c.Client(0).Call<proto::WhyReply>(proto::WhyRequest{id});
  EXPECT_TRUE(why.ok()) << why.status().message();
  return why.ok() ? why->waits_for : "";
}

TEST(ArrayDependencyTest, AfterOkOnAnArrayWaitsForEveryMemberAndNeverRunsWhenOneFails) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const model::JobId array = SubmitArray(*c, kAlice, {0, 1, 2});
  ASSERT_NE(array, 0);
  const model::JobId dep = SubmitAfter(*c, kAlice, std::to_string(array) + ":ok");
  c->Cycle();
  ASSERT_EQ(c->Job(array + 2).state, JobState::kRunning);

  // The array's first member completing is not the array completing.
  ASSERT_TRUE(Ends(*c, array, 0));
  c->Cycle();
  model::Job job = c->Job(dep);
  EXPECT_EQ(job.state, JobState::kPending);
  EXPECT_EQ(job.reason, "waiting for array " + std::to_string(array) + " to complete");

  // One member failing means the array never completes: the dependent is cancelled at once.
  ASSERT_TRUE(Ends(*c, array + 1, 3));
  c->Cycle();
  job = c->Job(dep);
  EXPECT_EQ(job.state, JobState::kCancelled);
  EXPECT_EQ(job.reason, "dependency array " + std::to_string(array) + " (its job " +
                            std::to_string(array) + "_1) ended FAILED");
}

TEST(ArrayDependencyTest, AfterOkOnAnArrayRunsOnceAllCompleted) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const model::JobId array = SubmitArray(*c, kAlice, {0, 1});
  const model::JobId dep = SubmitAfter(*c, kAlice, std::to_string(array));
  c->Cycle();
  ASSERT_TRUE(Ends(*c, array, 0));
  c->Cycle();
  EXPECT_EQ(c->Job(dep).state, JobState::kPending);
  ASSERT_TRUE(Ends(*c, array + 1, 0));
  c->Cycle();
  EXPECT_EQ(c->Job(dep).state, JobState::kRunning) << c->Job(dep).reason;
}

TEST(ArrayDependencyTest, AfterAnyWaitsForAllAndAfterFailRunsAsSoonAsOneFailed) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const model::JobId array = SubmitArray(*c, kAlice, {0, 1, 2});
  const model::JobId any = SubmitAfter(*c, kAlice, std::to_string(array) + ":any");
  const model::JobId fail = SubmitAfter(*c, kAlice, std::to_string(array) + ":fail");
  c->Cycle();
  ASSERT_TRUE(Ends(*c, array, 0));
  c->Cycle();
  EXPECT_EQ(c->Job(any).state, JobState::kPending);
  EXPECT_EQ(c->Job(fail).state, JobState::kPending);
  ASSERT_TRUE(Ends(*c, array + 1, 2));
  c->Cycle();
  EXPECT_EQ(c->Job(any).state, JobState::kPending) << "member 2 still runs";
  EXPECT_EQ(c->Job(fail).state, JobState::kRunning) << c->Job(fail).reason;
  ASSERT_TRUE(Ends(*c, array + 2, 0));
  c->Cycle();
  EXPECT_EQ(c->Job(any).state, JobState::kRunning) << c->Job(any).reason;
}

TEST(ArrayDependencyTest, AfterFailOnAnArrayThatAllCompletedNeverRuns) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const model::JobId array = SubmitArray(*c, kAlice, {0, 1});
  const model::JobId fail = SubmitAfter(*c, kAlice, std::to_string(array) + ":fail");
  c->Cycle();
  ASSERT_TRUE(Ends(*c, array, 0));
  ASSERT_TRUE(Ends(*c, array + 1, 0));
  c->Cycle();
  model::Job job = c->Job(fail);
  EXPECT_EQ(job.state, JobState::kCancelled);
  EXPECT_THAT(job.reason, HasSubstr("with every job COMPLETED"));
}

TEST(ArrayDependencyTest, IdIndexNamesOneMemberAndAnUnknownIndexIsRefused) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const model::JobId array = SubmitArray(*c, kAlice, {4, 7});
  model::JobSpec bad = Spec(0);
  bad.after = {std::to_string(array) + "_5"};
  auto refused = c->Client(kAlice).Submit(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr(std::to_string(array) + "_5 not found"));

  // ARRAY_7 is the second job: it alone counts. The first member, whose id is the array's, is
  // ARRAY_4 when named alone.
  const model::JobId dep = SubmitAfter(*c, kAlice, std::to_string(array) + "_7");
  const model::JobId head = SubmitAfter(*c, kAlice, std::to_string(array) + "_4:any");
  c->Cycle();
  ASSERT_TRUE(Ends(*c, array + 1, 0));
  c->Cycle();
  EXPECT_EQ(c->Job(dep).state, JobState::kRunning) << c->Job(dep).reason;
  EXPECT_EQ(c->Job(dep).spec.after, std::vector<std::string>{std::to_string(array) + "_7:ok"});
  EXPECT_EQ(c->Job(head).state, JobState::kPending);
  EXPECT_EQ(c->Job(head).reason, "waiting for job " + std::to_string(array) + "_4 to end");

  // herd resolves ARRAY_INDEX with a listing of the array's members.
  proto::JobsRequest members;
  members.array = array;
  members.all = true;
  auto listed = c->Client(kBob).Call<proto::JobsReply>(members);
  ASSERT_TRUE(listed.ok()) << listed.status().message();
  ASSERT_EQ(listed->jobs.size(), 2u);
  EXPECT_EQ(model::JobRefText(listed->jobs[1]), std::to_string(array) + "_7");
}

TEST(ArrayActionTest, AMemberNamedAloneIsActedOnAloneEvenTheArraysFirst) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const model::JobId array = SubmitArray(*c, kAlice, {0, 1, 2}, /*gpus=*/4);  // one at a time
  c->Cycle();
  proto::JobActionRequest cancel{"cancel", {}, {array + 2}};
  auto one = Act(*c, kAlice, cancel);
  ASSERT_TRUE(one.ok()) << one.status().message();
  ASSERT_EQ(one->results.size(), 1u);
  EXPECT_TRUE(one->results[0].ok) << one->results[0].message;
  EXPECT_EQ(one->results[0].array_jobs, 0);
  EXPECT_EQ(c->Job(array + 2).state, JobState::kCancelled);
  EXPECT_EQ(c->Job(array + 1).state, JobState::kPending);

  // The array's id holds every member that can be held: the one still pending.
  auto held = c->Client(kAlice).Action("hold", array);
  ASSERT_TRUE(held.ok()) << held.status().message();
  EXPECT_TRUE(held->ok) << held->message;
  EXPECT_EQ(held->array_jobs, 1);
  EXPECT_EQ(WaitsFor(*c, array + 1), "hold");

  // The array's own id as a member: the running first member only.
  cancel.members = {array};
  ASSERT_TRUE(Act(*c, kAlice, cancel).ok());
  EXPECT_EQ(c->Job(array).state, JobState::kCancelled);
  EXPECT_EQ(c->Job(array + 1).state, JobState::kPending);
}

TEST(HoldTest, AUsersHoldTheyReleaseAnAdminsHoldOnlyAnAdminAndBothSurviveARestart) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const model::JobId running = c->SubmitRunning(kBob, Spec(4));  // every GPU: the rest wait
  ASSERT_NE(running, 0);
  const model::JobId mine = c->Submit(kAlice, Spec(1));
  const model::JobId theirs = c->Submit(kAlice, Spec(1));
  c->Cycle();

  auto r = c->Client(kAlice).Action("hold", mine);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->ok) << r->message;
  EXPECT_EQ(c->Job(mine).reason, "held by user: herd release " + std::to_string(mine));
  EXPECT_EQ(WaitsFor(*c, mine), "hold");
  r = c->Client(kBob).Action("hold", mine);
  EXPECT_THAT(r->message, HasSubstr("permission denied"));

  r = c->Client(kAdmin).Action("hold", theirs);
  EXPECT_TRUE(r->ok) << r->message;
  EXPECT_THAT(c->Job(theirs).reason, HasSubstr("held by admin"));

  ASSERT_TRUE(c->RestartController().ok());
  c->Advance(c->config().scheduler.heartbeat_interval_ms);  // the node registers again
  c->Cycle();
  EXPECT_EQ(c->Job(mine).state, JobState::kPending);
  EXPECT_EQ(c->Job(mine).reason, "held by user: herd release " + std::to_string(mine));
  EXPECT_THAT(c->Job(theirs).reason, HasSubstr("held by admin"));

  r = c->Client(kAlice).Action("release", theirs);
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->message, "held by an admin: only an admin can release it");
  r = c->Client(kAlice).Action("release", mine);
  EXPECT_TRUE(r->ok) << r->message;
  r = c->Client(kAdmin).Action("release", theirs);
  EXPECT_TRUE(r->ok) << r->message;
  EXPECT_NE(WaitsFor(*c, theirs), "hold");

  // Only a pending job can be held.
  r = c->Client(kBob).Action("hold", running);
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->message, "cannot hold a RUNNING job: only a pending job can be held");
}

TEST(RequeueTest, ARunningJobGoesBackToTheQueueUnderItsIdAndRunsAgain) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const model::JobId id = c->SubmitRunning(kAlice, Spec(1));
  ASSERT_NE(id, 0);
  auto r = c->Client(kBob).Action("requeue", id);
  EXPECT_THAT(r->message, HasSubstr("permission denied"));

  r = c->Client(kAlice).Action("requeue", id);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->ok) << r->message;
  // It obeyed the kill at once: back in the queue, then started again as its next run.
  model::Job job = c->Job(id);
  EXPECT_EQ(job.restart_count, 1);
  EXPECT_EQ(job.preemptions, 0);
  c->Cycle();
  EXPECT_EQ(c->Job(id).state, JobState::kRunning) << c->Job(id).reason;
  EXPECT_EQ(c->jobs("n1").Running(), std::vector<std::string>{noded::JobKey(id, 1, 0)});

  const model::JobId pending = c->Submit(kAlice, Spec(4));  // more than is free
  r = c->Client(kAlice).Action("requeue", pending);
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->message, "is pending: it is already in the queue");
}

TEST(UpdateTest, OwnersChangePendingJobsWithinWhatSubmitAllowsAdminsAlsoRunningTimeLimits) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const model::JobId running = c->SubmitRunning(kAlice, Spec(4));
  const model::JobId id = c->Submit(kAlice, Spec(1));
  auto update = [&](uint32_t uid, model::JobId job, proto::UpdateJobRequest r) {
    r.ids = {job};
    auto reply = c->Client(uid).Call<proto::JobActionReply>(r);
    EXPECT_TRUE(reply.ok()) << reply.status().message();
    return reply.ok() && reply->results.size() == 1 ? reply->results[0] : proto::JobActionResult{};
  };
  proto::JobActionResult r = update(kAlice, id, {.time_limit_s = 1800, .name = "renamed"});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(c->Job(id).spec.time_limit_s, 1800);
  EXPECT_EQ(c->Job(id).spec.name, "renamed");

  r = update(kAlice, id, {.time_limit_s = 7200});
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.message, HasSubstr("allows at most 1h"));
  r = update(kAlice, id, {.project = "b"});
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.message, HasSubstr("not a member of project b"));
  r = update(kAlice, id, {.project = "nope"});
  EXPECT_THAT(r.message, HasSubstr("unknown project"));
  r = update(kBob, id, {.name = "mine"});
  EXPECT_THAT(r.message, HasSubstr("permission denied"));
  EXPECT_EQ(c->Job(id).spec.project, "a");

  r = update(kAlice, id, {.hold = true});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(WaitsFor(*c, id), "hold");

  r = update(kAlice, running, {.time_limit_s = 600});
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.message, HasSubstr("only a pending job"));
  r = update(kAdmin, running, {.time_limit_s = 600});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(c->Job(running).spec.time_limit_s, 600);
  r = update(kAdmin, running, {.name = "x"});
  EXPECT_FALSE(r.ok);

  ASSERT_TRUE(c->RestartController().ok());
  c->Settle();
  EXPECT_EQ(c->Job(id).spec.name, "renamed");
  EXPECT_EQ(c->Job(running).spec.time_limit_s, 600);
}

TEST(CancelFilterTest, UsersCancelTheirOwnMatchingJobsAdminsAnyonesAndOthersAreRefused) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const model::JobId running = c->SubmitRunning(kAlice, Spec(4));
  model::JobSpec named = Spec(1);
  named.name = "sweep";
  const model::JobId a1 = c->Submit(kAlice, named);
  const model::JobId a2 = c->Submit(kAlice, Spec(1));
  const model::JobId b1 = c->Submit(kBob, named);
  c->Cycle();

  auto refused = Act(*c, kAlice, {.action = "cancel", .user = "user1001"});
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("only your own jobs"));
  EXPECT_FALSE(Act(*c, kAlice, {.action = "cancel"}).ok());

  auto mine = Act(*c, kAlice, {.action = "cancel", .states = {"PENDING"}, .name = "sweep"});
  ASSERT_TRUE(mine.ok()) << mine.status().message();
  ASSERT_EQ(mine->results.size(), 1u);
  EXPECT_EQ(mine->results[0].id, a1);
  EXPECT_EQ(c->Job(a1).state, JobState::kCancelled);
  EXPECT_EQ(c->Job(a2).state, JobState::kPending);
  EXPECT_EQ(c->Job(b1).state, JobState::kPending);
  EXPECT_EQ(c->Job(running).state, JobState::kRunning);

  auto theirs = Act(*c, kAdmin, {.action = "cancel", .user = "user1001"});
  ASSERT_TRUE(theirs.ok()) << theirs.status().message();
  ASSERT_EQ(theirs->results.size(), 1u);
  EXPECT_EQ(c->Job(b1).state, JobState::kCancelled);

  auto project = Act(*c, kAlice, {.action = "cancel", .project = "a"});
  ASSERT_TRUE(project.ok());
  EXPECT_EQ(project->results.size(), 2u);
  EXPECT_EQ(c->Job(running).state, JobState::kCancelled);
}

TEST(DrainTest, TheReasonIsShownKeptAcrossARestartAndClearedByUndrain) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  auto admin = [&](proto::AdminRequest r) {
    auto reply = c->Client(0).Call<proto::AdminReply>(r);
    EXPECT_TRUE(reply.ok()) << reply.status().message();
  };
  auto reason = [&] {
    auto reply = c->Client(kAlice).Call<proto::NodesReply>(proto::NodesRequest{});
    return reply.ok() && reply->nodes.size() == 1 ? reply->nodes[0].reason : "?";
  };
  admin({"drain", {"n1", "bad fan on GPU 3"}});
  EXPECT_EQ(c->NodeState("n1"), "DRAIN");
  EXPECT_EQ(reason(), "bad fan on GPU 3");
  ASSERT_TRUE(c->RestartController().ok());
  c->Advance(c->config().scheduler.heartbeat_interval_ms);  // the node registers again
  EXPECT_EQ(c->NodeState("n1"), "DRAIN");
  EXPECT_EQ(reason(), "bad fan on GPU 3");
  admin({"undrain", {"n1"}});
  EXPECT_EQ(reason(), "");
  admin({"drain", {"n1"}});
  EXPECT_EQ(reason(), "drained by an admin");
}

}  // namespace
}  // namespace herd::testing
