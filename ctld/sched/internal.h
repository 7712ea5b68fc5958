// Internals of the scheduler core shared by its .cc files: the mutable working copy of the cluster
// that one Decide() call changes as it plans, placement over it, and fair-share arithmetic.
// Built and owned by Decide(); never exposed outside ctld/sched.
// Thread-safety: none; one Decide() call owns its Cluster.
#pragma once

#include <algorithm>
#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/model/job.h"
#include "common/model/pending_reason.h"
#include "common/model/resources.h"
#include "ctld/sched/scheduler.h"
#include "ctld/sched/snapshot.h"

namespace herd::sched::internal {

// The request shape of a job: jobs with equal shapes share one feasibility answer per cycle.
struct Shape {
  int workers = 1;
  int64_t gpu_milli = 0;  // per worker
  int64_t gpu_memory_mib = 0;
  int64_t cpus = 0;
  int64_t memory_mib = 0;
  std::vector<std::string> gpu_models;  // sorted; empty: any (PendingJob::gpu_models)
  std::optional<std::vector<std::string>> nodes;  // sorted; nullopt: any (PendingJob::nodes)

  static Shape Of(const Request& request, const std::vector<std::string>& gpu_models = {},
                  const std::optional<std::vector<std::string>>& nodes = std::nullopt);
  // Whether a GPU of `model` may hold this shape's GPUs.
  bool ModelOk(const std::string& model) const {
    return gpu_models.empty() ||
           std::binary_search(gpu_models.begin(), gpu_models.end(), model);
  }
  // Whether the node named `name` may hold a worker of this shape.
  bool NodeOk(const std::string& name) const {
    return !nodes || std::binary_search(nodes->begin(), nodes->end(), name);
  }
  int WholeGpus() const { return gpu_milli >= 1000 ? static_cast<int>((gpu_milli + 999) / 1000) : 0; }
  bool Fractional() const { return gpu_milli > 0 && gpu_milli < 1000; }
  model::Resources PerWorker() const { return {gpu_milli, cpus, memory_mib}; }
  model::Resources Total() const { return PerWorker() * workers; }
  auto operator<=>(const Shape&) const = default;
};

// GPU memory one worker takes from `gpu` with a share of `milli`.
int64_t GpuMemoryTaken(const GpuSlot& gpu, int64_t milli, int64_t requested_mib);

// A node as this cycle's plan leaves it.
struct NodeState {
  const NodeView* view = nullptr;
  std::vector<GpuSlot> gpus;
  // Set (sorted) once a placement changes this node's cores; until then the view's lists are the
  // free cores: building a NodeState copies no core list.
  std::optional<std::map<int, std::vector<int>>> own_cores;
  int64_t free_cores_count = 0;
  int64_t free_memory_mib = 0;
  int64_t free_gpu_milli = 0;  // sum over GPUs
  int whole_free = 0;          // GPUs with nothing allocated
  int64_t gpu_capacity_milli = 0;
  bool schedulable = true;
  bool held = false;               // room is being made here (victims stopping): nothing else starts
  // Held for a pending job (DESIGN.md "Reserve"): see Cluster::Usable for who else may start here.
  model::JobId reserved_for = 0;
  const void* reserved_queue = nullptr;  // the holder's queue
  int64_t reserved_start = INT64_MAX;    // when the holder can start here at the latest; MAX unknown
  void Refresh();                  // recomputes the sums from gpus / FreeCores()
  // NUMA id -> free core ids (ascending once changed; the view's order before).
  const std::map<int, std::vector<int>>& FreeCores() const {
    return own_cores ? *own_cores : view->free_cores_by_numa;
  }
  std::map<int, std::vector<int>>& MutableFreeCores();  // copies the view's lists on first use

