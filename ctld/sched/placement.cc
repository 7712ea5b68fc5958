// Placement: where one worker goes, for each Placement policy, and the working copy of the cluster
// that placements change during one cycle (whole jobs and gangs: placement_gang.cc).
#include <algorithm>
#include <cmath>
#include <tuple>

#include "ctld/sched/internal.h"
#include "ctld/sched/placement_fgd.h"

#include "common/model/units.h"

namespace herd::sched::internal {

Shape Shape::Of(const Request& request, const std::vector<std::string>& gpu_models,
                const std::optional<std::vector<std::string>>& nodes) {
  Shape s;
  s.workers = std::max(request.workers, 1);
  s.gpu_milli = std::max<int64_t>(request.gpu_milli, 0);
  s.gpu_memory_mib = std::max<int64_t>(request.gpu_memory_mib, 0);
  s.cpus = std::max<int64_t>(request.cpus, 0);
  s.memory_mib = std::max<int64_t>(request.memory_mib, 0);
  s.gpu_models = gpu_models;
  std::sort(s.gpu_models.begin(), s.gpu_models.end());
  s.nodes = nodes;
  if (s.nodes) std::sort(s.nodes->begin(), s.nodes->end());
  return s;
}

int64_t GpuMemoryTaken(const GpuSlot& gpu, int64_t milli, int64_t requested_mib) {
  if (milli >= 1000) return gpu.memory_mib;
  return requested_mib > 0 ? requested_mib : gpu.memory_mib * milli / 1000;
}

std::string GpuText(int64_t milli) {
  return model::FormatGpuMilli(milli) + (milli == 1000 ? " GPU" : " GPUs");
}

NodeState NodeState::Of(const NodeView& v) {
  NodeState n;
  n.view = &v;
  n.gpus = v.gpus;
  n.free_memory_mib = v.free_memory_mib;
  n.schedulable = v.schedulable;
  n.gpu_capacity_milli = 1000 * static_cast<int64_t>(v.gpus.size());
  n.Refresh();
  return n;
}

std::map<int, std::vector<int>>& NodeState::MutableFreeCores() {
  if (!own_cores) {
    own_cores = view->free_cores_by_numa;
    for (auto& [numa, cores] : *own_cores) std::sort(cores.begin(), cores.end());
  }
  return *own_cores;
}

void NodeState::Refresh() {
  free_cores_count = 0;
  for (const auto& [numa, cores] : FreeCores()) free_cores_count += static_cast<int64_t>(cores.size());
  free_gpu_milli = 0;
  whole_free = 0;
  for (const GpuSlot& g : gpus) {
    free_gpu_milli += g.free_milli;
    if (g.free_milli >= 1000) ++whole_free;
  }
}

namespace {

bool ModelOk(const GpuSlot& g, const Shape& s) { return s.ModelOk(g.model); }

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

// FGD's published score of a fragmentation change: int(100 x sigmoid(-delta / 1000)).
int64_t FgdScore(double delta) { return static_cast<int64_t>(100.0 / (1.0 + std::exp(delta / 1000.0))); }

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
    w.gpus = PickWholeGpus(node, s, policy == Placement::kHerd || policy == Placement::kSpread);
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
    for (const auto& [id, cores] : node.FreeCores()) {
      if (static_cast<int64_t>(cores.size()) >= s.cpus && (!best || cores.size() < best->size())) {
        best = &cores, best_id = id;
      }
    }
    if (best) numas.push_back(best_id);
  }
  std::vector<std::pair<int, int>> rest;  // (-free, numa)
  for (const auto& [id, cores] : node.FreeCores()) {
    if (std::find(numas.begin(), numas.end(), id) == numas.end()) {
      rest.push_back({-static_cast<int>(cores.size()), id});
    }
  }
  std::sort(rest.begin(), rest.end());
  for (const auto& r : rest) numas.push_back(r.second);
  for (int numa : numas) {
    auto it = node.FreeCores().find(numa);
    if (it == node.FreeCores().end()) continue;
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

Cluster::Cluster(const Snapshot& snapshot, const Policy& policy)
    : rng_state_(policy.seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {
  nodes.reserve(snapshot.nodes.size());
  for (const NodeView& v : snapshot.nodes) {
    nodes.push_back(NodeState::Of(v));
    max_cores_ = std::max(max_cores_, v.total_cores);
    max_gpu_milli_ = std::max(max_gpu_milli_, nodes.back().gpu_capacity_milli);
  }
  version_.assign(nodes.size(), 0);
  if (policy.placement == Placement::kFgd || policy.placement == Placement::kHerd) {
    fgd_ = std::make_unique<Fgd>(snapshot, policy.placement == Placement::kHerd);
  }
}

std::vector<NodeState> Cluster::InitialNodes() const {
  std::vector<NodeState> out;
  out.reserve(nodes.size());
  for (const NodeState& n : nodes) out.push_back(NodeState::Of(*n.view));
  return out;
}

void Cluster::SwapNodes(std::vector<NodeState>& other) {
  std::swap(nodes, other);
  for (uint64_t& v : version_) v = ++stamp_;
  // Swapping back with the same vector puts back the nodes changed_ describes (nothing changes a
  // vector swapped out); any other swap leaves other nodes in place: a new generation.
  if (swapped_with_ == nullptr) {
    swapped_with_ = &other;
  } else if (swapped_with_ == &other) {
    swapped_with_ = nullptr;
  } else {
    swapped_with_ = nullptr;
    ++generation_;
  }
}

uint64_t Cluster::Draw() {
  rng_state_ += 0x9E3779B97F4A7C15ull;  // splitmix64
  uint64_t z = rng_state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Cluster::~Cluster() = default;

int Cluster::NodeIndex(const std::string& name) const {
  if (index_.empty()) {
    for (size_t i = 0; i < nodes.size(); ++i) index_[nodes[i].view->name] = static_cast<int>(i);
  }
  auto it = index_.find(name);
  return it == index_.end() ? -1 : it->second;
}

void Cluster::Apply(const model::WorkerPlacement& w, int64_t gpu_memory_mib) {
  int i = NodeIndex(w.node);
  if (i >= 0) ApplyAt(i, w, gpu_memory_mib);
}

void Cluster::ApplyAt(int i, const model::WorkerPlacement& w, int64_t gpu_memory_mib) {
  NodeState& n = nodes[i];
  version_[i] = ++stamp_;
  if (swapped_with_ == nullptr) changed_.push_back(i);
  for (int gi : w.gpus) {
    for (GpuSlot& g : n.gpus) {
      if (g.index != gi) continue;
      g.free_milli -= w.gpu_milli_each;
      g.free_memory_mib -= GpuMemoryTaken(g, w.gpu_milli_each, gpu_memory_mib);
    }
  }
  for (int c : w.cores) {
    for (auto& [numa, cores] : n.MutableFreeCores()) {
      auto it = std::lower_bound(cores.begin(), cores.end(), c);
      if (it != cores.end() && *it == c) {
        cores.erase(it);
        break;
      }
    }
  }
  n.free_memory_mib -= w.memory_mib;
  n.Refresh();
}

void Cluster::Release(const model::WorkerPlacement& w, int64_t gpu_memory_mib) {
  int i = NodeIndex(w.node);
  if (i < 0) return;
  NodeState& n = nodes[i];
  version_[i] = ++stamp_;
  if (swapped_with_ == nullptr) changed_.push_back(i);
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
  const auto& named = n.view->free_cores_by_numa;
  if (numa < 0 && !named.empty()) numa = named.begin()->first;
  auto& free = n.MutableFreeCores();
  for (int c : w.cores) {
    int home = numa;
    for (const auto& [id, cores] : named) {
      if (std::find(cores.begin(), cores.end(), c) != cores.end()) home = id;
    }
    auto& cores = free[home];
    cores.insert(std::lower_bound(cores.begin(), cores.end(), c), c);
  }
  n.free_memory_mib += w.memory_mib;
  n.Refresh();
}

std::vector<model::WorkerPlacement> Cluster::FreeParts(const model::WorkerPlacement& w,
                                                       int64_t gpu_memory_mib) const {
  std::vector<model::WorkerPlacement> parts(1);
  parts[0].node = w.node;
  parts[0].gpu_milli_each = w.gpu_milli_each;
  const int i = NodeIndex(w.node);
  if (i < 0) return {};
  const NodeState& n = nodes[i];
  for (int gi : w.gpus) {
    for (const GpuSlot& g : n.gpus) {
      if (g.index != gi || g.free_milli <= 0) continue;
      if (g.free_milli >= w.gpu_milli_each &&
          g.free_memory_mib >= GpuMemoryTaken(g, w.gpu_milli_each, gpu_memory_mib)) {
        parts[0].gpus.push_back(gi);
      } else {  // the rest of it is held by a job stopping
        parts.push_back({w.node, {gi}, std::min(g.free_milli, w.gpu_milli_each), {}, 0, ""});
      }
    }
  }
  for (int c : w.cores) {
    for (const auto& [numa, cores] : n.FreeCores()) {
      if (std::find(cores.begin(), cores.end(), c) != cores.end()) {
        parts[0].cores.push_back(c);
        break;
      }
    }
  }
  parts[0].memory_mib = std::clamp<int64_t>(n.free_memory_mib, 0, w.memory_mib);
  return parts;
}

bool Cluster::Free(const std::vector<model::WorkerPlacement>& p, int64_t gpu_memory_mib) {
  size_t applied = 0;
  bool free = true;
  for (; applied < p.size() && free; ++applied) {
    const std::vector<model::WorkerPlacement> parts = FreeParts(p[applied], gpu_memory_mib);
    free = parts.size() == 1 && parts[0].gpus.size() == p[applied].gpus.size() &&
           parts[0].cores.size() == p[applied].cores.size() &&
           parts[0].memory_mib == p[applied].memory_mib;
    if (free) Apply(p[applied], gpu_memory_mib);
  }
  if (!free) --applied;
  for (size_t k = 0; k < applied; ++k) Release(p[k], gpu_memory_mib);
  return free;
}

void Cluster::ApplyAll(const std::vector<model::WorkerPlacement>& p, int64_t gpu_memory_mib) {
  for (const auto& w : p) Apply(w, gpu_memory_mib);
}
void Cluster::ReleaseAll(const std::vector<model::WorkerPlacement>& p, int64_t gpu_memory_mib) {
  for (const auto& w : p) Release(w, gpu_memory_mib);
}

bool Cluster::Usable(const NodeState& node, const PlaceOptions& o) const {
  if (!node.schedulable || node.held) return false;
  if (o.shape != nullptr && !o.shape->NodeOk(node.view->name)) return false;
  if (node.reserved_for == 0 || o.ignore_reservations || node.reserved_for == o.job) return true;
  if (o.ends_at > 0 && o.ends_at <= node.reserved_start) return true;
  return o.quota_queue != nullptr && o.quota_queue != node.reserved_queue;
}

bool Cluster::FitsWorker(const NodeState& n, const Shape& s) const {
  if (n.free_memory_mib < s.memory_mib || n.free_cores_count < s.cpus) return false;
  if (s.WholeGpus() > 0) {
    if (n.whole_free < s.WholeGpus()) return false;
    if (s.gpu_models.empty() && s.gpu_memory_mib == 0) return true;
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

Cluster::FragEntry Cluster::FragChoice(int i, const Shape& s) const {
  const NodeState& n = nodes[i];
  int64_t free_buf[16];
  std::vector<int64_t> free_vec;
  int64_t* free = free_buf;
  if (n.gpus.size() > 16) free_vec.resize(n.gpus.size()), free = free_vec.data();
  for (size_t g = 0; g < n.gpus.size(); ++g) free[g] = n.gpus[g].free_milli;
  const double before = fgd_->Fragmentation(n, free, n.free_cores_count, n.free_memory_mib);
  const int64_t cores = n.free_cores_count - s.cpus, memory = n.free_memory_mib - s.memory_mib;
  auto delta = [&](const std::vector<int>& slots, int64_t milli) {
    for (int g : slots) free[g] -= milli;
    double d = fgd_->Fragmentation(n, free, cores, memory) - before;
    for (int g : slots) free[g] += milli;
    return d;
  };
  FragEntry out;
  out.version = version_[i];
  if (s.gpu_milli > 0) out.restricted_demand = fgd_->RestrictedDemand(n);
  if (!s.Fractional()) {  // whole GPUs: any k fully free ones leave the same fragmentation
    std::vector<int> slots;
    if (s.WholeGpus() > 0) {
      slots = PickWholeGpus(n, s, false);
      if (slots.empty()) return out;
    }
    out.score = FgdScore(delta(slots, 1000));
    return out;
  }
  // A share: the first GPU with the best score. GPUs with equal free share and memory score the
  // same, so each pair is scored once.
  int best = -1;
  int64_t best_score = 0;
  std::vector<std::tuple<int64_t, int64_t, double>> seen;  // (free milli, free memory, delta)
  for (size_t g = 0; g < n.gpus.size(); ++g) {
    const GpuSlot& gpu = n.gpus[g];
    if (!FractionEligible(gpu, s)) continue;
    double d = 0;
    auto it = std::find_if(seen.begin(), seen.end(), [&](const auto& e) {
      return std::get<0>(e) == gpu.free_milli && std::get<1>(e) == gpu.free_memory_mib;
    });
    if (it != seen.end()) {
      d = std::get<2>(*it);
    } else {
      d = delta({static_cast<int>(g)}, s.gpu_milli);
      seen.emplace_back(gpu.free_milli, gpu.free_memory_mib, d);
    }
    if (best < 0 || FgdScore(d) > best_score) best = static_cast<int>(g), best_score = FgdScore(d);
  }
  if (best >= 0) out.score = best_score, out.slot = best;
  return out;
}

// FGD's answer for a node stays valid until the node changes, and a placement changes one node.
// Nodes in equal states (GPUs, cores, memory) get equal answers: most nodes of a cluster are empty
// or full alike.
const Cluster::FragEntry& Cluster::Answer(int i, const Shape& s, ShapeCache& cache) {
  FragEntry& f = cache.frag[i];
  if (f.version == version_[i]) return f;
  const NodeState& n = nodes[i];
  state_.clear();
  auto put = [&](int64_t v) { state_.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(n.free_cores_count);
  put(n.free_memory_mib);
  for (const GpuSlot& g : n.gpus) {
    put(g.free_milli);
    put(g.free_memory_mib);
    put(g.memory_mib);
    state_ += g.model;
    state_ += '\0';
  }
  auto [it, added] = cache.by_state.try_emplace(state_);
  if (added) it->second = FragChoice(i, s);
  f = it->second;
  f.version = version_[i];
  return f;
}

std::optional<model::WorkerPlacement> Cluster::PlaceWorker(const Shape& s, const PlaceOptions& o,
                                                           const std::vector<int>* candidates) {
  int best = -1;
  int best_slot = -1;  // herd, fgd: the GPU FragChoice() chose for a share in the best node
  int64_t best_score = 0;
  std::tuple<int64_t, int64_t, int64_t, int64_t> best_key;
  std::tuple<int64_t, double, int64_t, int64_t, int64_t> frag_key;  // herd, fgd
  std::vector<int> ties;  // random, bestfit: the feasible nodes with the best score
  auto tie = [&](int i, int64_t score) {
    if (ties.empty() || score > best_score) {
      ties.assign(1, i);
      best_score = score;
    } else if (score == best_score) {
      ties.push_back(i);
    }
  };
  const int64_t gpu_need = s.Fractional() ? s.gpu_milli : 1000 * static_cast<int64_t>(s.WholeGpus());
  ShapeCache* cache = nullptr;
  if (o.policy == Placement::kFgd || o.policy == Placement::kHerd) {
    cache = &shapes_[s];
    cache->frag.resize(nodes.size());
  }
  auto consider = [&](int i) {
    const NodeState& n = nodes[i];
    if (!Usable(n, o) || !FitsWorker(n, s)) return;
    switch (o.policy) {
      case Placement::kRandom:
        ties.push_back(i);
        return;
      case Placement::kBestFit: {  // 100 x (1 - mean share left), whole points as published
        double left = 0.5 * static_cast<double>(n.free_cores_count - s.cpus) / max_cores_ +
                      0.5 * static_cast<double>(n.free_gpu_milli - gpu_need) / static_cast<double>(max_gpu_milli_);
        tie(i, static_cast<int64_t>(100 * (1 - left)));
        return;
      }
      case Placement::kFgd:
      case Placement::kHerd: {  // FGD's score; equal: (herd) the models least needed, the fullest
        const FragEntry& f = Answer(i, s, *cache);
        if (f.score < 0) return;
        std::tuple<int64_t, double, int64_t, int64_t, int64_t> key{
            -f.score, f.restricted_demand, n.free_gpu_milli, n.free_cores_count, n.free_memory_mib};
        if (best < 0 || key < frag_key) best = i, frag_key = key, best_slot = f.slot;
        return;
      }
      case Placement::kSpread: {
        std::tuple<int64_t, int64_t, int64_t, int64_t> key{-n.free_gpu_milli, -n.free_cores_count,
                                                           -n.free_memory_mib, 0};
        if (best < 0 || key < best_key) best = i, best_key = key;
        return;
      }
    }
  };
  if (candidates) {
    for (int i : *candidates) consider(i);
  } else if (cache != nullptr && !Swapped()) {  // the first of the shape's order: the same node
    std::tie(best, best_slot) = FirstInOrder(s, o, *cache);
  } else {
    for (size_t i = 0; i < nodes.size(); ++i) consider(static_cast<int>(i));
  }
  if (!ties.empty()) {
    // Random placement draws for every worker (the seeded sequence); the others only to break ties.
    bool draw = ties.size() > 1 || o.policy == Placement::kRandom;
    best = draw ? ties[Draw() % ties.size()] : ties.front();
  }
  if (best < 0) return std::nullopt;
  std::vector<int> share{best_slot};
  auto w = PlanInNode(nodes[best], s, o.policy, cache && best_slot >= 0 ? &share : nullptr);
  if (w) ApplyAt(best, *w, s.gpu_memory_mib);
  return w;
}

}  // namespace herd::sched::internal
