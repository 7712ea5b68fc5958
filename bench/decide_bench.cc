// Time of one Decide() on a large cluster: 1000 nodes x 8 GPUs about 70% allocated by a mix of
// running jobs, and 10,000 (or 100,000) pending jobs of 20 request shapes across 12 projects.
// Arguments: placement policy, pending jobs. Run: build/bin/decide_bench --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <string>

#include "ctld/sched/scheduler.h"

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

Snapshot BigSnapshot(int pending) {
  Snapshot snap;
  snap.now = 1'000'000;
  snap.classes["train"] = {"train", 50, true, false, 600};
  snap.classes["interactive"] = {"interactive", 100, false, true, 0};
  snap.classes["inference"] = {"inference", 125, false, true, 0};
  snap.queues.push_back({"research", "", {4'000'000, 64000, 0}, {-1, -1, -1}, 1, false});
  snap.queues.push_back({"product", "", {2'000'000, 32000, 0}, {-1, -1, -1}, 1, false});
  for (int p = 0; p < 12; ++p) {
    snap.queues.push_back({"p" + std::to_string(p), p < 8 ? "research" : "product",
                           {400'000, 6400, 0}, {p == 3 ? 1'200'000 : -1, -1, -1}, 1.0 + p % 3, true});
  }
  for (int n = 0; n < 1000; ++n) {
    NodeView v;
    v.name = "node" + std::to_string(n);
    for (int g = 0; g < 8; ++g) v.gpus.push_back({g, 1000, 81920, 81920, g / 4, g / 2, "A100"});
    for (int c = 0; c < 128; ++c) v.free_cores_by_numa[c / 64].push_back(c);
    v.memory_mib = v.free_memory_mib = 2 * 1024 * 1024;
    v.total_cores = 128;
    v.labels = {{"rack", "r" + std::to_string(n / 40)}, {"switch", "s" + std::to_string(n / 10)}};
    for (int s = 0; s < 4; ++s) v.nic_by_switch[s] = "mlx5_" + std::to_string(s);
    snap.nodes.push_back(std::move(v));
  }
  // Running jobs fill about 70% of the GPUs: whole-GPU jobs and some fractional ones.
  uint64_t rng = 42;
  model::JobId id = 1;
  for (NodeView& v : snap.nodes) {
    int g = 0;
    while (g < 8 && Next(rng) % 10 < 7) {
      RunningJob r;
      r.id = id++;
      r.queue = "p" + std::to_string(Next(rng) % 12);
      r.job_class = "train";
      model::WorkerPlacement w;
      w.node = v.name;
      bool fraction = Next(rng) % 5 == 0;
      int take = fraction ? 1 : std::min<int>(8 - g, 1 + static_cast<int>(Next(rng) % 4));
      r.spec.gpu_milli = fraction ? 500 : 1000 * take;
      r.spec.cpus = 4 * take;
      r.spec.memory_mib = 16384 * take;
      w.gpu_milli_each = fraction ? 500 : 1000;
      for (int k = 0; k < take; ++k, ++g) {
        w.gpus.push_back(g);
        v.gpus[g].free_milli -= w.gpu_milli_each;
        v.gpus[g].free_memory_mib -= fraction ? 40960 : 81920;
      }
      for (int k = 0; k < r.spec.cpus; ++k) {
        auto& cores = v.free_cores_by_numa[w.gpus.front() / 4];
        w.cores.push_back(cores.front());
        cores.erase(cores.begin());
      }
      w.memory_mib = r.spec.memory_mib;
      v.free_memory_mib -= w.memory_mib;
      r.placement.push_back(w);
      r.start_time = snap.now - static_cast<int64_t>(Next(rng) % 7200);
      r.submit_time = r.start_time - 60;
      snap.running.push_back(std::move(r));
    }
  }
  for (int j = 0; j < pending; ++j) {
    const JobShape& s = kShapes[Next(rng) % 20];
    PendingJob p;
    p.id = id++;
    p.queue = "p" + std::to_string(Next(rng) % 12);
    p.job_class = s.job_class;
    p.spec.workers = s.workers;
    p.spec.gpu_milli = s.gpu_milli;
    p.spec.cpus = s.cpus;
    p.spec.memory_mib = s.memory_mib;
    p.spec.job_class = s.job_class;
    p.submit_time = snap.now - 20000 + int64_t{j} * 10000 / pending;  // over 10,000 s
    p.pending_since = p.submit_time;
    snap.pending.push_back(std::move(p));
  }
  return snap;
}

void BM_Decide(benchmark::State& state) {
  static std::map<int, Snapshot> snaps;
  int pending = static_cast<int>(state.range(1));
  if (!snaps.count(pending)) snaps[pending] = BigSnapshot(pending);
  const Snapshot& snap = snaps[pending];
  Policy policy;
  policy.placement = static_cast<Placement>(state.range(0));
  size_t starts = 0, preemptions = 0;
  for (auto _ : state) {
    Decisions d = Decide(snap, policy);
    starts = d.starts.size();
    preemptions = d.preemptions.size();
    benchmark::DoNotOptimize(d);
  }
  state.SetLabel(std::string(PlacementName(policy.placement)));
  state.counters["starts"] = static_cast<double>(starts);
  state.counters["preemptions"] = static_cast<double>(preemptions);
  state.counters["running"] = static_cast<double>(snap.running.size());
  state.counters["pending"] = static_cast<double>(snap.pending.size());
}
BENCHMARK(BM_Decide)
    ->Args({static_cast<int>(Placement::kHerd), 10'000})
    ->Args({static_cast<int>(Placement::kFgd), 10'000})
    ->Args({static_cast<int>(Placement::kHerd), 100'000})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace herd::sched
