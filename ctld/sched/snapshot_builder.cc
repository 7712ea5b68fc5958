#include "ctld/sched/snapshot_builder.h"

#include <algorithm>
#include <utility>

#include "common/model/job_class.h"
#include "ctld/sched/internal.h"

namespace herd::sched {

GpuSlot FreeGpu(const GpuFacts& g) {
  return {g.index, 1000, g.memory_mib, g.memory_mib, g.numa, g.pcie_switch, g.model};
}

NodeView FreeNode(const NodeFacts& n) {
  NodeView v;
  v.name = n.name;
  v.nic_by_switch = n.nic_by_switch;
  v.nic_by_numa = n.nic_by_numa;
  v.quota_pool = n.quota_pool;
  for (const GpuFacts& g : n.gpus) {
    v.gpus.push_back(FreeGpu(g));
    if (g.nic.empty()) continue;
    if (g.pcie_switch >= 0) v.nic_by_switch[g.pcie_switch] = g.nic;
    if (g.numa >= 0) v.nic_by_numa.try_emplace(g.numa, g.nic);
  }
  v.free_cores_by_numa = n.cores_by_numa;
  v.total_cores = n.total_cores;
  if (v.total_cores < 0) {
    v.total_cores = 0;
    for (const auto& [numa, cores] : n.cores_by_numa)
      v.total_cores += static_cast<int>(cores.size());
  }
  v.memory_mib = v.free_memory_mib = n.memory_mib;
  v.labels = n.labels;
  v.schedulable = n.schedulable;
  return v;
}

PendingJob PendingOf(JobFacts job, int64_t pending_since) {
  PendingJob p;
  p.id = job.id;
  p.queue = std::move(job.queue);
  p.job_class = std::move(job.job_class);
  p.request = job.request;
  p.submit_time = job.submit_time;
  p.pending_since = pending_since;
  p.gpu_models = std::move(job.gpu_models);
  p.nodes = std::move(job.nodes);
  p.reclaims = job.reclaims;
  return p;
}

RunningJob RunningOf(JobFacts job, std::vector<model::WorkerPlacement> placement,
                     int64_t start_time) {
  RunningJob r;
  r.id = job.id;
  r.queue = std::move(job.queue);
  r.job_class = std::move(job.job_class);
  r.request = job.request;
  r.placement = std::move(placement);
  r.start_time = start_time;
  r.submit_time = job.submit_time;
  r.end_by = job.request.time_limit_s > 0 ? start_time + job.request.time_limit_s : 0;
  r.gpu_models = std::move(job.gpu_models);
  r.nodes = std::move(job.nodes);
  r.reclaims = job.reclaims;
  return r;
}

RunningJob Started(const PendingJob& p, std::vector<model::WorkerPlacement> placement,
                   int64_t now) {
  return RunningOf(
      {p.id, p.queue, p.job_class, p.request, p.submit_time, p.gpu_models, p.nodes, p.reclaims},
      std::move(placement), now);
}

PendingJob Requeued(const RunningJob& r, int64_t now) {
  return PendingOf(
      {r.id, r.queue, r.job_class, r.request, r.submit_time, r.gpu_models, r.nodes, r.reclaims},
      now);
}

void TakeFromNode(NodeView& node, const model::WorkerPlacement& w, int64_t gpu_memory_mib) {
  for (int g : w.gpus) {
    for (GpuSlot& slot : node.gpus) {
      if (slot.index != g) continue;
      slot.free_milli -= w.gpu_milli_each;
      slot.free_memory_mib -= internal::GpuMemoryTaken(slot, w.gpu_milli_each, gpu_memory_mib);
    }
  }
  for (auto& [numa, cores] : node.free_cores_by_numa) {
    std::erase_if(cores, [&](int c) {
      return std::find(w.cores.begin(), w.cores.end(), c) != w.cores.end();
    });
  }
  node.free_memory_mib -= w.memory_mib;
}

void GiveBackToNode(NodeView& node, const model::WorkerPlacement& w, int64_t gpu_memory_mib,
                    const std::map<int, int>& numa_of_core) {
  for (int g : w.gpus) {
    for (GpuSlot& slot : node.gpus) {
      if (slot.index != g) continue;
      slot.free_milli += w.gpu_milli_each;
      slot.free_memory_mib += internal::GpuMemoryTaken(slot, w.gpu_milli_each, gpu_memory_mib);
    }
  }
  for (int c : w.cores) {
    std::vector<int>& cores = node.free_cores_by_numa[numa_of_core.at(c)];
    cores.insert(std::lower_bound(cores.begin(), cores.end(), c), c);
  }
  node.free_memory_mib += w.memory_mib;
}

NodeIndex IndexOf(const std::vector<NodeView>& nodes) {
  NodeIndex index;
  for (size_t i = 0; i < nodes.size(); ++i) index.emplace(nodes[i].name, i);
  return index;
}

void AddRunning(Snapshot& snap, const NodeIndex& index, RunningJob r) {
  for (const model::WorkerPlacement& w : r.placement) {
    auto it = index.find(w.node);
    if (it != index.end()) TakeFromNode(snap.nodes[it->second], w, r.request.gpu_memory_mib);
  }
  snap.running.push_back(std::move(r));
}

std::map<std::string, ClassView> BuiltinClasses() {
  std::map<std::string, ClassView> classes;
  for (const model::BuiltinClass& b : model::kBuiltinClasses) {
    classes[b.name] = {b.name, b.priority, b.preemptible, b.within_quota_only, b.min_runtime_s};
  }
  return classes;
}

Snapshot BuildSnapshot(SnapshotFacts facts) {
  Snapshot snap;
  snap.now = facts.now;
  snap.nodes.reserve(facts.nodes.size());
  for (const NodeFacts& n : facts.nodes) snap.nodes.push_back(FreeNode(n));
  snap.queues = std::move(facts.queues);
  for (ClassView& c : facts.classes) {
    std::string name = c.name;
    snap.classes[std::move(name)] = std::move(c);
  }
  const NodeIndex index = IndexOf(snap.nodes);
  snap.running.reserve(facts.running.size());
  for (RunningJob& r : facts.running) AddRunning(snap, index, std::move(r));
  snap.pending = std::move(facts.pending);
  snap.workload = std::move(facts.workload);
  return snap;
}

}  // namespace herd::sched
