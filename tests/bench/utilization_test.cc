#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

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

TeamParams Closed() {
  TeamParams p = Short();
  p.days = 3;
  p.demand = Demand::kClosed;
  return p;
}

TEST(ClosedDemandTest, SameSeedGivesTheSameExperimentsAndTheOpenModelsSessions) {
  Result<TeamWorkload> a = MakeTeamWorkload(Closed()), b = MakeTeamWorkload(Closed());
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().message();
  ASSERT_EQ(a->experiments.size(), a->researchers.size());
  ASSERT_EQ(a->experiments.size(), b->experiments.size());
  int64_t experiment = 0;
  for (size_t u = 0; u < a->experiments.size(); ++u) {
    ASSERT_EQ(a->experiments[u].size(), b->experiments[u].size());
    int64_t span = 0;
    for (size_t i = 0; i < a->experiments[u].size(); ++i) {
      const Experiment &x = a->experiments[u][i], &y = b->experiments[u][i];
      EXPECT_EQ(x.think_s, y.think_s);
      EXPECT_GE(x.think_s, 60);
      ASSERT_FALSE(x.jobs.empty());
      ASSERT_EQ(x.jobs.size(), y.jobs.size());
      ++experiment;
      int64_t longest = 0;
      for (size_t k = 0; k < x.jobs.size(); ++k) {
        const TeamJob &p = x.jobs[k], &q = y.jobs[k];
        EXPECT_EQ(std::tie(p.user, p.kind, p.gpus, p.work_s, p.busy, p.experiment),
                  std::tie(q.user, q.kind, q.gpus, q.work_s, q.busy, q.experiment));
        EXPECT_EQ(p.user, static_cast<int>(u));
        EXPECT_EQ(p.experiment, experiment);
        EXPECT_NE(p.kind, JobKind::kSession);
        EXPECT_TRUE(x.jobs.size() == 1 || p.kind == JobKind::kSweep);
        longest = std::max(longest, p.work_s);
      }
      span += x.think_s + longest;
    }
    EXPECT_GE(span, a->DurationS()) << "researcher " << u << " runs out of experiments";
  }
  // Sessions are drawn as in the open model: the same ones; train and sweeps
  // only as experiments.
  TeamParams open = Closed();
  open.demand = Demand::kOpen;
  Result<TeamWorkload> o = MakeTeamWorkload(open);
  ASSERT_TRUE(o.ok());
  std::vector<std::pair<int, int64_t>> sessions_open, sessions_closed;
  for (const TeamJob &j : o->jobs) {
    if (j.kind == JobKind::kSession) sessions_open.emplace_back(j.user, j.submit);
  }
  for (const TeamJob &j : a->jobs) {
    EXPECT_EQ(j.kind, JobKind::kSession);
    sessions_closed.emplace_back(j.user, j.submit);
  }
  EXPECT_EQ(sessions_open, sessions_closed);
  EXPECT_TRUE(o->experiments.empty());
  TeamParams other = Closed();
  other.seed = 2;
  Result<TeamWorkload> c = MakeTeamWorkload(other);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->experiments[0][0].think_s, c->experiments[0][0].think_s);
}

TEST(ClosedDemandTest, ThinkTimeCountsOfficeHoursOrTheClock) {
  TeamParams p;
  constexpr int64_t kH = 3600, kDay = 24 * kH;
  EXPECT_EQ(ThinkUntil(p, 10 * kH, kH), 11 * kH);  // Monday 10:00 -> 11:00
  EXPECT_EQ(ThinkUntil(p, 2 * kH, 30 * 60),
            9 * kH + 30 * 60);  // Monday 2:00 -> 9:30
  EXPECT_EQ(ThinkUntil(p, 18 * kH, 2 * kH),
            kDay + 10 * kH);  // Monday 18:00 -> Tuesday 10:00
  EXPECT_EQ(ThinkUntil(p, 4 * kDay + 18 * kH, 2 * kH),
            7 * kDay + 10 * kH);  // Friday -> Monday
  EXPECT_EQ(ThinkUntil(p, 5 * kDay + 12 * kH, 60),
            7 * kDay + 9 * kH + 60);  // Saturday
  p.think_office_hours = false;
  EXPECT_EQ(ThinkUntil(p, 5 * kDay + 12 * kH, 60), 5 * kDay + 12 * kH + 60);
}

