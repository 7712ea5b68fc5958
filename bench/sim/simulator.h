// The placement simulator: replays one arrival order of a trace pod list against the real scheduler
// core, one pod per sched::Decide() call, and measures GPU allocation and fragmentation as the FGD
// paper does (/work/shared/notes/fgd-benchmark.md, bench/README.md).
// Built by placement_bench per (pod list, policy, seed).
// Thread-safety: Simulate() has no shared state; runs may go on concurrently.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/sim/trace.h"
#include "common/util/status.h"
#include "ctld/sched/scheduler.h"

namespace herd::sim {

struct SimOptions {
  sched::Placement placement = sched::Placement::kHerd;
  uint64_t seed = 1;
  double inflate = 1.3;                // arrivals stop once GPU requests reach this x capacity
  int64_t cpu_milli_per_core = 1000;   // herd counts whole cores: one simulated core = this many mCPU
  bool snapshot_running = false;       // pass the placed pods as Snapshot::running
  std::vector<WorkloadShape> workload;  // target workload of the fragmentation metric
  bool tell_workload = true;            // pass `workload` as Snapshot::workload (FGD / herd's target)
};

// The cluster when arrived GPU requests first reach `arrived_pct` % of capacity.
struct CurvePoint {
  int arrived_pct = 0;
  double allocated_pct = 0;  // allocated GPU milli / capacity, in %
  double frag_gpus = 0;      // cluster fragmentation, in GPUs
  double idle_gpus = 0;      // unallocated GPUs
};

struct RunResult {
  std::vector<CurvePoint> curve;  // arrived_pct 1, 2, ... up to the inflation (130)
  int64_t pods = 0;               // pods tried
  int64_t failed = 0;             // pods that fit nowhere (dropped)
  int64_t preemptions = 0;        // PreemptDecisions returned (ignored: pods are never removed)
  int64_t decide_calls = 0;
  double decide_s = 0;            // time inside Decide()
  double wall_s = 0;              // whole run
  // The curve point at arrived_pct, or nullptr.
  const CurvePoint* At(int arrived_pct) const;
};

// Replays ArrivalOrder(trace, seed, inflate) with options.placement. An infeasible decision (a
// GPU, core or memory overcommitted, a disallowed model) is an Internal error: a scheduler bug.
Result<RunResult> Simulate(const Trace& trace, const SimOptions& options);

// One node's fragmentation (free milli per GPU, free mCPU, GPU model) for `workload`, in milli:
// Σ shapes popularity x the idle GPU milli that shape cannot use there.
double NodeFragmentation(const std::vector<WorkloadShape>& workload, const std::vector<int64_t>& free_milli,
                     int64_t free_cpu_milli, int model);

}  // namespace herd::sim
