// The utilization simulator: plays a TeamWorkload month on a simulated clock against the real
// scheduler core (sched::Decide) under one of two regimes, and measures GPU allocation and
// utilization per hour, queue waits, completions, preemptions and idle terminations.
//   static: each researcher owns a fixed block of GPUs (TeamWorkload::researchers) and their jobs
//           run only there: one Decide() per researcher over a snapshot of just that block, one
//           queue with deserved = limit = the block, no preemption and no idle termination.
//   herd:   one Decide() over the whole cluster with the projects' deserved quotas (summing to the
//           cluster), over-quota use by the preemptible class train (training and sweeps), reclaim
//           and preemption with restart, and the interactive class's idle_timeout enforced by the
//           rule of herd-ctld (ctld/lifecycle.cc UpdateIdle / CheckTimeLimits).
// Built by utilization_bench and tests/bench.
// Thread-safety: SimulateTeam() has no shared state; runs may go on concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bench/sim/team_workload.h"
#include "common/util/status.h"
#include "ctld/sched/scheduler.h"

namespace herd::sim {

enum class Regime { kStatic, kHerd };
const char* RegimeName(Regime r);  // "static", "herd"

struct UtilizationOptions {
  Regime regime = Regime::kHerd;
  int64_t cycle_s = 30;             // scheduling cycle and metrics sample period
  int64_t checkpoint_s = 1800;      // train jobs keep their progress up to the last checkpoint
  int64_t session_max_s = 12 * 3600;  // class interactive: max_time (both regimes)
  int64_t idle_timeout_s = 3600;    // class interactive: idle_timeout (herd regime)
  int64_t min_runtime_s = 600;      // class train: never preempted sooner (herd regime)
  sched::Policy policy;             // placement herd, reserve_after 30 min
  // Called for every start the simulator applies, after checking it (tests assert invariants).
  std::function<void(const TeamJob&, const model::WorkerPlacement&)> on_start;
};

// One hour of the month.
struct HourSample {
  double allocated_pct = 0;  // GPUs held by jobs / GPUs, averaged over the hour
  double utilized_pct = 0;   // Σ held GPUs x their busy fraction / GPUs, averaged over the hour
  double pending_gpus = 0;   // GPUs asked by pending jobs, averaged over the hour
};

struct KindStats {
  int64_t submitted = 0;   // jobs of the workload (sessions: plus resubmissions)
  int64_t started = 0;     // started at least once
  int64_t completed = 0;   // train/sweep: all work done; sessions: closed by the user
  int64_t timed_out = 0;   // sessions that reached max_time (forgotten ones)
  std::vector<double> waits_s;  // first start - submit; never started: month end - submit
  double gpu_hours = 0;    // GPU time held
  double busy_gpu_hours = 0;  // GPU time busy
};

// An experiment (a training job, or a sweep as a whole) as it went: submitted,
// returned (its last job done; -1 if not by the month's end) and, closed
// demand, the think time drawn before it.
struct ExperimentRecord {
  int user = 0;
  int64_t experiment = 0;  // TeamJob::experiment
  int64_t submit = 0;      // when its jobs were submitted (closed: ThinkUntil(previous return))
  int64_t returned = -1;
  int64_t think_s = 0;  // closed demand; 0 in the open model
};

struct UtilizationResult {
  Regime regime = Regime::kHerd;
  std::vector<HourSample> hours;
  std::array<KindStats, kJobKinds> kinds;  // by JobKind
  int64_t preemptions = 0;       // jobs evicted (reclaim, preempt, consolidate)
  std::map<std::string, int64_t> preemptions_by_kind;  // EvictionKindName -> count
  std::array<int64_t, kJobKinds> evicted{};            // by the victim's JobKind
  // Who evicted whom and with what free elsewhere: "reclaim train<-session; free 7 GPUs, fits
  // on a node without eviction" -> count (the causes of the evictions, for the report's breakdown).
  std::map<std::string, int64_t> eviction_causes;
  double lost_gpu_hours = 0;     // work evicted jobs had done since their last checkpoint
  int64_t idle_terminations = 0; // sessions stopped by idle_timeout
  int64_t resubmissions = 0;     // ... that their researcher reopened on coming back
  std::vector<ExperimentRecord> experiments;  // in the order of their first submission
  int64_t ExperimentsReturned() const;
  int64_t decide_calls = 0;
  double decide_s = 0;  // time inside Decide()
  double wall_s = 0;
  double AllocatedPct() const;   // month mean
  double UtilizedPct() const;    // month mean
  // Nearest-rank percentile (0..100) of a kind's waits, in seconds; 0 without jobs.
  double WaitPercentile(JobKind kind, double pct) const;
};

// Plays the month. Closed demand (workload.params.demand): a researcher's first
// experiment is submitted ThinkUntil(0, its think time), each next one
// ThinkUntil(the return of the previous one, its think time); jobs arrive on
// the first cycle at or after their submit time. An infeasible start (a GPU,
// core or memory overcommitted; in the static regime, a GPU outside the
// researcher's block) is an Internal error: a scheduler or simulator bug.
Result<UtilizationResult> SimulateTeam(const TeamWorkload& workload, const UtilizationOptions& options);

}  // namespace herd::sim
