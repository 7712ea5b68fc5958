// The FGD scorer of placement: a node's fragmentation for the target workload, by the published
// measure (Placement::kFgd) or herd's (Placement::kHerd). Used by placement.cc only.
// Thread-safety: const after construction.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "ctld/sched/internal.h"

namespace herd::sched::internal {

// Fragmentation gradient descent (Weng et al., ATC'23). The target workload is Snapshot::workload,
// else the worker shapes of this snapshot's pending and running jobs (the 32 most common). A node's
// fragmentation for a shape is the free GPU share that shape cannot use there (all of it when the
// shape needs no GPU, may not use the model, or its cores or memory do not fit); a placement is
// scored by how much it changes the node's weighted fragmentation (only that node's changes).
//
// herd's measure (`herd` true) adds two things to the published one. Cores: a whole-GPU shape
// also loses the usable GPUs that the node's free cores and memory cannot feed (8 free GPUs with
// cores for 2 workers of a 1-GPU shape strand 6 GPUs for it; the published measure counts none
// until not even one worker fits). GPU models: each model carries the demand that the target
// workload's model-restricted shapes put on it, as a share of the capacity of the models each
// allows (RestrictedDemand); on equal scores a job with GPUs takes the node whose models that
// demand needs least, before the fullest node.
class Fgd {
 public:
  Fgd(const Snapshot& snapshot, bool herd) : herd_(herd) {
    double total = 0;
    if (!snapshot.workload.empty()) {
      for (const WorkloadShape& w : snapshot.workload) {
        if (w.weight <= 0) continue;
        shapes_.push_back({w.gpu_milli, w.cpus, w.memory_mib, w.gpu_models, w.weight});
        total += w.weight;
      }
    } else {
      // Counts are whole numbers (exact in a double): a run of jobs of one shape is counted
      // first and added to the map once.
      using Key = std::tuple<int64_t, int64_t, int64_t, std::vector<std::string>>;
      std::map<Key, double> counts;
      const Request* run = nullptr;
      const std::vector<std::string>* run_model = nullptr;
      double run_n = 0;
      auto flush = [&] {
        if (run == nullptr) return;
        counts[{run->gpu_milli, run->cpus, run->memory_mib, *run_model}] += run_n;
      };
      const std::vector<std::string> none;
      auto add = [&](const Request& r, const std::vector<std::string>& gpu_model) {
        if (run == nullptr || r.gpu_milli != run->gpu_milli || r.cpus != run->cpus ||
            r.memory_mib != run->memory_mib || gpu_model != *run_model) {
          flush();
          run = &r, run_model = &gpu_model, run_n = 0;
        }
        run_n += std::max(r.workers, 1);
      };
      for (const PendingJob& j : snapshot.pending) add(j.request, j.gpu_models);
      for (const RunningJob& j : snapshot.running) add(j.request, none);
      flush();
      std::vector<std::pair<double, Key>> sorted;
      for (const auto& [shape, n] : counts) sorted.push_back({-n, shape});
      std::sort(sorted.begin(), sorted.end());
      for (size_t i = 0; i < sorted.size() && i < 32; ++i) {
        const auto& [gpu, cpus, mem, models] = sorted[i].second;
        shapes_.push_back({gpu, cpus, mem, models, -sorted[i].first});
        total += -sorted[i].first;
      }
    }
    for (Load& l : shapes_) l.weight /= total;
    if (!herd_) return;
    std::map<std::string, double> capacity;
    for (const NodeView& v : snapshot.nodes) {
      for (const GpuSlot& g : v.gpus) capacity[g.model] += 1000;
    }
    for (const Load& l : shapes_) {
      if (l.models.empty() || l.gpu <= 0) continue;
      double allowed = 0;
      for (const std::string& m : l.models) {
        auto it = capacity.find(m);
        if (it != capacity.end()) allowed += it->second;
      }
      if (allowed <= 0) continue;
      for (const std::string& m : l.models) {
        demand_[m] += l.weight * static_cast<double>(l.gpu) / allowed;
      }
    }
  }

  // herd: the mean over the node's GPUs of the restricted demand on their model; 0 for fgd.
  double RestrictedDemand(const NodeState& node) const {
    if (demand_.empty() || node.gpus.empty()) return 0;
    double sum = 0;
    for (const GpuSlot& g : node.gpus) {
      auto it = demand_.find(g.model);
      if (it != demand_.end()) sum += it->second;
    }
    return sum / static_cast<double>(node.gpus.size());
  }

  // Weighted fragmentation (GPU milli) of `node` if its GPUs had `free` milli free (one per slot
  // of node.gpus) and `cores` / `memory` were free.
  double Fragmentation(const NodeState& node, const int64_t* free, int64_t cores, int64_t memory) const {
    const size_t n = node.gpus.size();
    int64_t idle = 0;
    for (size_t g = 0; g < n; ++g) idle += free[g];
    if (idle == 0) return 0;
    double sum = 0;
    for (const Load& s : shapes_) {
      int64_t frag = idle;
      if (s.gpu > 0 && cores >= s.cpus && memory >= s.mem) {
        int64_t need = std::min<int64_t>(s.gpu, 1000), lost = 0;
        int64_t k = s.gpu >= 1000 ? (s.gpu + 999) / 1000 : 1, usable = 0, usable_milli = 0;
        for (size_t g = 0; g < n; ++g) {
          bool ok = free[g] >= need &&
                    (s.models.empty() ||
                     std::find(s.models.begin(), s.models.end(), node.gpus[g].model) != s.models.end());
          if (ok) {
            ++usable;
            usable_milli += free[g];
          } else {
            lost += free[g];
          }
        }
        if (usable >= k) frag = lost;
        if (usable >= k && herd_ && s.gpu >= 1000) {  // usable GPUs the cores / memory cannot feed
          const int64_t workers = usable / k;
          int64_t fed = workers;
          if (s.cpus > 0) fed = std::min(fed, cores / s.cpus);
          if (s.mem > 0) fed = std::min(fed, memory / s.mem);
          frag += usable_milli * (workers - fed) / workers;
        }
      }
      sum += s.weight * static_cast<double>(frag);
    }
    return sum;
  }

 private:
  struct Load {
    int64_t gpu, cpus, mem;
    std::vector<std::string> models;
    double weight;
  };
  std::vector<Load> shapes_;
  bool herd_;
  std::map<std::string, double> demand_;  // herd: per GPU model (RestrictedDemand)
};

}  // namespace herd::sched::internal
