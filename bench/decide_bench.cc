// Time of one Decide() on a large cluster: 1000 nodes x 8 GPUs about 70% allocated by a mix of
// running jobs, and 10,000 (or 100,000) pending jobs of 20 request shapes across 12 projects; and
// 4000 nodes with every GPU taken and 140,000 pending, either of those 20 shapes or all of one
// shape (1 GPU, 1 core, 1 GiB in one project, as bench/controller/scale submits).
// Arguments: placement policy, pending jobs, nodes, % of GPUs taken, one shape (1) or the mix (0).
// Run: build/bin/decide_bench --benchmark_repetitions=3
// HERD_DECIDE_DUMP=DIR writes every decision of each case (starts, preemptions, reservations, every
// pending reason with all its fields, queue shares) to DIR/<case>.txt, in a stable text form, so
// that two builds can be checked to decide alike: diff -r the two directories.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "ctld/sched/scheduler.h"
#include "ctld/sched/snapshot_builder.h"

namespace herd::sched {
namespace {

struct JobShape {
  int workers;
  int64_t gpu_milli, cpus, memory_mib;
  const char* job_class;
};

constexpr JobShape kShapes[] = {
    {1, 1000, 8, 65536, "train"},    {1, 2000, 16, 131072, "train"}, {1, 4000, 32, 262144, "train"},
    {1, 8000, 64, 524288, "train"},  {2, 8000, 64, 524288, "train"}, {4, 8000, 64, 524288, "train"},
    {1, 500, 4, 16384, "train"},     {1, 250, 2, 8192, "interactive"}, {1, 1000, 8, 32768, "interactive"},
    {1, 2000, 8, 65536, "interactive"}, {1, 0, 16, 32768, "train"},  {1, 0, 4, 8192, "interactive"},
    {1, 1000, 4, 16384, "inference"}, {1, 500, 4, 16384, "inference"}, {1, 3000, 24, 196608, "train"},
    {1, 6000, 48, 393216, "train"},  {8, 8000, 64, 524288, "train"}, {1, 1000, 16, 131072, "train"},
    {1, 750, 6, 24576, "train"},     {2, 4000, 32, 262144, "train"},
};

uint64_t Next(uint64_t& s) {
  s = s * 6364136223846793005ull + 1442695040888963407ull;
  return s >> 33;
}

Snapshot BigSnapshot(int pending, int nodes, int fill_pct, bool one_shape) {
  Snapshot snap;
  snap.now = 1'000'000;
  snap.classes = BuiltinClasses();
  snap.queues.push_back({"research", "", {4'000'000, 64000, 0}, {-1, -1, -1}, 1, false});
  snap.queues.push_back({"product", "", {2'000'000, 32000, 0}, {-1, -1, -1}, 1, false});
  for (int p = 0; p < 12; ++p) {
    snap.queues.push_back({"p" + std::to_string(p), p < 8 ? "research" : "product",
                           {400'000, 6400, 0}, {p == 3 ? 1'200'000 : -1, -1, -1}, 1.0 + p % 3, true});
  }
  for (int n = 0; n < nodes; ++n) {
    NodeFacts v;
    v.name = "node" + std::to_string(n);
    for (int g = 0; g < 8; ++g) v.gpus.push_back({g, 81920, g / 4, g / 2, "A100"});
    for (int c = 0; c < 128; ++c) v.cores_by_numa[c / 64].push_back(c);
    v.memory_mib = 2 * 1024 * 1024;
    v.labels = {{"rack", "r" + std::to_string(n / 40)}, {"switch", "s" + std::to_string(n / 10)}};
    for (int s = 0; s < 4; ++s) v.nic_by_switch[s] = "mlx5_" + std::to_string(s);
    snap.nodes.push_back(FreeNode(v));
  }
  // Running jobs fill about fill_pct % of the GPUs: whole-GPU jobs and some fractional ones (one
  // GPU each with one_shape).
  uint64_t rng = 42;
  model::JobId id = 1;
  const NodeIndex index = IndexOf(snap.nodes);
  for (size_t n = 0; n < snap.nodes.size(); ++n) {
    int g = 0;
    while (g < 8 && static_cast<int>(Next(rng) % 100) < fill_pct) {
      const NodeView& v = snap.nodes[n];
      JobFacts job;
      job.id = id++;
      job.queue = "p" + std::to_string(one_shape ? 0 : Next(rng) % 12);
      job.job_class = "train";
      model::WorkerPlacement w;
      w.node = v.name;
      bool fraction = !one_shape && Next(rng) % 5 == 0;
      int take = fraction || one_shape ? 1
                                       : std::min<int>(8 - g, 1 + static_cast<int>(Next(rng) % 4));
      job.request.gpu_milli = fraction ? 500 : 1000 * take;
      job.request.cpus = 4 * take;
      job.request.memory_mib = 16384 * take;
      w.gpu_milli_each = fraction ? 500 : 1000;
      for (int k = 0; k < take; ++k, ++g) w.gpus.push_back(g);
      const std::vector<int>& cores = v.free_cores_by_numa.at(w.gpus.front() / 4);
      w.cores.assign(cores.begin(), cores.begin() + job.request.cpus);
      w.memory_mib = job.request.memory_mib;
      const int64_t start = snap.now - static_cast<int64_t>(Next(rng) % 7200);
      job.submit_time = start - 60;
      AddRunning(snap, index, RunningOf(std::move(job), {std::move(w)}, start));
    }
  }
  for (int j = 0; j < pending; ++j) {
    static constexpr JobShape kOne = {1, 1000, 1, 1024, "train"};
    const JobShape& s = one_shape ? kOne : kShapes[Next(rng) % 20];
    JobFacts job;
    job.id = id++;
    job.queue = "p" + std::to_string(one_shape ? 0 : Next(rng) % 12);
    job.job_class = s.job_class;
    job.request.workers = s.workers;
    job.request.gpu_milli = s.gpu_milli;
    job.request.cpus = s.cpus;
    job.request.memory_mib = s.memory_mib;
    job.submit_time = snap.now - 20000 + int64_t{j} * 10000 / pending;  // over 10,000 s
    const int64_t since = job.submit_time;
    snap.pending.push_back(PendingOf(std::move(job), since));
  }
  return snap;
}

void Put(std::ostream& o, const model::Resources& r) {
  o << r.gpu_milli << "/" << r.cpus << "/" << r.memory_mib;
}

void Put(std::ostream& o, const model::WorkerPlacement& w) {
  o << " " << w.node << "[";
  for (int g : w.gpus) o << g << ",";
  o << "]x" << w.gpu_milli_each << " cores=";
  for (int c : w.cores) o << c << ",";
  o << " mem=" << w.memory_mib << " nic=" << w.nic;
}

// Every field of `d`, one decision a line.
void Dump(const Decisions& d, std::ostream& o) {
  for (const StartDecision& st : d.starts) {
    o << "start " << st.id;
    for (const auto& w : st.placement) Put(o, w);
    o << "\n";
  }
  for (const PreemptDecision& p : d.preemptions) {
    o << "preempt " << p.id << " for " << p.for_job << " " << EvictionKindName(p.kind) << " "
      << p.project << "|" << p.job_class << "|" << p.priority << "|" << p.below_deserved << "|"
      << p.gpu_type << "|" << p.gpu_milli << "|" << p.node << " room";
    for (const auto& w : p.room) Put(o, w);
    o << " (" << EvictionText(p) << ")\n";
  }
  for (const ReserveDecision& r : d.reservations) {
    o << "reserve " << r.id;
    for (const std::string& n : r.nodes) o << " " << n;
    o << "\n";
  }
  for (const auto& [id, r] : d.pending_reasons) {
    o << "reason " << id << " " << static_cast<int>(r.code) << "|" << r.queue << "|" << r.department
      << "|" << r.other_queue << "|" << r.job_class << "|" << r.gpu_types << "|" << r.other_types
      << "|" << r.target << "|" << r.job << "|" << r.component << "|" << r.amount << "|" << r.used
      << "|" << r.need << "|" << r.most_free << "|" << r.count << "|" << r.workers << "|";
    Put(o, r.per_worker);
    o << "|" << r.holding << " (" << model::ReasonText(r) << ")\n";
  }
  for (const QueueShare& q : d.shares) {
    o << "share " << q.name;
    for (const model::Resources* r :
         {&q.deserved, &q.limit, &q.fair_share, &q.allocated, &q.pending_demand}) {
      o << " ";
      Put(o, *r);
    }
    o << " usage=" << q.usage << " weight=" << q.weight;
    for (const auto* m : {&q.by_type, &q.by_pool}) {
      for (const auto& [t, v] : *m) {
        o << " " << t << "=" << v.deserved << "/" << v.limit << "/" << v.fair_share << "/"
          << v.allocated;
      }
    }
    o << "\n";
  }
}

void BM_Decide(benchmark::State& state) {
  static std::map<std::vector<int64_t>, Snapshot> snaps;
  const int pending = static_cast<int>(state.range(1)), nodes = static_cast<int>(state.range(2));
  const int fill = static_cast<int>(state.range(3));
  const bool one_shape = state.range(4) != 0;
  const std::vector<int64_t> key = {pending, nodes, fill, one_shape};
  if (!snaps.count(key)) snaps[key] = BigSnapshot(pending, nodes, fill, one_shape);
  const Snapshot& snap = snaps[key];
  Policy policy;
  policy.placement = static_cast<Placement>(state.range(0));
  size_t starts = 0, preemptions = 0;
  for (auto _ : state) {
    Decisions d = Decide(snap, policy);
    starts = d.starts.size();
    preemptions = d.preemptions.size();
    benchmark::DoNotOptimize(d);
  }
  if (const char* dir = std::getenv("HERD_DECIDE_DUMP"); dir != nullptr && *dir != '\0') {
    std::string name = "decide";
    for (int a = 0; a < 5; ++a) name += "_" + std::to_string(state.range(a));
    std::ofstream out(std::string(dir) + "/" + name + ".txt");
    Dump(Decide(snap, policy), out);
  }
  state.SetLabel(std::string(PlacementName(policy.placement)));
  state.counters["starts"] = static_cast<double>(starts);
  state.counters["preemptions"] = static_cast<double>(preemptions);
  state.counters["running"] = static_cast<double>(snap.running.size());
  state.counters["pending"] = static_cast<double>(snap.pending.size());
}
BENCHMARK(BM_Decide)
    ->Args({static_cast<int>(Placement::kHerd), 10'000, 1000, 70, 0})
    ->Args({static_cast<int>(Placement::kFgd), 10'000, 1000, 70, 0})
    ->Args({static_cast<int>(Placement::kHerd), 100'000, 1000, 70, 0})
    ->Args({static_cast<int>(Placement::kHerd), 140'000, 4000, 100, 0})
    ->Args({static_cast<int>(Placement::kHerd), 140'000, 4000, 100, 1})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace herd::sched
