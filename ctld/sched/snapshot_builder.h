// How a Snapshot is made from jobs and nodes: the one set of rules by which herd-ctld
// (ctld/schedule.cc: its jobs, its nodes' topologies, herd.toml), bench/ (trace nodes and pods, a
// synthetic team) and the scenario format (scenario.cc, scenario_run.cc) turn what they know into
// what Decide() reads. They differ only in where the facts come from, so the same cluster gives the
// same snapshot whichever of them built it.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/model/job.h"
#include "ctld/sched/snapshot.h"

namespace herd::sched {

// One GPU of a node, as its source describes it.
struct GpuFacts {
  int index = 0;           // CUDA index on the node
  int64_t memory_mib = 0;  // total GPU memory
  int numa = -1;           // nearest NUMA node, -1 unknown
  int pcie_switch = -1;    // PCIe switch above the GPU, -1 none
  std::string model;       // GpuSlot::model
  std::string nic = {};    // the NIC beside it, "" none
};

// One node, as its source describes it, with nothing allocated.
struct NodeFacts {
  std::string name;
  std::vector<GpuFacts> gpus;
  std::map<int, std::vector<int>> cores_by_numa;  // NUMA id -> core ids (ascending)
  int total_cores = -1;  // -1: those of cores_by_numa; a written snapshot lists only the free ones
  int64_t memory_mib = 0;
  std::map<std::string, std::string> labels;
  bool schedulable = true;                                // false: DOWN or DRAIN
  std::map<int, std::string> nic_by_switch, nic_by_numa;  // NICs besides those of `gpus`
  std::string quota_pool = {};                            // NodeView::quota_pool
};

// `g` with all of it free.
GpuSlot FreeGpu(const GpuFacts& g);
// `n` with every GPU, core and MiB free. A GPU's NIC serves its PCIe switch and, unless another
// GPU's or nic_by_numa names one first, its NUMA node.
NodeView FreeNode(const NodeFacts& n);

// What every source knows of a job: who it is and what it asks for.
struct JobFacts {
  model::JobId id = 0;
  std::string queue;
  std::string job_class;  // "" or unknown: a default ClassView
  Request request;
  int64_t submit_time = 0;
  // Where it may run (PendingJob::gpu_models, PendingJob::nodes); a running job keeps them, so
  // that one moved to make room restarts only there.
  std::vector<std::string> gpu_models = {};
  std::optional<std::vector<std::string>> nodes = std::nullopt;
  int32_t reclaims = 0;  // times it was reclaimed for another project (PendingJob::reclaims)
};

// The job waiting since `pending_since` (its reservation clock).
PendingJob PendingOf(JobFacts job, int64_t pending_since);
// The job running on `placement` since `start_time`; with a time limit it ends by start + limit.
RunningJob RunningOf(JobFacts job, std::vector<model::WorkerPlacement> placement,
                     int64_t start_time);
// Pending job `p` started on `placement` at `now`.
RunningJob Started(const PendingJob& p, std::vector<model::WorkerPlacement> placement, int64_t now);
// Running job `r` stopped at `now` to wait again, with its place in line (its submit time).
PendingJob Requeued(const RunningJob& r, int64_t now);

// Takes what worker `w` of a running job holds off `node`: its share and memory of each listed
// GPU (all of a GPU's memory for a whole GPU; `gpu_memory_mib`, the job's request, or the share's
// part of it for a fractional one), its cores and its memory. The one rule by which running jobs
// become used resources. GPUs and cores the node does not list as free are left alone.
void TakeFromNode(NodeView& node, const model::WorkerPlacement& w, int64_t gpu_memory_mib);
// Gives back to `node` exactly what TakeFromNode(node, w, gpu_memory_mib) took.
// REQUIRES: `numa_of_core` maps each of w.cores to its NUMA node.
void GiveBackToNode(NodeView& node, const model::WorkerPlacement& w, int64_t gpu_memory_mib,
                    const std::map<int, int>& numa_of_core);

// Node name -> position in a node list.
using NodeIndex = std::unordered_map<std::string, size_t>;
NodeIndex IndexOf(const std::vector<NodeView>& nodes);
// Appends `r` to snap.running and takes each worker off its node, found by `index` in snap.nodes. A
// worker on a node the snapshot lacks (gone from herd-ctld) takes nothing.
void AddRunning(Snapshot& snap, const NodeIndex& index, RunningJob r);

// Everything a Snapshot is made of.
struct SnapshotFacts {
  int64_t now = 0;
  std::vector<NodeFacts> nodes;
  std::vector<QueueView> queues;  // in tree order as the source lists them
  std::vector<ClassView> classes;
  std::vector<RunningJob> running;  // their resources are taken off `nodes`
  std::vector<PendingJob> pending;
  std::vector<WorkloadShape> workload;
};

// The built-in classes (model::kBuiltinClasses: herd.toml's defaults) as the core reads them, by
// name: what scenario files and benchmarks run with unless they define their own.
std::map<std::string, ClassView> BuiltinClasses();

// The snapshot of `facts`: free nodes less what the running jobs hold, classes keyed by name.
// Evictions under way are marked afterwards (ctld/sched/evictions.h MarkEvictions).
Snapshot BuildSnapshot(SnapshotFacts facts);

}  // namespace herd::sched
