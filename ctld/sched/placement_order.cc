// Placement over every node without scanning every node (kFgd, kHerd): per shape, the nodes that
// could take one worker of it, kept in PlaceWorker's order as nodes change. A cycle places one job
// after another on the same few thousand nodes, and a placement changes one node: each placement
// then costs the nodes changed since the shape was last placed, not the whole cluster.
#include <cstdint>
#include <set>
#include <tuple>
#include <utility>

#include "ctld/sched/internal.h"

namespace herd::sched::internal {

// PlaceWorker's scan takes the Usable() node that can take the worker (FitsWorker, a score) with
// the least key, the lowest index among equal keys: the first Usable() node of this order.
std::pair<int, int> Cluster::FirstInOrder(const Shape& s, const PlaceOptions& o,
                                          ShapeCache& cache) {
  Order& order = cache.order;
  cache.frag.resize(nodes.size());
  auto refresh = [&](int i) {
    if (order.version[i] == version_[i]) return;  // already as it is
    order.version[i] = version_[i];
    if (order.in[i]) order.nodes.erase({order.key[i], i});
    order.in[i] = 0;
    const NodeState& n = nodes[i];
    if (!n.schedulable || !FitsWorker(n, s)) return;
    const FragEntry& f = Answer(i, s, cache);
    if (f.score < 0) return;
    order.key[i] = {-f.score, f.restricted_demand, n.free_gpu_milli, n.free_cores_count,
                    n.free_memory_mib};
    order.slot[i] = f.slot;
    order.in[i] = 1;
    order.nodes.emplace(order.key[i], i);
  };
  if (order.generation != generation_) {
    order.generation = generation_;
    order.nodes.clear();
    order.key.assign(nodes.size(), {});
    order.slot.assign(nodes.size(), -1);
    order.in.assign(nodes.size(), 0);
    order.version.assign(nodes.size(), UINT64_MAX);
    for (size_t i = 0; i < nodes.size(); ++i) refresh(static_cast<int>(i));
  } else if (changed_.size() - order.seen > nodes.size()) {  // victim searches change nodes often
    for (size_t i = 0; i < nodes.size(); ++i) refresh(static_cast<int>(i));
  } else {
    for (size_t k = order.seen; k < changed_.size(); ++k) refresh(changed_[k]);
  }
  order.seen = changed_.size();
  for (const auto& entry : order.nodes) {
    if (Usable(nodes[entry.second], o)) return {entry.second, order.slot[entry.second]};
  }
  return {-1, -1};
}

}  // namespace herd::sched::internal