// Per researcher, each experiment is submitted only once the previous one has
// returned, after its think time (ThinkUntil), in the order of the researcher's
// sequence; jobs start after submission.
void ExpectOneExperimentInFlight(Regime regime) {
  SCOPED_TRACE(RegimeName(regime));
  Result<TeamWorkload> w = MakeTeamWorkload(Closed());
  ASSERT_TRUE(w.ok());
  UtilizationOptions o;
  o.regime = regime;
  std::map<int64_t, int64_t> first_start_submit;  // experiment -> submit time of a started job
  o.on_start = [&](const TeamJob &j, const model::WorkerPlacement &) {
    if (j.experiment > 0) first_start_submit.emplace(j.experiment, j.submit);
  };
  Result<UtilizationResult> r = SimulateTeam(*w, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::vector<std::vector<const ExperimentRecord *>> of(w->researchers.size());
  for (const ExperimentRecord &e : r->experiments) of[static_cast<size_t>(e.user)].push_back(&e);
  int64_t returned = 0,
          active = 0;  // light users may think through the short run
  for (size_t u = 0; u < of.size(); ++u) {
    active += !of[u].empty();
    int64_t free_at = 0;  // when the previous experiment returned (the month's
                          // start for the first)
    for (size_t i = 0; i < of[u].size(); ++i) {
      const ExperimentRecord &e = *of[u][i];
      const Experiment &planned = w->experiments[u][i];
      EXPECT_EQ(e.experiment, planned.jobs.front().experiment) << "out of order";
      EXPECT_EQ(e.think_s, planned.think_s);
      ASSERT_GE(free_at, 0) << "researcher " << u << " has two experiments in flight";
      EXPECT_EQ(e.submit, ThinkUntil(w->params, free_at, planned.think_s));
      EXPECT_GE(e.submit, free_at + planned.think_s);
      if (e.returned >= 0) {
        EXPECT_GT(e.returned, e.submit);
        ++returned;
      }
      free_at = e.returned;
    }
  }
  EXPECT_GT(active, 20);
  EXPECT_GT(returned, 30);
  for (const auto &[experiment, submit] : first_start_submit) {
    bool found = false;
    for (const ExperimentRecord &e : r->experiments) {
      if (e.experiment != experiment) continue;
      found = true;
      EXPECT_EQ(submit, e.submit);
    }
    EXPECT_TRUE(found) << experiment;
  }
  EXPECT_EQ(r->ExperimentsReturned(), returned);
}

TEST(ClosedDemandTest, AResearcherNeverHasTwoExperimentsInFlightStatic) {
  ExpectOneExperimentInFlight(Regime::kStatic);
}

TEST(ClosedDemandTest, AResearcherNeverHasTwoExperimentsInFlightHerd) {
  ExpectOneExperimentInFlight(Regime::kHerd);
}

TEST(ClosedDemandTest, SameSeedGivesTheSameRun) {
  Result<TeamWorkload> w = MakeTeamWorkload(Closed());
  ASSERT_TRUE(w.ok());
  UtilizationOptions o;
  Result<UtilizationResult> a = SimulateTeam(*w, o), b = SimulateTeam(*w, o);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->experiments.size(), b->experiments.size());
  for (size_t i = 0; i < a->experiments.size(); ++i) {
    EXPECT_EQ(std::tie(a->experiments[i].experiment, a->experiments[i].submit,
                       a->experiments[i].returned),
              std::tie(b->experiments[i].experiment, b->experiments[i].submit,
                       b->experiments[i].returned));
  }
}

}  // namespace
}  // namespace herd::sim
