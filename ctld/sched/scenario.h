// Scenario files: a small line format that describes a cluster, its queues and jobs, and the
// decisions Decide() must make on it, cycle after cycle. Three uses: the scheduler's tests
// (tests/scenarios/*.scenario), bench/, and `herd admin snapshot`, which writes the snapshot of a
// live scheduling cycle in this format with the decisions herd-ctld made on it, for `herd-sim
// replay` to decide again offline.
//
// One statement per line ('#' starts a comment; key=value options in any order):
//
//   policy placement=herd|bestfit|fgd|random|spread reserve_after=S reclaim_backoff=S seed=N
//          max_preemptions=N [builtin_classes=no]   (no: only the classes written here exist; a key left out:
//          sched::Policy's default)
//   now 100000
//   class NAME priority=50 preemptible|nonpreemptible [within_quota] [min_runtime=600]
//   queue NAME [parent=P] [deserved=gpu:8,cpu:64,mem:1T] [limit=gpu:24] [weight=2] [min_runtime=S]
//         [usage=U]      (recent use, GPU-seconds decayed: QueueView::usage; a department's is
//                        its subtree's)
//         [department]   (a queue that holds no jobs even without children)
//         per GPU type (QueueView::by_type): deserved=gpu:8,gpu.h100:4 limit=gpu.h100:6
//         weight=2,gpu.h100:3 (the type as node model= names it)
//         per quota pool (QueueView::by_pool): deserved=gpu:8,pool.train:6 limit=pool.train:6
//         weight=2,pool.train:3 (the pool as node quota_pool= names it)
//   node NAME gpus=8 cores=64 memory=512G [model=A100] [gpu_memory=80G] [numa=2] [per_switch=2]
//        [nics=switch|numa] [labels=rack:r1,switch:s1] [quota_pool=P] [down]
//        (quota_pool: NodeView::quota_pool, the pool some queue's quota names that it is in)
//        exact layout instead: [numa_cores=0:0-7,16-23/1:8-15,24-31] [nic_switch=0:mlx5_0,1:mlx5_1]
//        [nic_numa=0:mlx5_0] and, with gpus=0, one line per GPU:
//   gpu NODE INDEX [numa=N] [switch=S] [memory=80G] [model=M]
//   running ID queue=Q [class=train] [gpu=1] [gpu_memory=10G] [cpus=1] [mem=1G] [workers=1]
//        [spread] [time=S] on=n1[0,1]+n2[4-7] [start=T] [submit=T] [end_by=T] [suspended]
//        [evicted_for=J]   (being stopped to make room for pending job J)
//        [reclaims=N]   (times it was reclaimed: Policy::reclaim_backoff_s; a `cycle` counts each
//        reclaim it applies)
//        [model=M[,M2]] [nodes=n1,n2]   (where it may run, as for pending jobs: a moved job
//        restarts only there)
//        exact placement, '+'-separated per worker like on=: [cores=0-3+4-7] [wmem=1024+1024]
//        [milli=1000+1000] [nic=mlx5_0+mlx5_1]   (without cores=: the lowest free cores on the
//        GPUs' NUMA node first; wmem: the request's memory; milli: the request's GPU share)
//   pending ID queue=Q [class=train] [gpu=...] [submit=T] [since=T] [model=M[,M2]] [spread] [time=S]
//        [pool=P] [constraint=k:v,k2:v2] [nodelist=n1,n[3-4]] [exclude=n2]   (where it may run, as
//        herd-ctld resolves it: pool P is the nodes labelled pool:P) or [nodes=n1,n2] (exactly
//        these) [victims_stopping=N] [room_made] [room_on=... room_cores=... room_wmem=...
//        room_milli=... room_nic=...]   (evictions under way, PendingJob) [reclaims=N]
//   held ID ...      like pending: a job evicted for another that waits out of sight (held_out)
//   shape [gpu=G] [cpus=C] [mem=M] [model=M1,M2] weight=W   (Snapshot::workload)
//   expect start ID [on n1[0,1]+n2[..] | on n1]      expect nostart ID
//   expect preempt ID [for=J] [kind=reclaim]          expect nopreempt ID
//   expect starts N                                  expect preemptions N
//   expect reason ID contains "text"                 expect reserve ID [on n1,n2]
//   expect reason ID is CODE       (model::ReasonCodeName: gpu_block, limit, preempted_jobs, ...)
//   expect share Q fair=gpu:4 [allocated=gpu:2]      expect nic ID NAME
//          (fair=gpu.h100:2: its fair share of the h100 GPUs, QueueShare::by_type; pool.train:2:
//          of the GPUs of quota pool train, QueueShare::by_pool)
//   expect cores ID within A-B                       expect deterministic
//   expect estimate ID by T | at T | none [over_limit|no_time_limit|never_fits]
//          (sched::EstimateStart, herd why's estimate: it could start at or before / exactly at
//          T, or there is none, for that reason)
//   cycle        the decisions so far take effect as herd-ctld applies them (ctld/sched/evictions.h):
//                started jobs run from `now`; preempted jobs leave their nodes and wait again (same
//                submit time, since=now), out of sight until the job they were evicted for has
//                started. The statements after it (now, pending, running, finish ID: a running job
//                ends; stopping ID: a job preempted by the previous cycle still holds its resources;
//                stopped ID: such a job has released them) and its expectations describe the next
//                Decide()
//
// The built-in classes are herd.toml's defaults (model::kBuiltinClasses, herd.toml(5)): train (50,
// preemptible, min_runtime 600), interactive (100, within quota) and inference (125, within quota)
// exist unless redefined; a `class` line's keys left out are priority 50, preemptible and
// min_runtime 0 (`class train priority=50 preemptible` is a train that may be preempted at once).
// Nodes, jobs and the resources running jobs take from their nodes follow
// herd-ctld's rules (ctld/sched/snapshot_builder.h). Defaults: now 100000, start now-3600, submit =
// ID (running: = start), since = now, end_by = start + time (0 without time=). A GPU count is "2",
// "0.25" or thousandths ("1500m"). Names written by WriteScenario stand "%XX" for a byte outside
// [A-Za-z0-9._-]. Evictions written as marks (evicted_for, victims_stopping, held) describe the first
// cycle; a `cycle` section does not carry them on.
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ctld/sched/scheduler.h"

