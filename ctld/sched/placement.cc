// Placement: where one worker or a whole gang goes, for each Placement policy, and the working copy
// of the cluster that placements change during one cycle.
#include <algorithm>
#include <climits>
#include <cmath>
#include <set>
#include <tuple>

#include "ctld/sched/internal.h"

#include "common/model/units.h"

namespace herd::sched::internal {

Shape Shape::Of(const model::JobSpec& spec, const std::string& gpu_model) {
  Shape s;
  s.workers = std::max(spec.workers, 1);
  s.gpu_milli = std::max<int64_t>(spec.gpu_milli, 0);
  s.gpu_memory_mib = std::max<int64_t>(spec.gpu_memory_mib, 0);
  s.cpus = std::max<int64_t>(spec.cpus, 0);
  s.memory_mib = std::max<int64_t>(spec.memory_mib, 0);
  s.gpu_model = gpu_model;
  return s;
}

int64_t GpuMemoryTaken(const GpuSlot& gpu, int64_t milli, int64_t requested_mib) {
  if (milli >= 1000) return gpu.memory_mib;
  return requested_mib > 0 ? requested_mib : gpu.memory_mib * milli / 1000;
}

std::string GpuText(int64_t milli) {
  return model::FormatGpuMilli(milli) + (milli == 1000 ? " GPU" : " GPUs");
}

void NodeState::Refresh() {
  free_cores_count = 0;
  for (const auto& [numa, cores] : free_cores) free_cores_count += static_cast<int64_t>(cores.size());
  free_gpu_milli = 0;
  whole_free = 0;
  for (const GpuSlot& g : gpus) {
    free_gpu_milli += g.free_milli;
    if (g.free_milli >= 1000) ++whole_free;
  }
}

namespace {

bool ModelOk(const GpuSlot& g, const Shape& s) { return s.gpu_model.empty() || g.model == s.gpu_model; }

bool WholeEligible(const GpuSlot& g, const Shape& s) {
  return g.free_milli >= 1000 && ModelOk(g, s) &&
         (s.gpu_memory_mib == 0 || g.memory_mib >= s.gpu_memory_mib);
}

bool FractionEligible(const GpuSlot& g, const Shape& s) {
  return g.free_milli >= s.gpu_milli && ModelOk(g, s) &&
         g.free_memory_mib >= GpuMemoryTaken(g, s.gpu_milli, s.gpu_memory_mib);
}

// The best-fitting GPU for a fractional worker: least share, then least memory left; -1 if none.
int BestFitGpu(const NodeState& node, const Shape& s) {
  int best = -1;
  std::pair<int64_t, int64_t> best_key;
  for (size_t i = 0; i < node.gpus.size(); ++i) {
    const GpuSlot& g = node.gpus[i];
    if (!FractionEligible(g, s)) continue;
    std::pair<int64_t, int64_t> key{g.free_milli - s.gpu_milli,
                                    g.free_memory_mib - GpuMemoryTaken(g, s.gpu_milli, s.gpu_memory_mib)};
    if (best < 0 || key < best_key) best = static_cast<int>(i), best_key = key;
  }
  return best;
}

// Whole GPUs with locality: the fullest PCIe switch that still has k free, else the fullest NUMA
// node, else whole switches first from the NUMA nodes with most free GPUs.
std::vector<int> PickWholeGpus(const NodeState& node, const Shape& s, bool locality) {
  int k = s.WholeGpus();
  std::vector<int> eligible;
  for (size_t i = 0; i < node.gpus.size(); ++i) {
    if (WholeEligible(node.gpus[i], s)) eligible.push_back(static_cast<int>(i));
  }
  if (static_cast<int>(eligible.size()) < k) return {};
  if (!locality) return std::vector<int>(eligible.begin(), eligible.begin() + k);
  auto group_by = [&](auto key) {
    std::map<int, std::vector<int>> groups;
    for (int i : eligible) {
      int g = key(node.gpus[i]);
      if (g >= 0) groups[g].push_back(i);
    }
    return groups;
  };
  for (auto groups : {group_by([](const GpuSlot& g) { return g.pcie_switch; }),
                      group_by([](const GpuSlot& g) { return g.numa; })}) {
    const std::vector<int>* best = nullptr;
    for (const auto& [id, members] : groups) {
      if (static_cast<int>(members.size()) >= k && (!best || members.size() < best->size())) {
        best = &members;
      }
    }
    if (best) return std::vector<int>(best->begin(), best->begin() + k);
  }
  auto numa_groups = group_by([](const GpuSlot& g) { return g.numa; });
  auto switch_groups = group_by([](const GpuSlot& g) { return g.pcie_switch; });
  auto size_of = [](const std::map<int, std::vector<int>>& m, int key) {
    auto it = m.find(key);
    return it == m.end() ? 0 : static_cast<int>(it->second.size());
  };
  std::vector<int> order = eligible;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const GpuSlot &x = node.gpus[a], &y = node.gpus[b];
    return std::make_tuple(-size_of(numa_groups, x.numa), x.numa, -size_of(switch_groups, x.pcie_switch),
                           x.pcie_switch) < std::make_tuple(-size_of(numa_groups, y.numa), y.numa,
                                                            -size_of(switch_groups, y.pcie_switch),
                                                            y.pcie_switch);
  });
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace

std::optional<model::WorkerPlacement> PlanInNode(const NodeState& node, const Shape& s,
                                                 Placement policy, const std::vector<int>* forced) {
  if (node.free_memory_mib < s.memory_mib || node.free_cores_count < s.cpus) return std::nullopt;
  model::WorkerPlacement w;
  w.node = node.view->name;
  w.memory_mib = s.memory_mib;
  if (forced) {
    w.gpus = *forced;
  } else if (s.WholeGpus() > 0) {
    w.gpus = PickWholeGpus(node, s, policy != Placement::kBestFit && policy != Placement::kRandom);
    if (w.gpus.empty()) return std::nullopt;
  } else if (s.Fractional()) {
    int pick = -1;
    if (policy == Placement::kSpread || policy == Placement::kRandom) {
      for (size_t i = 0; i < node.gpus.size(); ++i) {
        if (!FractionEligible(node.gpus[i], s)) continue;
        if (pick < 0 || (policy == Placement::kSpread &&
                         node.gpus[i].free_milli > node.gpus[pick].free_milli)) {
          pick = static_cast<int>(i);
        }
      }
    } else {
      pick = BestFitGpu(node, s);
    }
    if (pick < 0) return std::nullopt;
    w.gpus = {pick};
  }
  if (!w.gpus.empty()) w.gpu_milli_each = s.Fractional() ? s.gpu_milli : 1000;
  // GPU index in the slot vector -> the GPU's own index.
  std::vector<int> numas;
  for (int& g : w.gpus) {
    const GpuSlot& slot = node.gpus[g];
    if (std::find(numas.begin(), numas.end(), slot.numa) == numas.end()) numas.push_back(slot.numa);
    g = slot.index;
  }
  // Cores: the GPUs' NUMA nodes first; a CPU-only worker packs into the fullest NUMA node that
  // holds it whole; the rest comes from the NUMA nodes with the most free cores.
  if (numas.empty() && s.cpus > 0) {
    const std::vector<int>* best = nullptr;
    int best_id = -1;
    for (const auto& [id, cores] : node.free_cores) {
      if (static_cast<int64_t>(cores.size()) >= s.cpus && (!best || cores.size() < best->size())) {
        best = &cores, best_id = id;
      }
    }
    if (best) numas.push_back(best_id);
  }
  std::vector<std::pair<int, int>> rest;  // (-free, numa)
  for (const auto& [id, cores] : node.free_cores) {
    if (std::find(numas.begin(), numas.end(), id) == numas.end()) {
      rest.push_back({-static_cast<int>(cores.size()), id});
    }
  }
  std::sort(rest.begin(), rest.end());
  for (const auto& r : rest) numas.push_back(r.second);
  for (int numa : numas) {
    auto it = node.free_cores.find(numa);
    if (it == node.free_cores.end()) continue;
    for (int c : it->second) {
      if (static_cast<int64_t>(w.cores.size()) >= s.cpus) break;
      w.cores.push_back(c);
    }
  }
  if (static_cast<int64_t>(w.cores.size()) < s.cpus) return std::nullopt;
  std::sort(w.cores.begin(), w.cores.end());
  // NIC: behind the same PCIe switch as the first GPU, else on its NUMA node.
  const NodeView& v = *node.view;
  if (!w.gpus.empty()) {
    const GpuSlot* first = nullptr;
    for (const GpuSlot& g : node.gpus) {
      if (g.index == w.gpus.front()) first = &g;
    }
    if (first && v.nic_by_switch.count(first->pcie_switch)) {
      w.nic = v.nic_by_switch.at(first->pcie_switch);
    } else if (first && v.nic_by_numa.count(first->numa)) {
      w.nic = v.nic_by_numa.at(first->numa);
    }
  } else if (!numas.empty() && v.nic_by_numa.count(numas.front())) {
    w.nic = v.nic_by_numa.at(numas.front());
  }
  return w;
}

// Fragmentation gradient descent (Weng et al., ATC'23). The workload is the distribution of worker
// shapes among this snapshot's pending and running jobs. A node's fragmentation for a shape is the
// free GPU share that shape cannot use there; a placement is scored by how much it increases the
// node's popularity-weighted fragmentation.
class Fgd {
 public:
  explicit Fgd(const Snapshot& snapshot) {
    std::map<std::tuple<int64_t, int64_t, int64_t>, double> counts;
    double total = 0;
    auto add = [&](const model::JobSpec& spec) {
      double n = std::max(spec.workers, 1);
      counts[{spec.gpu_milli, spec.cpus, spec.memory_mib}] += n;
      total += n;
    };
    for (const PendingJob& j : snapshot.pending) add(j.spec);
    for (const RunningJob& j : snapshot.running) add(j.spec);
    std::vector<std::pair<double, std::tuple<int64_t, int64_t, int64_t>>> sorted;
    for (const auto& [shape, n] : counts) sorted.push_back({-n, shape});
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < sorted.size() && i < 32; ++i) {
      const auto& [gpu, cpus, mem] = sorted[i].second;
      shapes_.push_back({gpu, cpus, mem, -sorted[i].first / total});
    }
  }

