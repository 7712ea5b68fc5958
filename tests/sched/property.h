// Property-based checks of the scheduler core: random clusters, queue trees and workloads (a Case,
// generated from a seed) driven through the real sched::Decide() for several cycles, with the
// decisions applied the way herd-ctld applies them, and invariants checked on every cycle. A
// failing case is shrunk (fewer jobs, nodes, queues, cycles; smaller requests) and written in the
// scenario format of ctld/sched/scenario.h, so that it can become a tests/scenarios file.
//
// The invariants (the names a failure reports):
//   overcommit    a start uses a GPU share, GPU memory, core or memory that is not free, or a node
//                 that is down or unknown
//   gang          a start places other than exactly `workers` workers, each with its whole request
//   decision      a decision names a job that is not pending (start) or not running (preempt)
//   limit         a start takes a queue or department above a limit
//   quota         a within-quota-only class starts with its project's firm jobs (within-quota or
//                 not preemptible) above its deserved quota
//   protected     a non-preemptible, suspended, or younger-than-min_runtime job is evicted
//   determinism   Decide() on an equal snapshot decides differently (in one process)
//   starvation    a job owed its quota is not started within kStarveCycles cycles (see property.cc)
//   thrash        the same job is reclaimed kThrashEvictions times, or two projects reclaim from
//   each
//                 other back and forth with nothing else changing
//   churn         a job is reclaimed within 2 cycles of its start for a job that was already
//                 waiting and entitled to reclaim (within its project's fair share or deserved
//                 quota) when that start was decided (for a start into room made for it: when its
//                 victims were evicted), with no job ended since and the victim's project's fair
//                 share not lower since, its project above its fair share (that cycle's) with that
//                 cycle's starts
//   beneficiary   an evicted job's beneficiary does not start within kBeneficiaryCycles cycles of
//   its
//                 victims' release
//   wasted_eviction  an evicted job's beneficiary starts on none of the nodes its victims freed
//                 (reclaim and consolidate; when no running job ended since the eviction)
// Thread-safety: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ctld/sched/scheduler.h"

namespace herd::sched::testing {

// Cycles a job may stay owed its quota without starting (starvation), cycles an eviction's
// beneficiary may wait after its victims released their resources (beneficiary), and reclaims of one
// job in one case that count as thrash.
inline constexpr int kStarveCycles = 6;
inline constexpr int kBeneficiaryCycles = 3;
inline constexpr int kThrashEvictions = 3;

struct CaseNode {
  std::string name;
  int gpus = 0, cores = 32, numa = 1;
  int64_t memory_mib = 256 * 1024, gpu_memory_mib = 80 * 1024;
  bool down = false;
  std::string model;  // its GPUs' type ("a100", "h100"); "" none
};

struct CaseQueue {
  std::string name, parent;  // parent "" for a child of the root
  model::Resources deserved{0, 0, 0};
  model::Resources limit{-1, -1, -1};
  int weight = 1;
  int64_t min_runtime_s = -1;  // -1: its jobs' classes'
  model::GpuTypeQuotas by_type;  // quotas per GPU type (deserved, limit, weight)
};

struct CaseJob {
  model::JobId id = 0;
  std::string queue, job_class = "train";
  int64_t gpu_milli = 0;  // per worker; < 1000 a share of one GPU
  int64_t cpus = 1, memory_mib = 1024;
  int workers = 1;
  // Running at the first cycle: one (node, GPU indexes) per worker, and its start time.
  bool running = false;
  std::vector<std::pair<std::string, std::vector<int>>> on;
  int64_t start = 0;
  // Pending: its place in line, its reservation clock, and the cycle it is submitted in (0: first).
  int64_t submit = 0, since = 0;
  int arrive_cycle = 0;
  int64_t run_s = -1;  // runs this long once (re)started; -1: until the case ends
  int64_t time_limit_s = 0;  // 0: none; else it ends at the latest this long after it starts
  std::vector<std::string> gpu_models;  // pending: the GPU types it may run on; empty: any
};

struct Case {
  uint64_t seed = 0;
  std::string placement = "herd";
  int64_t reserve_after_s = 1800;
  int max_preemptions = 64;
  int64_t now = 100000;
  int64_t step_s = 300;         // time between cycles
  int cycles = 12;
  int release_cycles = 1;       // cycles an evicted job holds its resources before it has stopped
  int64_t train_min_runtime_s = 0;
  std::vector<CaseNode> nodes;
  std::vector<CaseQueue> queues;
  std::vector<CaseJob> jobs;
};

struct Violation {
  std::string invariant;  // "" when every invariant held
  int cycle = 0;          // 1-based cycle it was found in
  std::string message;
};

struct CaseResult {
  Violation violation;
  uint64_t digest = 0;      // of every cycle's decisions: equal runs give equal digests
  std::string trace;        // per cycle: its events and decisions, as scenario comments/statements
  int cycles_run = 0;
  bool invalid = false;     // the case does not describe a valid cluster (e.g. after shrinking)
};

// A random case from `seed`: 1-5 nodes (some CPU-only), a flat or two-level queue tree whose
// deserved quotas fit the cluster, train / interactive / inference jobs running (whole, fractional,
// CPU-only, gangs) and pending, and jobs submitted in later cycles.
Case GenerateCase(uint64_t seed);

// The case's first cycle in the scenario format (policy, classes, queues, nodes, running and
// pending jobs); with `trace` appended as its later cycles.
std::string ScenarioText(const Case& c, const std::string& trace = "");

// The core under test: sched::Decide, or in the suite's own tests a core broken on purpose.
using DecideFn = std::function<Decisions(const Snapshot&, const Policy&)>;

// Runs the case for c.cycles cycles and stops at the first violation.
CaseResult RunCase(const Case& c, const DecideFn& decide = Decide);

// Reduces a case that violates `invariant` while it still does, with a message that contains
// `message_has` (at most `max_runs` runs).
Case Shrink(const Case& c, const std::string& invariant, int max_runs = 3000,
            const DecideFn& decide = Decide, const std::string& message_has = "");

// Cases seed, seed + 1, ..., seed + cases - 1: how many failed each invariant, and the first
// failing case of each.
struct Summary {
  int64_t cases = 0, cycles = 0, invalid = 0;
  double seconds = 0;
  std::map<std::string, int64_t> failures;                      // by invariant
  std::map<std::string, std::pair<Case, CaseResult>> first;     // by invariant
  std::map<std::string, std::vector<uint64_t>> failing_seeds;   // by invariant
};
Summary RunMany(uint64_t seed, int64_t cases);

// Shrinks a failing case, writes it as `dir`/<invariant>-<seed>.scenario, and returns a message
// naming the invariant, the file, and the scenario text.
std::string ReportFailure(const Case& c, const CaseResult& failed, const std::string& dir,
                          const DecideFn& decide = Decide, const std::string& message_has = "");

}  // namespace herd::sched::testing