namespace herd::sched {

// A parsed scenario: the snapshot, the policy, and the expectation lines to check.
struct Scenario {
  Snapshot snapshot;
  Policy policy;
  std::vector<std::pair<int, std::string>> expects;  // (line number, text after "expect ")
  std::vector<std::string> errors;                   // parse errors, "line N: ..."
  // Each `cycle` section: its statements (now, pending, running, finish), applied after the previous
  // cycle's decisions, and its expectations.
  struct Cycle {
    std::vector<std::pair<int, std::string>> statements, expects;
  };
  std::vector<Cycle> later;
  std::map<std::string, std::map<int, int>> core_numa;  // node -> core id -> NUMA id
};

Scenario ParseScenario(const std::string& text);
// Runs Decide() (once per cycle) and returns one message per unmet expectation (empty: all met).
std::vector<std::string> CheckScenario(const Scenario& scenario);
// A stable text form of decisions, for comparing runs.
std::string DumpDecisions(const Decisions& d);

// `snapshot` and `policy` as scenario statements that ParseScenario reads back equal (every field
// of the Snapshot, evictions under way as marks), then, when `decided` is given, `expect` lines for
// those decisions: every start with its nodes and GPUs, every eviction with its beneficiary and
// kind, every reservation, the counts, and each pending reason that the format can quote.
std::string WriteScenario(const Snapshot& snapshot, const Policy& policy,
                          const Decisions* decided = nullptr);

}  // namespace herd::sched