  // Popularity-weighted fragmentation of a node whose GPUs have `free_milli` free.
  double Fragmentation(const std::vector<int64_t>& free_milli, int64_t free_cores,
                       int64_t free_memory) const {
    int64_t idle = 0;
    int whole = 0;
    for (int64_t f : free_milli) idle += f, whole += f >= 1000;
    double sum = 0;
    for (const auto& s : shapes_) {
      int64_t frag = idle;
      int k = s.gpu >= 1000 ? static_cast<int>((s.gpu + 999) / 1000) : 0;
      bool fits = s.gpu > 0 && free_cores >= s.cpus && free_memory >= s.mem &&
                  (k == 0 || whole >= k);
      if (fits) {
        frag = 0;
        int64_t need = std::min<int64_t>(s.gpu, 1000);
        bool any = false;
        for (int64_t f : free_milli) {
          if (f < need) frag += f;
          else any = true;
        }
        if (!any) frag = idle;
      }
      sum += s.popularity * static_cast<double>(frag);
    }
    return sum;
  }

  // Increase of fragmentation when `node` takes one worker of `s` on the GPUs at `slots`.
  double Delta(const NodeState& node, const Shape& s, const std::vector<int>& slots) const {
    std::vector<int64_t> before;
    for (const GpuSlot& g : node.gpus) before.push_back(g.free_milli);
    std::vector<int64_t> after = before;
    for (int i : slots) after[i] -= s.Fractional() ? s.gpu_milli : 1000;
    return Fragmentation(after, node.free_cores_count - s.cpus, node.free_memory_mib - s.memory_mib) -
           Fragmentation(before, node.free_cores_count, node.free_memory_mib);
  }

