// Fair shares by the two-step division of DESIGN.md: at each level of the queue tree a parent's share
// goes first to each child's deserved quota (capped by its demand and limit), then the rest is
// water-filled by over-quota weight, capped by demand and limit. Each resource is divided on its own.
#include <algorithm>
#include <cmath>
#include <functional>

#include "ctld/sched/internal.h"
#include "ctld/sched/usage.h"

namespace herd::sched::internal {
namespace {

int64_t& Component(model::Resources& r, int c) {
  return c == 0 ? r.gpu_milli : (c == 1 ? r.cpus : r.memory_mib);
}
int64_t Component(const model::Resources& r, int c) {
  return c == 0 ? r.gpu_milli : (c == 1 ? r.cpus : r.memory_mib);
}

// Divides `capacity` of one resource among `kids`; returns their shares.
std::vector<double> Divide(double capacity, const std::vector<const QueueView*>& kids,
                           const std::vector<double>& demand, int c) {
  size_t n = kids.size();
  std::vector<double> given(n), ceiling(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    int64_t limit = Component(kids[i]->limit, c);
    ceiling[i] = limit >= 0 ? std::min<double>(demand[i], limit) : demand[i];
    given[i] = std::min<double>(std::max<int64_t>(Component(kids[i]->deserved, c), 0), ceiling[i]);
    sum += given[i];
  }
  // Deserved quotas larger than the parent's share shrink in proportion.
  if (sum > capacity && sum > 0) {
    for (double& g : given) g *= capacity / sum;
    return given;
  }
  double rest = capacity - sum;
  std::vector<size_t> active;
  for (size_t i = 0; i < n; ++i) {
    if (given[i] < ceiling[i] && kids[i]->over_quota_weight > 0) active.push_back(i);
  }
  while (rest > 1e-9 && !active.empty()) {
    double weights = 0, step = INFINITY;
    for (size_t i : active) {
      weights += kids[i]->over_quota_weight;
      step = std::min(step, (ceiling[i] - given[i]) / kids[i]->over_quota_weight);
    }
    step = std::min(step, rest / weights);
    std::vector<size_t> still;
    for (size_t i : active) {
      given[i] += step * kids[i]->over_quota_weight;
      if (given[i] < ceiling[i] - 1e-9) still.push_back(i);
    }
    rest -= step * weights;
    active.swap(still);
  }
  return given;
}

}  // namespace

std::map<std::string, model::Resources> ComputeFairShares(
    const std::vector<QueueView>& unweighted, const std::map<std::string, model::Resources>& demand,
    const model::Resources& capacity) {
  // The surplus goes by over-quota weights that count each queue's recent usage (usage.h).
  std::vector<QueueView> queues = unweighted;
  const std::map<std::string, double> weights = UsageWeights(unweighted);
  for (QueueView& q : queues) q.over_quota_weight = weights.at(q.name);
  std::map<std::string, std::vector<const QueueView*>> children;
  std::map<std::string, const QueueView*> by_name;
  for (const QueueView& q : queues) by_name[q.name] = &q;
  for (const QueueView& q : queues) {
    children[by_name.count(q.parent) ? q.parent : std::string()].push_back(&q);
  }
  // Demand of a parent is the sum of its subtree.
  std::map<std::string, model::Resources> total;
  std::function<model::Resources(const QueueView*)> sum = [&](const QueueView* q) {
    model::Resources r;
    auto it = demand.find(q->name);
    if (it != demand.end()) r = it->second;
    for (const QueueView* k : children[q->name]) {
      if (k != q) r += sum(k);
    }
    return total[q->name] = r;
  };
  for (const QueueView* q : children[""]) sum(q);

  std::map<std::string, model::Resources> fair;
  std::function<void(const std::string&, const model::Resources&, int)> split =
      [&](const std::string& parent, const model::Resources& share, int depth) {
        const auto& kids = children[parent];
        if (kids.empty() || depth > 64) return;
        for (int c = 0; c < 3; ++c) {
          std::vector<double> d;
          for (const QueueView* k : kids) d.push_back(static_cast<double>(Component(total[k->name], c)));
          std::vector<double> got = Divide(static_cast<double>(Component(share, c)), kids, d, c);
          for (size_t i = 0; i < kids.size(); ++i) {
            Component(fair[kids[i]->name], c) = static_cast<int64_t>(std::floor(got[i] + 1e-6));
          }
        }
        for (const QueueView* k : kids) {
          if (k->name != parent) split(k->name, fair[k->name], depth + 1);
        }
      };
  split("", capacity, 0);
  return fair;
}

double DominantShare(const model::Resources& allocated, const model::Resources& fair) {
  double share = 0;
  for (int c = 0; c < 3; ++c) {
    int64_t a = Component(allocated, c), f = Component(fair, c);
    if (a <= 0) continue;
    share = std::max(share, f > 0 ? static_cast<double>(a) / static_cast<double>(f) : 1e9);
  }
  return share;
}

}  // namespace herd::sched::internal