  static NodeState Of(const NodeView& view);  // the node as the snapshot gives it
};

// Which nodes a placement may use.
struct PlaceOptions {
  Placement policy = Placement::kHerd;
  // A node reserved for another job is usable only by a job that will have ended (time limit) by
  // the time the reservation can start, and by a job that stays within its own queue's deserved
  // quota when the holder is of another queue. The holder's own reservation never blocks it.
  bool ignore_reservations = false;
  model::JobId job = 0;          // the job placed
  const void* quota_queue = nullptr;  // its queue, when it stays within that queue's deserved quota
  int64_t ends_at = 0;           // 0: no time limit; else when it will have ended at the latest
  const std::vector<int>* only = nullptr;  // restrict to these node indexes
  const Shape* shape = nullptr;  // the shape placed, whose Shape::NodeOk the node must pass
};

class Fgd;

// The working copy of all nodes.
class Cluster {
 public:
  Cluster(const Snapshot& snapshot, const Policy& policy);
  ~Cluster();

  std::vector<NodeState> nodes;
  int NodeIndex(const std::string& name) const;  // -1 when unknown

  // Takes / gives back what `w` holds (gpu_memory_mib: the worker's requested GPU memory).
  void Apply(const model::WorkerPlacement& w, int64_t gpu_memory_mib);
  void Release(const model::WorkerPlacement& w, int64_t gpu_memory_mib);
  // What of `w` is free now: first its GPUs with the share free, its free cores and its memory up
  // to what is free; then one entry per GPU of it with only part of that share free, holding that
  // part (its GPU memory in proportion). Empty for an unknown node.
  std::vector<model::WorkerPlacement> FreeParts(const model::WorkerPlacement& w,
                                                int64_t gpu_memory_mib) const;
  // Whether every worker of `p` could be applied as it is (distinct workers' shares added up).
  bool Free(const std::vector<model::WorkerPlacement>& p, int64_t gpu_memory_mib);
  void ApplyAll(const std::vector<model::WorkerPlacement>& p, int64_t gpu_memory_mib);
  void ReleaseAll(const std::vector<model::WorkerPlacement>& p, int64_t gpu_memory_mib);

  // Places every worker of `shape` (all or nothing) and applies it; nullopt leaves nothing changed.
  std::optional<std::vector<model::WorkerPlacement>> Place(const Shape& shape,
                                                           const PlaceOptions& options);
  // True when `node` could take one worker of `shape` now.
  bool FitsWorker(const NodeState& node, const Shape& shape) const;
  bool Usable(const NodeState& node, const PlaceOptions& options) const;
  // Exchanges the working nodes with `other` (same nodes, another state).
  void SwapNodes(std::vector<NodeState>& other);
  // Every node as the snapshot gives it (nothing placed, held or reserved).
  std::vector<NodeState> InitialNodes() const;
  // Changes whenever any node's free resources do (placements, releases, SwapNodes).
  uint64_t Stamp() const { return stamp_; }
  // The nodes whose free resources changed since the working nodes became those of Generation(),
  // in order, repeats kept; not kept while SwapNodes has other nodes in place (Swapped()).
  const std::vector<int>& Changed() const { return changed_; }
  uint64_t Generation() const { return generation_; }
  bool Swapped() const { return swapped_with_ != nullptr; }

