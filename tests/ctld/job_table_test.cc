// JobTable: the state machine of shared/DESIGN.md, and what each change of state keeps and drops.
#include "ctld/job_table.h"

#include <vector>

#include "gtest/gtest.h"

namespace herd::ctld {
namespace {

using model::JobState;

const std::vector<JobState> kAllStates = {
    JobState::kPending,   JobState::kStarting, JobState::kRunning, JobState::kSuspended,
    JobState::kPreempted, JobState::kCompleted, JobState::kFailed,  JobState::kCancelled,
    JobState::kTimeout,   JobState::kNodeFail};

// A table holding job 1 in `state` with every per-job fact set, as a job in that state may have
// them, plus job 2 that job 1 was preempted for (or preempted for it).
JobTable TableWith(JobState state) {
  JobTable t;
  model::Job j;
  j.id = 1;
  j.state = state;
  if (state == JobState::kPending) j.reason_code = "gpu_block";
  t.Add(j, 100);
  model::Job other;
  other.id = 2;
  t.Add(other, 100);
  if (state == JobState::kPending) {
    t.gated.insert(1);
    t.room_for[1] = {{"n1", {0}, 1000, {}, 0, ""}};  // room being made for it
  }
  if (model::HoldsResources(state)) {
    t.ending[1] = {JobState::kCancelled, "cancelled by alice"};
    t.ended_workers[1] = {0};
    t.idle_since[1] = 100;
    t.worker_usage[1][0] = {5, 6, 7};
  }
  t.preempted_for[1] = 2;  // 1 is a victim (stopping, or waiting for 2 to start)
  return t;
}

TEST(JobTableTest, TheStateMachineIsDesignsAndNothingLeavesAnEnd) {
  EXPECT_TRUE(JobTable::Allowed(JobState::kPending, JobState::kStarting));
  EXPECT_TRUE(JobTable::Allowed(JobState::kPending, JobState::kCancelled));
  EXPECT_TRUE(JobTable::Allowed(JobState::kStarting, JobState::kRunning));
  EXPECT_TRUE(JobTable::Allowed(JobState::kRunning, JobState::kSuspended));
  EXPECT_TRUE(JobTable::Allowed(JobState::kSuspended, JobState::kRunning));
  EXPECT_TRUE(JobTable::Allowed(JobState::kRunning, JobState::kPreempted));
  EXPECT_TRUE(JobTable::Allowed(JobState::kPreempted, JobState::kPending));
  EXPECT_TRUE(JobTable::Allowed(JobState::kRunning, JobState::kNodeFail));
  EXPECT_FALSE(JobTable::Allowed(JobState::kPending, JobState::kRunning));
  EXPECT_FALSE(JobTable::Allowed(JobState::kPending, JobState::kPreempted));
  EXPECT_FALSE(JobTable::Allowed(JobState::kStarting, JobState::kSuspended));
  EXPECT_FALSE(JobTable::Allowed(JobState::kPreempted, JobState::kPreempted));
  for (JobState from : kAllStates) {
    for (JobState to : kAllStates) {
      if (model::IsTerminal(from)) {
        EXPECT_FALSE(JobTable::Allowed(from, to))
            << model::JobStateName(from) << " -> " << model::JobStateName(to);
      }
    }
  }
}

// Over every allowed change: an end keeps no fact of the job; a requeue keeps only its clock and
// the eviction it waits on; each state keeps exactly what belongs to it.
TEST(JobTableTest, EveryChangeDropsWhatBelongsToTheStateLeftAndAnEndKeepsNothing) {
  for (JobState from : kAllStates) {
    for (JobState to : kAllStates) {
      if (!JobTable::Allowed(from, to)) continue;
      SCOPED_TRACE(std::string(model::JobStateName(from)) + " -> " + model::JobStateName(to));
      JobTable t = TableWith(from);
      model::Job& job = t.find(1)->second;
      const bool stop_dropped = t.Transition(job, to, 200);
      EXPECT_EQ(job.state, to);
      const bool run = model::HoldsResources(from) && model::HoldsResources(to);
      EXPECT_EQ(stop_dropped, model::HoldsResources(from) && !run);
      EXPECT_EQ(t.ending.count(1), run ? 1u : 0u);
      EXPECT_EQ(t.ended_workers.count(1), run ? 1u : 0u);
      EXPECT_EQ(t.worker_usage.count(1), run ? 1u : 0u);
      EXPECT_EQ(t.idle_since.count(1), run ? 1u : 0u);
      if (to == JobState::kPending) {
        EXPECT_EQ(t.pending_since.at(1), 200);
        EXPECT_EQ(job.waits_for, model::WaitsFor::kScheduler);
        EXPECT_EQ(job.reason_code, "scheduler");
      } else {
        EXPECT_EQ(job.waits_for, model::WaitsFor::kNothing);
        EXPECT_EQ(job.reason_code, "");
      }
      if (from == JobState::kPending) {
        EXPECT_EQ(t.pending_since.count(1), 0u);
        EXPECT_EQ(t.gated.count(1), 0u);
      }
      if (model::IsTerminal(to)) {
        EXPECT_FALSE(t.HasFacts(1));
      } else {
        EXPECT_EQ(t.preempted_for.count(1), 1u);
      }
      // The other job is untouched.
      EXPECT_EQ(t.pending_since.at(2), 100);
      EXPECT_EQ(t.find(2)->second.state, JobState::kPending);
    }
  }
}

TEST(JobTableTest, AddedPendingJobStartsItsClockAndAFinishedOneKeepsOnlyItsRecord) {
  JobTable t;
  model::Job pending;
  pending.id = 7;
  t.Add(pending, 42);
  EXPECT_EQ(t.pending_since.at(7), 42);
  model::Job done;
  done.id = 8;
  done.state = JobState::kCompleted;
  t.Add(done, 42);
  EXPECT_FALSE(t.HasFacts(8));
  EXPECT_EQ(t.size(), 2u);
}

// A queued job costs memory for its request alone: the store keeps its environment and script.
TEST(JobTableTest, AddedJobKeepsNeitherItsEnvironmentNorItsScript) {
  JobTable t;
  model::Job job;
  job.id = 7;
  job.spec.argv = {"train.sh", "--lr=0.1"};
  job.spec.env = {{"PATH", "/usr/bin"}, {"WANDB_PROJECT", "vision"}};
  job.spec.script = std::string(4096, '#');
  const model::Job& kept = t.Add(job, 42);
  EXPECT_TRUE(kept.spec.env.empty());
  EXPECT_TRUE(kept.spec.script.empty());
  EXPECT_EQ(kept.spec.script.capacity(), std::string().capacity());
  EXPECT_EQ(kept.spec.argv, job.spec.argv);
}

}  // namespace
}  // namespace herd::ctld
