// One Snapshot lives for the whole run and is edited in place between Decide() calls: the pending
// pod is replaced, a start is subtracted from the NodeViews and appended to `running`. Decide()
// sees exactly what herd-ctld would build from its store for the same cluster.
#include "bench/sim/simulator.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <unordered_map>

#include "ctld/sched/snapshot_builder.h"

namespace herd::sim {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

uint64_t Mix(uint64_t a, uint64_t b) {  // splitmix64 of a pair: a per-call seed for kRandom
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// GPU memory per model (MiB). Pods ask no GPU memory, so a share takes memory in proportion to its
// milli and memory never binds before milli does; the values only keep the NodeViews realistic.
int64_t GpuMemoryMiB(const std::string& model) {
  if (model == "V100M32") return 32768;
  if (model == "A10") return 24576;
  return 16384;  // P100, T4, V100M16; G2 / G3 are not published
}

sched::Snapshot InitialSnapshot(const Trace& trace, const SimOptions& o) {
  const int64_t unit = o.cpu_milli_per_core;
  sched::SnapshotFacts in;
  // The scheduler's target workload: the metric's shapes, in the units the pods are given in.
  for (const WorkloadShape& w : o.tell_workload ? o.workload : std::vector<WorkloadShape>{}) {
    sched::WorkloadShape s;
    s.gpu_milli = w.shape.gpu_milli < 1000 ? w.shape.gpu_milli : 1000 * int64_t{w.shape.num_gpu};
    s.cpus = (w.shape.cpu_milli + unit - 1) / unit;
    for (size_t m = 0; m < trace.models.size(); ++m) {
      if (w.shape.model_mask & (1u << m)) s.gpu_models.push_back(trace.models[m]);
    }
    s.weight = w.popularity;
    in.workload.push_back(std::move(s));
  }
  in.now = 1'000'000;
  // Placed pods are never removed: a min runtime beyond the run keeps them out of victim searches.
  in.classes.push_back({"train", 50, true, false, int64_t{1} << 40});
  in.queues.push_back({"trace", "", {}, {-1, -1, -1}, 1, true});
  for (const TraceNode& n : trace.nodes) {
    sched::NodeFacts& v = in.nodes.emplace_back();
    v.name = n.name;
    const std::string& model = trace.models[n.model];
    for (int g = 0; g < n.gpus; ++g) v.gpus.push_back({g, GpuMemoryMiB(model), -1, -1, model});
    std::vector<int>& cores = v.cores_by_numa[0];
    for (int c = 0; c < static_cast<int>(n.cpu_milli / unit); ++c) cores.push_back(c);
    v.memory_mib = n.memory_mib;
  }
  return sched::BuildSnapshot(std::move(in));
}

// Subtracts `w` from `v`, checking it against the pod; "" or what is wrong.
std::string Apply(const model::WorkerPlacement& w, const TracePod& pod, int model, sched::NodeView& v) {
  if (pod.model_mask != 0 && !(pod.model_mask & (1u << model))) return "a GPU model the pod excludes";
  size_t want = pod.num_gpu == 0 ? 0 : (pod.gpu_milli < 1000 ? 1 : static_cast<size_t>(pod.num_gpu));
  if (w.gpus.size() != want) return std::to_string(w.gpus.size()) + " GPUs for a pod of " +
                                    std::to_string(pod.num_gpu);
  if (want > 0 && w.gpu_milli_each != std::min<int64_t>(pod.gpu_milli, 1000)) return "a wrong GPU share";
  auto slot_of = [&](int g) {
    return std::find_if(v.gpus.begin(), v.gpus.end(), [&](const auto& s) { return s.index == g; });
  };
  for (int g : w.gpus) {
    if (slot_of(g) == v.gpus.end()) return "unknown GPU " + std::to_string(g);
  }
  const std::vector<int>& cores = v.free_cores_by_numa[0];
  for (int c : w.cores) {
    if (!std::binary_search(cores.begin(), cores.end(), c)) return "core " + std::to_string(c) + " not free";
  }
  sched::TakeFromNode(v, w, 0);  // trace pods ask no GPU memory: a share takes its part of it
  for (int g : w.gpus) {
    if (slot_of(g)->free_milli < 0 || slot_of(g)->free_memory_mib < 0) return "GPU " + std::to_string(g) + " overcommitted";
  }
  if (v.free_memory_mib < 0) return "memory overcommitted";
  return "";
}

}  // namespace

const CurvePoint* RunResult::At(int arrived_pct) const {
  for (const CurvePoint& p : curve) {
    if (p.arrived_pct == arrived_pct) return &p;
  }
  return nullptr;
}

double NodeFragmentation(const std::vector<WorkloadShape>& workload, const std::vector<int64_t>& free_milli,
                         int64_t free_cpu_milli, int model) {
  int64_t idle = 0;
  int whole = 0;
  for (int64_t f : free_milli) idle += f, whole += f >= 1000;
  double sum = 0;
  for (const WorkloadShape& w : workload) {
    const TracePod& s = w.shape;
    int64_t frag = idle;
    bool usable = s.num_gpu > 0 && (s.model_mask == 0 || (s.model_mask & (1u << model))) &&
                  free_cpu_milli >= s.cpu_milli;
    if (usable && s.gpu_milli < 1000) {  // a share: GPUs with less than it left are lost to it
      frag = 0;
      for (int64_t f : free_milli) frag += f < s.gpu_milli ? f : 0;
    } else if (usable && whole >= s.num_gpu) {  // whole GPUs: the partly used ones are lost to it
      frag = 0;
      for (int64_t f : free_milli) frag += f < 1000 ? f : 0;
    }
    sum += w.popularity * static_cast<double>(frag);
  }
  return sum;
}

Result<RunResult> Simulate(const Trace& trace, const SimOptions& o) {
  Clock::time_point start = Clock::now();
  const int64_t unit = o.cpu_milli_per_core;
  if (unit <= 0 || 1000 % unit != 0) return Invalid("cpu_milli_per_core must divide 1000");
  sched::Snapshot snap = InitialSnapshot(trace, o);
  std::unordered_map<std::string, int> node_index;
  for (size_t i = 0; i < trace.nodes.size(); ++i) node_index[trace.nodes[i].name] = static_cast<int>(i);
  const int64_t capacity = trace.GpuCapacityMilli();
  std::vector<int> order = ArrivalOrder(trace, o.seed, o.inflate);

  RunResult r;
  int64_t arrived = 0, allocated = 0;
  int next_pct = 1;
  const int last_pct = static_cast<int>(o.inflate * 100 + 0.5);
  std::vector<int64_t> free_milli;
  auto record = [&](int pct) {
    CurvePoint p;
    p.arrived_pct = pct;
    p.allocated_pct = 100.0 * static_cast<double>(allocated) / static_cast<double>(capacity);
    p.idle_gpus = static_cast<double>(capacity - allocated) / 1000.0;
    for (size_t i = 0; i < snap.nodes.size(); ++i) {
      const sched::NodeView& v = snap.nodes[i];
      free_milli.clear();
      for (const sched::GpuSlot& g : v.gpus) free_milli.push_back(g.free_milli);
      int64_t free_cpu = unit * static_cast<int64_t>(v.free_cores_by_numa.at(0).size());
      p.frag_gpus += NodeFragmentation(o.workload, free_milli, free_cpu, trace.nodes[i].model) / 1000.0;
    }
    r.curve.push_back(p);
  };

  snap.pending.resize(1);
  sched::Policy policy;
  policy.placement = o.placement;
  for (size_t k = 0; k < order.size(); ++k) {
    const TracePod& pod = trace.pods[order[k]];
    sched::Request request;
    request.gpu_milli = pod.gpu_milli >= 1000 ? 1000 * int64_t{pod.num_gpu} : pod.gpu_milli;
    request.cpus = (pod.cpu_milli + unit - 1) / unit;
    request.memory_mib = pod.memory_mib;
    sched::PendingJob& job = snap.pending[0];
    job = sched::PendingOf({static_cast<model::JobId>(k + 1), "trace", "train", request, snap.now},
                           snap.now);
    // gpu_spec: the models the pod may use, as herd-ctld gives a job's GPU types.
    for (size_t m = 0; m < trace.models.size(); ++m) {
      if (pod.model_mask & (1u << m)) job.gpu_models.push_back(trace.models[m]);
    }
    std::sort(job.gpu_models.begin(), job.gpu_models.end());
    policy.seed = Mix(o.seed, k);
    Clock::time_point t0 = Clock::now();
    sched::Decisions d = sched::Decide(snap, policy);
    r.decide_s += Seconds(Clock::now() - t0);
    ++r.decide_calls;
    r.preemptions += static_cast<int64_t>(d.preemptions.size());
    ++r.pods;
    arrived += pod.TotalGpuMilli();
    if (d.starts.empty()) {
      ++r.failed;
    } else {
      const sched::StartDecision& s = d.starts.front();
      if (s.id != job.id || s.placement.size() != 1) return Internal("unexpected start decision");
      const model::WorkerPlacement& w = s.placement.front();
      auto it = node_index.find(w.node);
      if (it == node_index.end()) return Internal("start on unknown node " + w.node);
      std::string bad = Apply(w, pod, trace.nodes[it->second].model, snap.nodes[it->second]);
      if (!bad.empty()) {
        return Internal(std::string(sched::PlacementName(o.placement)) + " seed " + std::to_string(o.seed) +
                        " pod " + std::to_string(k) + " on " + w.node + ": " + bad);
      }
      allocated += pod.TotalGpuMilli();
      if (o.snapshot_running) snap.running.push_back(sched::Started(job, s.placement, snap.now));
    }
    while (next_pct <= last_pct && arrived * 100 >= int64_t{next_pct} * capacity) record(next_pct++);
  }
  r.wall_s = Seconds(Clock::now() - start);
  return r;
}

}  // namespace herd::sim
