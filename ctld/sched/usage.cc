// The arithmetic of time-decayed fair share (usage.h).
#include "ctld/sched/usage.h"

#include <algorithm>
#include <cmath>

namespace herd::sched {

double DecayUsage(double usage, double gpus, int64_t elapsed_s, int64_t half_life_s) {
  if (half_life_s <= 0) return 0;
  if (elapsed_s <= 0) return usage;
  // x = elapsed in half-lives; what is kept is 2^-x (exactly 0.5 at one half-life). The use during
  // the interval, decayed from each second to its end, integrates to gpus x h/ln2 x (1 - 2^-x);
  // expm1 keeps it exact for intervals far shorter than the half-life.
  const double x = static_cast<double>(elapsed_s) / static_cast<double>(half_life_s);
  const double kept = std::exp2(-x);
  const double added = std::max(gpus, 0.0) * static_cast<double>(half_life_s) / std::log(2.0) *
                       -std::expm1(-x * std::log(2.0));
  return std::max(usage, 0.0) * kept + added;
}

std::map<std::string, double> UsageWeights(const std::vector<QueueView>& queues) {
  std::map<std::string, const QueueView*> by_name;
  for (const QueueView& q : queues) by_name[q.name] = &q;
  // Siblings by parent, as ComputeFairShares groups them (an unknown parent is the root).
  std::map<std::string, std::vector<const QueueView*>> children;
  for (const QueueView& q : queues) {
    children[by_name.count(q.parent) ? q.parent : std::string()].push_back(&q);
  }
  std::map<std::string, double> out;
  for (const auto& [parent, kids] : children) {
    double usage = 0, weights = 0;
    for (const QueueView* k : kids) {
      usage += std::max(k->usage, 0.0);
      weights += std::max(k->over_quota_weight, 0.0);
    }
    for (const QueueView* k : kids) {
      double w = k->over_quota_weight;
      if (usage > 0 && weights > 0 && w > 0) {
        // Capped so that the heaviest user keeps a weight above 0: it still takes what its
        // siblings do not want (water-filling skips queues of weight 0).
        const double ratio = (std::max(k->usage, 0.0) / usage) / (w / weights);
        w *= std::exp2(-std::min(ratio, 60.0));
      }
      out[k->name] = w;
    }
  }
  return out;
}

}  // namespace herd::sched
