// A Snapshot is an immutable view of the cluster at one instant: free capacity per node, GPU and NUMA
// node, the queue tree, the priority classes, and the running and pending jobs.
// herd-ctld builds it from its store every cycle; bench/ and tests/ build it from traces and scenario
// files, all through ctld/sched/snapshot_builder.h. Time enters the scheduler only as `Snapshot::now`.
// Thread-safety: plain value types; immutable once handed to Decide().
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/model/job.h"
#include "common/model/resources.h"

namespace herd::sched {

// One GPU of a node and what is still free on it. A worker holding whole GPUs holds all their memory;
// a fractional worker holds spec.gpu_memory_mib, or memory_mib * gpu_milli / 1000 when it asks none.
struct GpuSlot {
  int index = 0;                // CUDA index on the node
  int64_t free_milli = 1000;    // unallocated share, in thousandths of the GPU
  int64_t free_memory_mib = 0;  // unallocated GPU memory
  int64_t memory_mib = 0;       // total GPU memory
  int numa = -1;                // nearest NUMA node, -1 unknown
  int pcie_switch = -1;         // PCIe switch above the GPU, -1 none
  // What PendingJob::gpu_models names: the model ("NVIDIA A100-SXM4-40GB") in bench/sim, its
  // type ("a100", common/model/fleet.h) in herd-ctld.
  std::string model;
  bool operator==(const GpuSlot&) const = default;
};

// One node, with the resources not held by running (or suspended) jobs.
struct NodeView {
  std::string name;
  std::vector<GpuSlot> gpus;
  std::map<int, std::vector<int>> free_cores_by_numa;  // NUMA id -> free core ids (ascending)
  int64_t free_memory_mib = 0;
  int64_t memory_mib = 0;
  int total_cores = 0;
  std::map<std::string, std::string> labels;  // "rack", "switch", "pool", ...
  bool schedulable = true;                    // false: DOWN or DRAIN (running jobs stay)
  std::map<int, std::string> nic_by_switch;   // pcie_switch -> NIC name
  std::map<int, std::string> nic_by_numa;     // NUMA id -> NIC name
  // The node pool some queue's quota names that this node is in (QueueView::by_pool); "" none.
  // Quota pools share no node, so each GPU counts in at most one.
  std::string quota_pool = {};
  bool operator==(const NodeView&) const = default;
};

// One queue (project or department) of the tree. Only leaves hold jobs.
struct QueueView {
  std::string name;
  std::string parent;               // "" for a child of the root
  model::Resources deserved;        // guaranteed quota
  model::Resources limit{-1, -1, -1};  // hard cap; a component of -1 means unlimited
  double over_quota_weight = 1;     // share of the surplus relative to siblings
  bool is_leaf = true;
  int64_t min_runtime_s = -1;       // -1: the job's class's; else its jobs are never preempted sooner
  // Quotas on the GPUs of one type (GpuSlot::model): fair shares, limits and reclaim per type
  // (fair_share.cc TypedFairShares, evict.cc ReclaimByType).
  model::GpuTypeQuotas by_type = {};
  // Quotas on the GPUs of the nodes of one pool (NodeView::quota_pool), by pool: the same rules
  // per pool as per type (gpu_types.cc); a GPU counts in its type's quota and its pool's.
  model::GpuTypeQuotas by_pool = {};
  // Recent use in GPU-seconds, decayed by [scheduler] fair_share_half_life (ctld/sched/usage.h);
  // a department's is its subtree's. 0 everywhere: the surplus goes by over_quota_weight alone.
  double usage = 0;
  bool operator==(const QueueView&) const = default;
};

// A priority class (train, interactive, inference, ...).
struct ClassView {
  std::string name;
  int priority = 50;             // higher is served first and may preempt lower in the same queue
  bool preemptible = true;       // may be reclaimed / preempted / moved
  bool within_quota_only = false;  // may start only within the queue's deserved quota
  int64_t min_runtime_s = 0;     // never preempted before running this long
  bool operator==(const ClassView&) const = default;
};

// What the scheduler reads of a job's model::JobSpec: its resource request. A few integers, so
// that a snapshot of many jobs copies no command, environment or other strings.
struct Request {
  int32_t workers = 1;          // gang size
  int64_t gpu_milli = 0;        // per worker; < 1000 a share of one GPU
  int64_t gpu_memory_mib = 0;   // per worker, fractional jobs: requested GPU memory
  int64_t cpus = 1;             // per worker
  int64_t memory_mib = 1024;    // per worker
  bool spread = false;          // place away from other jobs instead of packing
  int64_t time_limit_s = 0;     // 0: none; else it ends this long after it starts (backfill)

