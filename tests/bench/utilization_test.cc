#include <set>
#include <utility>

#include "bench/sim/team_workload.h"
#include "bench/sim/utilization_sim.h"
#include "gtest/gtest.h"

namespace herd::sim {
namespace {

TeamParams Short() {
  TeamParams p;
  p.days = 2;
  p.load = 0.5;
  return p;
}

TEST(TeamWorkloadTest, SameSeedGivesTheSameMonth) {
  TeamParams p;
  Result<TeamWorkload> a = MakeTeamWorkload(p), b = MakeTeamWorkload(p);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->jobs.size(), b->jobs.size());
  for (size_t i = 0; i < a->jobs.size(); ++i) {
    const TeamJob &x = a->jobs[i], &y = b->jobs[i];
    ASSERT_EQ(std::tie(x.id, x.user, x.kind, x.submit, x.gpus, x.work_s, x.busy, x.forgotten, x.sweep),
              std::tie(y.id, y.user, y.kind, y.submit, y.gpus, y.work_s, y.busy, y.forgotten, y.sweep));
    ASSERT_EQ(x.bursts.size(), y.bursts.size());
  }
  p.seed = 2;
  Result<TeamWorkload> c = MakeTeamWorkload(p);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->jobs.size(), c->jobs.size());
}

TEST(TeamWorkloadTest, MonthHasTheTeamClusterAndJobShapesAsked) {
  TeamParams p;
  Result<TeamWorkload> w = MakeTeamWorkload(p);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->Gpus(), 120);
  EXPECT_EQ(w->researchers.size(), 30u);
  int64_t deserved = 0;
  for (const Project& pr : w->projects) deserved += pr.deserved_gpus;
  EXPECT_EQ(deserved, w->Gpus());
  // Static shares: every GPU belongs to exactly one researcher.
  std::set<std::pair<int, int>> owned;
  for (const Researcher& r : w->researchers) {
    EXPECT_EQ(r.gpus, 4);
    for (int g = r.first_gpu; g < r.first_gpu + r.gpus; ++g) EXPECT_TRUE(owned.insert({r.node, g}).second);
  }
  EXPECT_EQ(static_cast<int64_t>(owned.size()), w->Gpus());
  int kinds[kJobKinds] = {};
  int64_t last = 0;
  for (const TeamJob& j : w->jobs) {
    kinds[static_cast<int>(j.kind)]++;
    EXPECT_GE(j.submit, last);
    last = j.submit;
    EXPECT_LT(j.submit, w->DurationS());
    EXPECT_TRUE(j.gpus == 1 || j.gpus == 2 || j.gpus == 4);
    EXPECT_GT(j.work_s, 0);
    if (j.kind == JobKind::kSession) {
      EXPECT_LE(j.work_s, 12 * 3600);
      int64_t at = -1;
      for (const Burst& b : j.bursts) {
        EXPECT_GT(b.begin, at);
        EXPECT_LT(b.begin, b.end);
        EXPECT_LE(b.end, j.work_s);
        at = b.end;
      }
    }
    if (j.kind == JobKind::kSweep) {
      EXPECT_EQ(j.gpus, 1);
    }
  }
  for (int k = 0; k < kJobKinds; ++k) EXPECT_GT(kinds[k], 100) << KindName(static_cast<JobKind>(k));
}

TEST(TeamWorkloadTest, RejectsATeamTheClusterCannotBeSharedAmong) {
  TeamParams p;
  p.projects = {{"vision", 7}};
  Result<TeamWorkload> w = MakeTeamWorkload(p);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("equal static shares"), std::string::npos) << w.status().message();
}

TEST(UtilizationSimTest, StaticRunsJobsOnlyOnTheirResearchersGpus) {
  Result<TeamWorkload> w = MakeTeamWorkload(Short());
  ASSERT_TRUE(w.ok());
  UtilizationOptions o;
  o.regime = Regime::kStatic;
  int64_t starts = 0;
  o.on_start = [&](const TeamJob& j, const model::WorkerPlacement& p) {
    const Researcher& r = w->researchers[j.user];
    EXPECT_EQ(p.node, w->nodes[r.node].name) << r.name;
    for (int g : p.gpus) {
      EXPECT_GE(g, r.first_gpu);
      EXPECT_LT(g, r.first_gpu + r.gpus);
    }
    ++starts;
  };
  Result<UtilizationResult> r = SimulateTeam(*w, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GT(starts, 100);
  EXPECT_EQ(r->preemptions, 0);
  EXPECT_EQ(r->idle_terminations, 0);
}

TEST(UtilizationSimTest, HerdStaysWithinTheClusterAndStopsIdleSessions) {
  Result<TeamWorkload> w = MakeTeamWorkload(Short());
  ASSERT_TRUE(w.ok());
  UtilizationOptions o;
  o.regime = Regime::kHerd;
  int64_t outside_own_block = 0;
  o.on_start = [&](const TeamJob& j, const model::WorkerPlacement& p) {
    const Researcher& r = w->researchers[j.user];
    for (int g : p.gpus) {
      outside_own_block += p.node != w->nodes[r.node].name || g < r.first_gpu || g >= r.first_gpu + r.gpus;
    }
  };
  Result<UtilizationResult> r = SimulateTeam(*w, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->hours.size(), 48u);
  for (const HourSample& h : r->hours) {
    EXPECT_LE(h.allocated_pct, 100 + 1e-9);
    EXPECT_LE(h.utilized_pct, h.allocated_pct + 1e-9);
  }
  EXPECT_GT(r->idle_terminations, 0);
  EXPECT_GT(r->kinds[static_cast<int>(JobKind::kTrain)].completed, 0);
  // The cluster is shared: researchers' jobs run beyond the GPUs static allocation would give them.
  EXPECT_GT(outside_own_block, 0);
}

}  // namespace
}  // namespace herd::sim