 private:
  struct Load {
    int64_t gpu, cpus, mem;
    double popularity;
  };
  std::vector<Load> shapes_;
};

Cluster::Cluster(const Snapshot& snapshot, const Policy& policy)
    : rng_state_(policy.seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {
  nodes.reserve(snapshot.nodes.size());
  for (const NodeView& v : snapshot.nodes) {
    NodeState n;
    n.view = &v;
    n.gpus = v.gpus;
    n.free_cores = v.free_cores_by_numa;
    for (auto& [numa, cores] : n.free_cores) {
      std::sort(cores.begin(), cores.end());
      for (int c : cores) {
        if (c < 0) continue;
        if (static_cast<size_t>(c) >= n.core_numa.size()) n.core_numa.resize(c + 1, -1);
        n.core_numa[c] = numa;
      }
    }
    n.free_memory_mib = v.free_memory_mib;
    n.schedulable = v.schedulable;
    n.gpu_capacity_milli = 1000 * static_cast<int64_t>(v.gpus.size());
    n.Refresh();
    index_[v.name] = static_cast<int>(nodes.size());
    max_cores_ = std::max(max_cores_, v.total_cores);
    max_gpu_milli_ = std::max(max_gpu_milli_, n.gpu_capacity_milli);
    nodes.push_back(std::move(n));
  }
  version_.assign(nodes.size(), 0);
  for (size_t i = 0; i < nodes.size(); ++i) Index(static_cast<int>(i));
  for (const char* label : {"switch", "rack"}) {
    std::map<std::string, std::vector<int>> groups;
    for (size_t i = 0; i < nodes.size(); ++i) {
      auto it = nodes[i].view->labels.find(label);
      if (it != nodes[i].view->labels.end()) groups[it->second].push_back(static_cast<int>(i));
    }
    label_groups_[label].assign(groups.begin(), groups.end());
  }
  if (policy.placement == Placement::kFgd) fgd_ = new Fgd(snapshot);
}

void Cluster::Index(int i) {
  const NodeState& n = nodes[i];
  version_[i] = ++stamp_;
  by_free_.insert({n.free_gpu_milli, n.free_cores_count, n.free_memory_mib, i});
}

void Cluster::Unindex(int i) {
  const NodeState& n = nodes[i];
  by_free_.erase({n.free_gpu_milli, n.free_cores_count, n.free_memory_mib, i});
}

void Cluster::SwapNodes(std::vector<NodeState>& other) {
  std::swap(nodes, other);
  by_free_.clear();
  for (size_t i = 0; i < nodes.size(); ++i) Index(static_cast<int>(i));
}

Cluster::~Cluster() { delete fgd_; }

int Cluster::NodeIndex(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? -1 : it->second;
}

void Cluster::Apply(const model::WorkerPlacement& w, int64_t gpu_memory_mib) {
  int i = NodeIndex(w.node);
  if (i < 0) return;
  NodeState& n = nodes[i];
  Unindex(i);
  for (int gi : w.gpus) {
    for (GpuSlot& g : n.gpus) {
      if (g.index != gi) continue;
      g.free_milli -= w.gpu_milli_each;
      g.free_memory_mib -= GpuMemoryTaken(g, w.gpu_milli_each, gpu_memory_mib);
    }
  }
  for (int c : w.cores) {
    for (auto& [numa, cores] : n.free_cores) {
      auto it = std::lower_bound(cores.begin(), cores.end(), c);
      if (it != cores.end() && *it == c) {
        cores.erase(it);
        break;
      }
    }
  }
  n.free_memory_mib -= w.memory_mib;
  n.Refresh();
  Index(i);
}

void Cluster::Release(const model::WorkerPlacement& w, int64_t gpu_memory_mib) {
  int i = NodeIndex(w.node);
  if (i < 0) return;
  NodeState& n = nodes[i];
  Unindex(i);
  int numa = -1;
  for (int gi : w.gpus) {
    for (GpuSlot& g : n.gpus) {
      if (g.index != gi) continue;
      g.free_milli += w.gpu_milli_each;
      g.free_memory_mib += GpuMemoryTaken(g, w.gpu_milli_each, gpu_memory_mib);
      if (numa < 0) numa = g.numa;
    }
  }
  // The snapshot names only free cores; a core it does not name goes back to its worker's GPU
  // NUMA node (the best guess for a running job's cores).
  if (numa < 0 && !n.free_cores.empty()) numa = n.free_cores.begin()->first;
  for (int c : w.cores) {
    bool known = c >= 0 && static_cast<size_t>(c) < n.core_numa.size() && n.core_numa[c] >= 0;
    auto& cores = n.free_cores[known ? n.core_numa[c] : numa];
    cores.insert(std::lower_bound(cores.begin(), cores.end(), c), c);
  }
  n.free_memory_mib += w.memory_mib;
  n.Refresh();
  Index(i);
}

void Cluster::ApplyAll(const std::vector<model::WorkerPlacement>& p, int64_t gpu_memory_mib) {
  for (const auto& w : p) Apply(w, gpu_memory_mib);
}
void Cluster::ReleaseAll(const std::vector<model::WorkerPlacement>& p, int64_t gpu_memory_mib) {
  for (const auto& w : p) Release(w, gpu_memory_mib);
}

bool Cluster::Usable(const NodeState& node, const PlaceOptions& o) const {
  return node.schedulable && !node.held && (o.may_use_reserved || node.reserved_for == 0);
}

bool Cluster::FitsWorker(const NodeState& n, const Shape& s) const {
  if (n.free_memory_mib < s.memory_mib || n.free_cores_count < s.cpus) return false;
  if (s.WholeGpus() > 0) {
    if (n.whole_free < s.WholeGpus()) return false;
    if (s.gpu_model.empty() && s.gpu_memory_mib == 0) return true;
    int ok = 0;
    for (const GpuSlot& g : n.gpus) ok += WholeEligible(g, s);
    return ok >= s.WholeGpus();
  }
  if (s.Fractional()) {
    if (n.free_gpu_milli < s.gpu_milli) return false;
    for (const GpuSlot& g : n.gpus) {
      if (FractionEligible(g, s)) return true;
    }
    return false;
  }
  return true;
}

std::optional<model::WorkerPlacement> Cluster::PlaceWorker(const Shape& s, const PlaceOptions& o,
                                                           const std::vector<int>* candidates) {
  int best = -1;
  std::vector<int> fgd_slots;
  double best_score = 0;
  std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t> best_key;
  std::vector<int> feasible;
  // Bin packing of a fractional worker asks every node for its best-fitting GPU; a node's answer
  // stays valid until the node changes, and a placement changes only one node.
  std::vector<std::pair<uint64_t, int>>* fits = nullptr;
  if (o.policy == Placement::kHerd && s.Fractional()) {
    fits = &best_gpu_[s];
    if (fits->empty()) fits->assign(nodes.size(), {UINT64_MAX, -1});
  }
  int fraction_gpu = -1;
  auto consider = [&](int i) {
    const NodeState& n = nodes[i];
    if (!Usable(n, o)) return;
    if (fits) {  // FitsWorker() for a fractional worker, with the cached GPU
      if (n.free_memory_mib < s.memory_mib || n.free_cores_count < s.cpus ||
          n.free_gpu_milli < s.gpu_milli) {
        return;
      }
      auto& [version, gpu] = (*fits)[i];
      if (version != version_[i]) gpu = BestFitGpu(n, s), version = version_[i];
      if ((fraction_gpu = gpu) < 0) return;
    } else if (!FitsWorker(n, s)) {
      return;
    }
    switch (o.policy) {
      case Placement::kRandom:
        feasible.push_back(i);
        return;
      case Placement::kBestFit: {
        double score = 0.5 * static_cast<double>(n.free_cores_count - s.cpus) / max_cores_ +
                       0.5 * static_cast<double>(n.free_gpu_milli - s.gpu_milli * std::max(1, s.WholeGpus())) /
                           static_cast<double>(max_gpu_milli_);
        if (best < 0 || score < best_score - 1e-12) best = i, best_score = score;
        return;
      }
      case Placement::kFgd: {
        std::vector<std::vector<int>> options;
        if (s.Fractional()) {
          for (size_t g = 0; g < n.gpus.size(); ++g) {
            if (FractionEligible(n.gpus[g], s)) options.push_back({static_cast<int>(g)});
          }
        } else {
          std::vector<int> whole = PickWholeGpus(n, s, true);
          if (s.WholeGpus() > 0 && whole.empty()) return;
          options.push_back(whole);
        }
        for (const auto& slots : options) {
          double d = fgd_->Delta(n, s, slots);
          if (best < 0 || d < best_score - 1e-9) best = i, best_score = d, fgd_slots = slots;
        }
        return;
      }
      case Placement::kSpread: {
        std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t> key{
            -n.free_gpu_milli, -n.free_cores_count, -n.free_memory_mib, 0, 0};
        if (best < 0 || key < best_key) best = i, best_key = key;
        return;
      }
      case Placement::kHerd: {
        int64_t rem = 0, mem = 0;
        if (s.Fractional()) {
          int g = fraction_gpu;
          rem = n.gpus[g].free_milli - s.gpu_milli;
          mem = n.gpus[g].free_memory_mib - GpuMemoryTaken(n.gpus[g], s.gpu_milli, s.gpu_memory_mib);
        }
        std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t> key{
            rem, mem, n.free_gpu_milli, n.free_cores_count, n.free_memory_mib};
        if (best < 0 || key < best_key) best = i, best_key = key;
        return;
      }
    }
  };
  if (candidates) {
    for (int i : *candidates) consider(i);
  } else if (o.policy == Placement::kHerd && !s.Fractional()) {
    // The key of consider() is (0, 0, free GPU, cores, memory) here: the first fitting node in
    // by_free_ order is the one it would choose. A node needs at least the job's whole GPUs free.
    int64_t need = 1000 * static_cast<int64_t>(s.WholeGpus());
    for (auto it = by_free_.lower_bound({need, INT64_MIN, INT64_MIN, -1}); it != by_free_.end(); ++it) {
      int i = std::get<3>(*it);
      if (Usable(nodes[i], o) && FitsWorker(nodes[i], s)) {
        best = i;
        break;
      }
    }
  } else {
    for (size_t i = 0; i < nodes.size(); ++i) consider(static_cast<int>(i));
  }
  if (o.policy == Placement::kRandom && !feasible.empty()) {
    rng_state_ += 0x9E3779B97F4A7C15ull;  // splitmix64
    uint64_t z = rng_state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    best = feasible[(z ^ (z >> 31)) % feasible.size()];
  }
  if (best < 0) return std::nullopt;
  auto w = PlanInNode(nodes[best], s, o.policy,
                      o.policy == Placement::kFgd && !fgd_slots.empty() ? &fgd_slots : nullptr);
  if (w) Apply(*w, s.gpu_memory_mib);
  return w;
}

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
