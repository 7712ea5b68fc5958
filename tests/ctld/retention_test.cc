// Jobs beyond memory: finished jobs leave herd-ctld's memory after [controller]
// min_job_age and every request still answers for them from the store;
// job_retention deletes old records while herd usage keeps their totals; a
// restart loads only the jobs in flight. herd-ctld and herd-noded in one
// process (InProcessCluster).
#include <algorithm>

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

constexpr char kConfig[] = R"(
[controller]
min_job_age = "1m"
job_retention = "1d"

[classes.train]
min_runtime = 0
)";

std::unique_ptr<InProcessCluster> Cluster() {
  InProcessCluster::Options o;
  o.toml = kConfig;
  return InProcessCluster::Started(o);
}

// The jobs `uid` lists with `request` (every page).
std::vector<model::Job> List(InProcessCluster &c, uint32_t uid, proto::JobsRequest request) {
  std::vector<model::Job> all;
  for (;;) {
    auto reply = c.Client(uid).Call<proto::JobsReply>(request);
    EXPECT_TRUE(reply.ok()) << reply.status().message();
    if (!reply.ok()) return all;
    for (auto &j : reply->jobs) all.push_back(std::move(j));
    if (!reply->more || reply->jobs.empty()) return all;
    request.after_id = all.back().id;
  }
}

std::vector<model::JobId> Ids(const std::vector<model::Job> &jobs) {
  std::vector<model::JobId> ids;
  for (const auto &j : jobs) ids.push_back(j.id);
  return ids;
}

TEST(MinJobAgeTest, FinishedJobsLeaveMemoryAndEveryRequestStillAnswersForThem) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const model::JobId single = c->SubmitRunning(kAlice, Spec(1));
  const model::JobId array = SubmitArray(*c, kAlice, {0, 1, 2});
  c->Cycle();
  ASSERT_TRUE(Ends(*c, single, 0));
  for (model::JobId m = array; m < array + 3; ++m) ASSERT_TRUE(Ends(*c, m, m == array + 1 ? 3 : 0));
  EXPECT_EQ(c->controller().jobs_in_memory(), 4u) << "ended within min_job_age: still in memory";

  c->Advance(61'000);
  EXPECT_EQ(c->controller().jobs_in_memory(), 0u);

  // herd show / herd wait: by id.
  auto shown = c->Client(kAlice).Show(single);
  ASSERT_TRUE(shown.ok()) << shown.status().message();
  EXPECT_EQ(shown->state, JobState::kCompleted);
  EXPECT_EQ(c->Client(kAlice).Show(array + 1)->state, JobState::kFailed);
  // herd jobs --all, and herd wait / show of an array (its members by array).
  proto::JobsRequest all;
  all.all = true;
  EXPECT_THAT(Ids(List(*c, kAlice, all)),
              ::testing::ElementsAre(single, array, array + 1, array + 2));
  proto::JobsRequest members;
  members.array = array;
  members.all = true;
  members.brief = true;
  EXPECT_THAT(Ids(List(*c, kAlice, members)), ::testing::ElementsAre(array, array + 1, array + 2));
  proto::JobsRequest failed;
  failed.states = {"FAILED"};
  EXPECT_THAT(Ids(List(*c, kAlice, failed)), ::testing::ElementsAre(array + 1));
  // Without --all, finished jobs are not listed, and the store is not asked.
  EXPECT_TRUE(List(*c, kAlice, proto::JobsRequest{}).empty());
  // herd why, herd cancel of a finished job, herd logs (asked of the node,
  // which no longer has the job: herd-ctld found it).
  auto why = c->Client(kAlice).Call<proto::WhyReply>(proto::WhyRequest{single});
  ASSERT_TRUE(why.ok()) << why.status().message();
  EXPECT_EQ(why->job.state, JobState::kCompleted);
  auto cancel = c->Client(kAlice).Action("cancel", single);
  ASSERT_TRUE(cancel.ok());
  EXPECT_FALSE(cancel->ok);
  EXPECT_THAT(cancel->message, ::testing::Not(HasSubstr("not found")));
  proto::LogsRequest logs_of;
  logs_of.id = single;
  auto logs = c->Client(kAlice).Call<proto::LogsReply>(logs_of);
  EXPECT_THAT(logs.status().message(), HasSubstr("on this node"));
  // Another user still sees only the public facts of a job read from the store.
  auto theirs = c->Client(kBob).Show(single);
  ASSERT_TRUE(theirs.ok());
  EXPECT_TRUE(theirs->spec.env.empty());

  // --after on a job and on an array long finished, and on one member of it.
  const model::JobId after_job = SubmitAfter(*c, kAlice, std::to_string(single) + ":ok");
  const model::JobId after_array = SubmitAfter(*c, kAlice, std::to_string(array) + ":any");
  const model::JobId after_member = SubmitAfter(*c, kAlice, std::to_string(array) + "_1:ok");
  c->Cycle();
  EXPECT_EQ(c->Job(after_job).state, JobState::kRunning) << c->Job(after_job).reason;
  EXPECT_EQ(c->Job(after_array).state, JobState::kRunning) << c->Job(after_array).reason;
  model::Job never = c->Job(after_member);
  EXPECT_EQ(never.state, JobState::kCancelled);
  EXPECT_EQ(never.reason, "dependency job " + std::to_string(array) + "_1 ended FAILED");
  EXPECT_EQ(c->controller().jobs_in_memory(), 3u);
}