  static Request Of(const model::JobSpec& spec);  // the request fields of `spec`
  bool operator==(const Request&) const = default;
};

inline Request Request::Of(const model::JobSpec& spec) {
  return {spec.workers, spec.gpu_milli,  spec.gpu_memory_mib, spec.cpus,
          spec.memory_mib, spec.spread, spec.time_limit_s};
}

// A job holding resources. Its resources are already subtracted from the NodeViews.
struct RunningJob {
  model::JobId id = 0;
  std::string queue;
  std::string job_class;                            // "" or unknown: a default ClassView
  Request request;
  std::vector<model::WorkerPlacement> placement;    // one per worker
  int64_t start_time = 0;
  int64_t submit_time = 0;
  int64_t end_by = 0;       // 0: no time limit, else start + time limit
  bool suspended = false;   // still holds resources
  // Being stopped to make room for this pending job (ctld/sched/evictions.h): never chosen again;
  // its queue's quota and fair share no longer count it (that job counts, as if started), its
  // queue's limits do until it has stopped.
  model::JobId evicted_for = 0;
  // Where it may run, as PendingJob::gpu_models and PendingJob::nodes say it: a job moved to make
  // room (consolidation) restarts only there.
  std::vector<std::string> gpu_models = {};
  std::optional<std::vector<std::string>> nodes = std::nullopt;
  int32_t reclaims = 0;  // times it was reclaimed (EvictionKind::kReclaim) and requeued
  bool operator==(const RunningJob&) const = default;
};

// A job waiting for resources.
struct PendingJob {
  model::JobId id = 0;
  std::string queue;
  std::string job_class;      // "" or unknown: a default ClassView
  Request request;
  int64_t submit_time = 0;    // kept across preemptions: the place in line
  int64_t pending_since = 0;  // when it last became pending (reservation clock)
  // Empty: any GPU; else every GPU of the job must be of one of these models (GpuSlot::model).
  std::vector<std::string> gpu_models = {};
  // nullopt: any node; else only the nodes named here (sorted): its pool, constraints, node
  // list and exclusions as herd-ctld resolved them.
  std::optional<std::vector<std::string>> nodes = std::nullopt;
  // Jobs evicted for it (ctld/sched/evictions.h): while some still hold resources it waits, counted
  // in its queue as if started; once all have released them it is served before any other job.
  int32_t victims_stopping = 0;
  bool room_made = false;
  // Where its eviction plan placed it, worker by worker (PreemptDecision::room): the room made for
  // it. While its victims stop, the GPUs, cores and memory planned for it that are already free
  // are held for it (the rest of those nodes stays usable); it is started there when that room is
  // free, else on the same nodes when it fits there.
  std::vector<model::WorkerPlacement> room_on = {};
  // Times it was reclaimed for another project; with pending_since (when it was last requeued)
  // it decides when the job may borrow again (Policy::reclaim_backoff_s).
  int32_t reclaims = 0;
  bool operator==(const PendingJob&) const = default;
};

// One request shape of the workload the cluster expects and its share of the jobs: the target
// workload of fragmentation-aware placement (Placement::kHerd, kFgd).
struct WorkloadShape {
  int64_t gpu_milli = 0;   // per worker: < 1000 a share of one GPU, else 1000 x whole GPUs; 0 none
  int64_t cpus = 0;        // per worker
  int64_t memory_mib = 0;  // per worker; 0: not considered
  std::vector<std::string> gpu_models;  // models it may run on; empty: any
  double weight = 0;       // its share of the jobs (relative: weights need not sum to 1)
  bool operator==(const WorkloadShape&) const = default;
};

struct Snapshot {
  int64_t now = 0;  // seconds since epoch
  std::vector<NodeView> nodes;
  std::vector<QueueView> queues;
  std::map<std::string, ClassView> classes;  // by name; an unknown class acts as a default ClassView
  std::vector<RunningJob> running;
  std::vector<PendingJob> pending;
  // Evicted jobs waiting, out of the scheduler's sight, for the job they were evicted for to start
  // (ctld/sched/evictions.h): never started, but counted in their queue's demand, so that fair
  // shares do not move because a project's jobs were evicted.
  std::vector<PendingJob> held_out = {};
  // Expected job shapes (e.g. recent submissions); empty: the shapes of pending + running jobs.
  std::vector<WorkloadShape> workload;
  bool operator==(const Snapshot&) const = default;
};

}  // namespace herd::sched
