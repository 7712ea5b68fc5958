// Placement of whole jobs: one worker, or a gang into the fullest switch or rack that holds it.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "ctld/sched/internal.h"

namespace herd::sched::internal {

std::optional<std::vector<model::WorkerPlacement>> Cluster::Place(const Shape& s,
                                                                  const PlaceOptions& o) {
  if (s.workers <= 1) {
    auto w = PlaceWorker(s, o, o.only);
    if (!w) return std::nullopt;
    return std::vector<model::WorkerPlacement>{*w};
  }
  return PlaceGang(s, o);
}

// A gang goes whole into the fullest switch that holds it, else the fullest rack, else anywhere.
std::optional<std::vector<model::WorkerPlacement>> Cluster::PlaceGang(const Shape& s,
                                                                      const PlaceOptions& o) {
  auto try_nodes = [&](const std::vector<int>* candidates) -> std::optional<std::vector<model::WorkerPlacement>> {
    std::vector<model::WorkerPlacement> done;
    for (int w = 0; w < s.workers; ++w) {
      auto p = PlaceWorker(s, o, candidates);
      if (!p) {
        ReleaseAll(done, s.gpu_memory_mib);
        return std::nullopt;
      }
      done.push_back(*p);
    }
    return done;
  };
  // kFgd, kHerd: when no node the gang may use can take one worker, no group can (and trying a
  // group draws nothing): the answer is known without building the groups.
  if ((o.policy == Placement::kFgd || o.policy == Placement::kHerd) && !Swapped() &&
      FirstInOrder(s, o, shapes_[s]).first < 0) {
    return std::nullopt;
  }
  if (!labels_built_) {
    labels_built_ = true;
    for (const char* label : {"switch", "rack"}) {
      std::map<std::string, std::vector<int>> groups;
      for (size_t i = 0; i < nodes.size(); ++i) {
        auto it = nodes[i].view->labels.find(label);
        if (it != nodes[i].view->labels.end()) groups[it->second].push_back(static_cast<int>(i));
      }
      label_groups_[label].assign(groups.begin(), groups.end());
    }
  }
  std::set<int> allowed;
  if (o.only) allowed.insert(o.only->begin(), o.only->end());
  // Random placement draws a number per worker tried, so every group must be tried to keep the
  // draws; other policies skip the groups that cannot hold the gang (trying changes nothing).
  bool skip = o.policy != Placement::kRandom;
  for (const char* label : {"switch", "rack"}) {
    std::vector<std::vector<int>> groups;
    std::vector<std::tuple<int64_t, const std::string*, size_t>> order;  // (free, name, group)
    for (const auto& [name, all] : label_groups_[label]) {
      std::vector<int> members;
      int64_t free = 0, fit = 0;
      for (int i : all) {
        if ((o.only && !allowed.count(i)) || !Usable(nodes[i], o)) continue;
        members.push_back(i);
        free += nodes[i].free_gpu_milli;
        if (skip) fit += MaxWorkers(nodes[i], s);
      }
      if (members.empty()) continue;
      if (skip && fit < s.workers) continue;
      order.push_back({o.policy == Placement::kSpread ? -free : free, &name, groups.size()});
      groups.push_back(std::move(members));
    }
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return std::tie(std::get<0>(a), *std::get<1>(a)) < std::tie(std::get<0>(b), *std::get<1>(b));
    });
    for (const auto& [free, name, g] : order) {
      if (auto p = try_nodes(&groups[g])) return p;
    }
  }
  return try_nodes(o.only);
}

int64_t Cluster::MaxWorkers(const NodeState& n, const Shape& s) const {
  int64_t fit = INT64_MAX;
  if (s.WholeGpus() > 0) fit = n.whole_free / s.WholeGpus();
  if (s.Fractional()) fit = n.free_gpu_milli / s.gpu_milli;
  if (s.cpus > 0) fit = std::min(fit, n.free_cores_count / s.cpus);
  if (s.memory_mib > 0) fit = std::min(fit, n.free_memory_mib / s.memory_mib);
  return fit == INT64_MAX ? 1 << 20 : fit;
}

}  // namespace herd::sched::internal