TEST(MinJobAgeTest, AnArrayLeavesMemoryOnlyWhole) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const model::JobId array = SubmitArray(*c, kAlice, {0, 1});
  c->Cycle();
  ASSERT_TRUE(Ends(*c, array, 0));
  c->Advance(61'000);
  EXPECT_EQ(c->controller().jobs_in_memory(), 2u) << "a member runs: the array stays whole";
  ASSERT_TRUE(Ends(*c, array + 1, 0));
  c->Advance(30'000);
  EXPECT_EQ(c->controller().jobs_in_memory(), 2u);
  c->Advance(31'000);
  EXPECT_EQ(c->controller().jobs_in_memory(), 0u);
}

TEST(MinJobAgeTest, RestartLoadsOnlyUnfinishedAndRecentlyFinishedJobs) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const model::JobId old_job = c->SubmitRunning(kAlice, Spec(1));
  ASSERT_TRUE(Ends(*c, old_job, 0));
  c->Advance(61'000);
  const model::JobId recent = c->SubmitRunning(kAlice, Spec(1));
  ASSERT_TRUE(Ends(*c, recent, 0));
  const model::JobId running = c->SubmitRunning(kAlice, Spec(1));
  EXPECT_EQ(c->controller().jobs_in_memory(), 2u);

  ASSERT_TRUE(c->RestartController().ok());
  EXPECT_EQ(c->controller().jobs_in_memory(), 2u) << "the job older than min_job_age was loaded";
  c->Advance(c->config().scheduler.heartbeat_interval_ms);
  EXPECT_EQ(c->Job(running).state, JobState::kRunning);
  EXPECT_EQ(c->Job(old_job).state, JobState::kCompleted);
  EXPECT_EQ(c->Job(recent).state, JobState::kCompleted);
}

// The usage rows of `period`, by group.
std::map<std::string, proto::UsageRow> Usage(InProcessCluster &c, int64_t since, int64_t until,
                                             const std::string &by) {
  auto reply = c.Client(0).Call<proto::UsageReply>(proto::UsageRequest{since, until, by});
  EXPECT_TRUE(reply.ok()) << reply.status().message();
  std::map<std::string, proto::UsageRow> rows;
  if (reply.ok()) {
    for (const auto &r : reply->rows) rows[r.group] = r;
  }
  return rows;
}

TEST(JobRetentionTest, OldRecordsArePrunedAndUsageKeepsItsTotals) {
  auto c = Cluster();
  ASSERT_NE(c, nullptr);
  const int64_t day = c->clock().NowSeconds() / 86400 * 86400;
  std::vector<model::JobId> ids;
  for (int i = 0; i < 6; ++i) {
    const uint32_t uid = i % 2 ? kBob : kAlice;
    model::JobSpec spec = Spec(1 + i % 3);
    const model::JobId id = c->SubmitRunning(uid, spec);
    ASSERT_NE(id, 0);
    c->Advance(1'000 * (10 + i));
    ASSERT_TRUE(Ends(*c, id, i == 4 ? 1 : 0));
    ids.push_back(id);
  }
  const int64_t since = day - 86400, until = day + 3 * 86400;
  const auto by_user = Usage(*c, since, until, "user");
  const auto by_project = Usage(*c, since, until, "project");
  const auto by_type = Usage(*c, since, until, "type");
  ASSERT_EQ(by_user.size(), 2u);
  // Every job ran on the cluster's one GPU type: one row with everyone's GPU time.
  ASSERT_EQ(by_type.size(), 1u);
  EXPECT_NE(by_type.begin()->first, "-");
  int64_t users_total = 0;
  for (const auto &[user, row] : by_user) users_total += row.gpu_milli_seconds;
  EXPECT_EQ(by_type.begin()->second.gpu_milli_seconds, users_total);
  c->Advance(61'000);
  ASSERT_EQ(c->controller().jobs_in_memory(), 0u);
  EXPECT_EQ(Usage(*c, since, until, "user"), by_user) << "read from the store, as in memory";

  // Two days on (herd-ctld down meanwhile): every record is past job_retention.
  c->StopController();
  c->clock().Advance(2 * 86'400'000);
  ASSERT_TRUE(c->StartController().ok());
  EXPECT_EQ(c->controller().jobs_in_memory(), 0u);
  c->Advance(3'000);  // a few cycles, a pruning batch each
  for (model::JobId id : ids) {
    auto shown = c->Client(kAlice).Show(id);
    EXPECT_FALSE(shown.ok()) << "job " << id << " was not pruned";
    EXPECT_THAT(shown.status().message(), HasSubstr("not found"));
  }
  // GPU time, jobs, preemptions and utilization are kept; wait percentiles came
  // from records.
  for (const auto &[by, before] : {std::pair{"user", by_user}, std::pair{"project", by_project},
                                   std::pair{"type", by_type}}) {
    const auto after = Usage(*c, since, until, by);
    ASSERT_EQ(after.size(), before.size()) << by;
    for (const auto &[group, row] : before) {
      ASSERT_TRUE(after.count(group)) << by << " " << group;
      const proto::UsageRow &kept = after.at(group);
      EXPECT_EQ(kept.gpu_milli_seconds, row.gpu_milli_seconds) << by << " " << group;
      EXPECT_EQ(kept.jobs, row.jobs) << by << " " << group;
      EXPECT_EQ(kept.preemptions, row.preemptions) << by << " " << group;
      EXPECT_EQ(kept.gpu_util_pct, row.gpu_util_pct) << by << " " << group;
    }
  }
  EXPECT_GT(users_total, 0);
}

}  // namespace
}  // namespace herd::testing