 private:
  std::optional<model::WorkerPlacement> PlaceWorker(const Shape& shape, const PlaceOptions& o,
                                                    const std::vector<int>* candidates);
  std::optional<std::vector<model::WorkerPlacement>> PlaceGang(const Shape& shape,
                                                               const PlaceOptions& options);
  // An upper bound on the workers of `shape` that `node` could take now.
  int64_t MaxWorkers(const NodeState& node, const Shape& shape) const;
  void ApplyAt(int i, const model::WorkerPlacement& w, int64_t gpu_memory_mib);
  uint64_t Draw();  // the next number of the seeded generator (splitmix64)
  // FGD's answer for one worker of a shape on one node, as of the node's version.
  struct FragEntry {
    uint64_t version = UINT64_MAX;
    int64_t score = -1;  // FGD's score of the placement; -1: the node cannot take it
    int slot = -1;       // a share: the GPU (slot position) it takes
    double restricted_demand = 0;  // herd, a worker with GPUs: Fgd::RestrictedDemand(node)
  };
  FragEntry FragChoice(int i, const Shape& shape) const;
  // kFgd, kHerd: per shape, the nodes that could take one worker of it now (FitsWorker, FGD's
  // score), by PlaceWorker's key then index, in step with changed_ as of `seen`
  // (placement_order.cc).
  using FragKey = std::tuple<int64_t, double, int64_t, int64_t, int64_t>;
  struct Order {
    uint64_t generation = UINT64_MAX;
    size_t seen = 0;
    std::vector<FragKey> key;       // per node: its key, while in `nodes`
    std::vector<int> slot;          // per node: FragEntry::slot
    std::vector<char> in;           // per node: in `nodes`
    std::vector<uint64_t> version;  // per node: the version its entry is of
    std::set<std::pair<FragKey, int>> nodes;
  };
  struct ShapeCache {
    std::vector<FragEntry> frag;                          // per node, as of its version
    std::unordered_map<std::string, FragEntry> by_state;  // per node state (FragChoice is pure)
    Order order;
  };
  // FGD's answer for one worker of `shape` on node i now.
  const FragEntry& Answer(int i, const Shape& shape, ShapeCache& cache);
  // The first node of the shape's Order that Usable() accepts, and its FragEntry::slot; -1 none.
  // REQUIRES: !Swapped().
  std::pair<int, int> FirstInOrder(const Shape& shape, const PlaceOptions& o, ShapeCache& cache);
  // A node's version changes whenever its free resources do.
  std::vector<uint64_t> version_;
  uint64_t stamp_ = 0;
  std::vector<int> changed_;  // Changed()
  uint64_t generation_ = 0;
  const std::vector<NodeState>* swapped_with_ = nullptr;  // holds the working nodes meanwhile
  std::map<Shape, ShapeCache> shapes_;
  std::string state_;  // Answer()'s key of a node state
  // Built on first use (most Decide() calls place a job or two: building them is the cost).
  mutable std::unordered_map<std::string, int> index_;
  // Per topology label ("switch", "rack"): the label values in name order with their node indexes.
  std::map<std::string, std::vector<std::pair<std::string, std::vector<int>>>> label_groups_;
  bool labels_built_ = false;
  uint64_t rng_state_;
  int max_cores_ = 1;
  int64_t max_gpu_milli_ = 1000;
  std::unique_ptr<Fgd> fgd_;  // for Placement::kFgd and kHerd
};

// Plans one worker of `shape` inside `node` (GPUs, cores, NIC) without applying it.
// `forced`: slot positions in node.gpus chosen by the caller (FGD) instead of the policy.
std::optional<model::WorkerPlacement> PlanInNode(const NodeState& node, const Shape& shape,
                                                 Placement policy, const std::vector<int>* forced);

// Fair shares: every queue's share of the cluster (two-step division, recursively down the tree).
// `demand` is allocated + pending per queue (leaves; parents are summed here).
std::map<std::string, model::Resources> ComputeFairShares(
    const std::vector<QueueView>& queues, const std::map<std::string, model::Resources>& demand,
    const model::Resources& capacity);

// The fair shares of the GPUs of one type (thousandths): `capacity` divided as ComputeFairShares
// divides, with each queue's quota of that type (QueueView::by_type, or by_pool when `pool`; a
// queue without one: nothing deserved, its `gpu` limit, its over_quota_weight). `demand`: per leaf.
std::map<std::string, int64_t> TypedFairShares(const std::vector<QueueView>& queues,
                                               const std::string& type, bool pool,
                                               const std::map<std::string, int64_t>& demand,
                                               int64_t capacity);

// max over resources of allocated / fair (a resource with fair 0 and allocated > 0 counts as 1e9).
double DominantShare(const model::Resources& allocated, const model::Resources& fair);

// "2 GPUs", "0.5 GPU", "16 cores", "64G memory": the main component of `r`, for reasons.
std::string GpuText(int64_t milli);

}  // namespace herd::sched::internal
