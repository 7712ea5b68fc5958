// One scheduling cycle: the state Decide() builds from a Snapshot and the actions it runs over it
// (allocate and reserve in scheduler.cc; reclaim, preempt and consolidate in victims.cc and
// evict.cc).
// Built and owned by Decide(); internal to ctld/sched.
// Thread-safety: none; one Decide() call owns its Cycle.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "ctld/sched/internal.h"

namespace herd::sched::internal {

// kPreemptedJobs: "waiting for 2 preempted jobs to release resources"
model::PendingReason WaitingForVictims(size_t victims);

// Why a job was not started by the allocate pass.
// kHeld: the project's deserved quota is held for a job of a within-quota class that waits for
// its victims to stop (QueueState::quota_held_for).
enum class Block { kNone, kUnknownQueue, kLimit, kQuota, kHeld, kNoFit, kBackoff };

struct QueueState;

// GPU thousandths per GPU type or quota pool some queue's quota names (Cycle::types_, in its
// order); empty when no quota names a type or a pool.
using TypedGpus = std::vector<int64_t>;

struct JobState {
  const PendingJob* pending = nullptr;
  const ClassView* job_class = nullptr;
  QueueState* queue = nullptr;  // nullptr: the snapshot has no such queue
  Shape shape;
  model::Resources total;
  bool started = false;
  std::vector<model::WorkerPlacement> placement;  // where it started
  TypedGpus typed;  // of its start or of the room made for it, per GPU type
  bool tried = false;     // the allocate pass has tried it
  bool waiting = false;   // waits for victims still holding resources (counted in its queue)
  Block block = Block::kNone;
  model::PendingReason reason;
};

struct QueueState {
  const QueueView* view = nullptr;
  std::vector<std::string> path;  // the queue, then its ancestors up to the root
  std::vector<QueueState*> up;    // the same queues
  std::vector<const RunningJob*> running_jobs;  // leaves: the snapshot's running jobs, in order
  model::Resources allocated;     // running + started / freed-for this cycle (subtree for parents)
  // The part of `allocated` held by jobs of classes that start only within the deserved quota or
  // may not be evicted (Firm): what a within-quota class is checked against. The rest of what a
  // queue holds beyond its deserved quota is preemptible and borrowed: reclaim takes it back.
  model::Resources firm;
  model::Resources running;       // held by the snapshot's running jobs
  model::Resources stopping;      // held by victims still stopping (not in allocated): counted
                                  // against limits, which cap what a queue's jobs hold
  model::Resources smallest;      // leaves: per resource, the least one running job holds (>0)
  model::Resources fair;
  model::Resources pending_demand;
  std::vector<JobState*> jobs;    // leaves: by class priority, then submit time
  size_t next = 0;
  bool started_any = false;
  // Leaves: a job of a within-quota class waiting for victims stopping (counted as started). No
  // other class of the queue may take the queue beyond its deserved quota meanwhile: what it took
  // would keep that job out once its victims have stopped.
  const JobState* quota_held_for = nullptr;
  // Per GPU type or quota pool of Cycle::types_ (gpu_types.cc): what `allocated`, `running`,
  // `stopping`, `fair` and `smallest` are for the GPUs of that type (pool) alone, and the view's
  // quota of it.
  TypedGpus typed_allocated, typed_running, typed_stopping, typed_fair, typed_smallest;
  TypedGpus typed_deserved, typed_limit;  // limit -1: none
};

// The first limit or deserved quota a job would exceed (block kLimit or kQuota), or none.
struct QuotaHit {
  Block block = Block::kNone;
  const QueueState* queue = nullptr;  // the queue (or department) whose limit or quota it is
  int component = 0;                  // 0 GPUs, 1 cores, 2 memory
  int type = -1;  // a limit of one GPU type or pool (Cycle::types_), every one the job may use
};

// A failed victim search: kind, queue, class priority, block, shape and the key of its placement
// options (Cycle::OptionsKey): every input that changes the answer.
using VictimMemo = std::tuple<char, const QueueState*, int, Block, Shape,
                              std::tuple<bool, model::JobId, const void*, int64_t>>;

// The victims chosen for one pending job and where that job will go once they are gone.
struct VictimPlan {
  std::vector<const RunningJob*> victims;
  std::vector<model::WorkerPlacement> placement;
  int64_t evicted_gpu_milli = 0;
};

class Cycle {
 public:
  Cycle(const Snapshot& snapshot, const Policy& policy);
  Decisions Run();

 private:
  // scheduler.cc
  void Allocate();
  bool TryStart(JobState& job);
  void Start(JobState& job, std::vector<model::WorkerPlacement> placement);
  // Starts a job whose room is made where its eviction plan put it when that is free, else on the
  // nodes its plan chose when it fits there.
  bool StartInRoom(JobState& job);
  // Places `job` (room_on) exactly where its plan put it, when all of that is free; applied.
  std::optional<std::vector<model::WorkerPlacement>> PlaceAsPlanned(const JobState& job);
  std::vector<int> RoomOf(const PendingJob& job) const;  // its room_on as node indexes, sorted

  // waits.cc
  QuotaHit CheckQuota(const JobState& job) const;
  model::PendingReason QuotaReason(const JobState& job, const QuotaHit& hit);  // the hit's reason
  // The binding constraint; nullopt when the job would have fit the cycle's start.
  std::optional<model::PendingReason> NoFitReason(const JobState& job);
  void Reserve(JobState& job);

  // scheduler.cc
  // Adds (sign +1) or removes `r` from the queue's and its ancestors' allocation, and from their
  // firm part for a job of class `c` that is Firm.
  // `typed`: the GPUs per type of that allocation (TypedOf), added or removed the same way.
  void Charge(const std::string& queue, const model::Resources& r, int sign, const ClassView& c,
              const TypedGpus* typed = nullptr);
  PlaceOptions OptionsFor(const JobState& job) const;
  // Whether queue `q` with `more` allocated stays within its deserved quota.
  bool WithinDeserved(const QueueState& q, const model::Resources& more) const;
  bool KeepsShare(const QueueState& q, const model::Resources& more) const;  // fair share or deserved
  bool HoldsOnlyDeserved(const QueueState& q) const;  // never a reclaim victim then
  // spread, own reservation, quota queue, end: what of PlaceOptions changes where a job may go.
  using OptionsKey = std::tuple<bool, model::JobId, const void*, int64_t>;
  OptionsKey KeyOf(const PlaceOptions& o) const;
  double TurnKey(const QueueState& q) const;  // the allocate pass's order of queues (lowest first)
  // How much of its reclaim backoff (ReclaimBackoff) the job still waits; <= 0: none.
  int64_t BackoffLeft(const JobState& job) const;
  const ClassView& ClassOf(const std::string& name) const;
  // Jobs of class c count against the deserved quota of within-quota classes.
  static bool Firm(const ClassView& c) { return c.within_quota_only || !c.preemptible; }
  const ClassView& ClassOf(const RunningJob& job) const;  // REQUIRES: job is in snap_.running
  const model::Resources& TotalOf(const RunningJob& job) const {  // REQUIRES: likewise
    return total_of_[static_cast<size_t>(&job - snap_.running.data())];
  }

  // gpu_types.cc: quotas per GPU type (QueueView::by_type). With none, types_ is empty and none
  // of these changes a decision.
  void InitTypes();  // types_, models_, typed_of_ and every queue's typed_ figures
  TypedGpus TypedOf(const std::vector<model::WorkerPlacement>& placement) const;
  const TypedGpus& TypedOf(const RunningJob& job) const;  // REQUIRES: job is in snap_.running
  int TypeIndex(const std::string& model) const;  // in types_; -1 for a type no quota names
  int PoolIndex(const std::string& pool) const;   // likewise for a quota pool; -1 for ""
  bool HasPools() const { return first_pool_ < types_.size(); }
  // The quota pools (indexes in types_, -1: in none) of the nodes named, or of every node.
  std::vector<int> PoolsOf(const std::optional<std::vector<std::string>>& nodes) const;
  // The nodes named, or every node, whose quota pool (as PoolsOf) `pool_ok` accepts, sorted.
  std::vector<std::string> NodesWhere(const std::optional<std::vector<std::string>>& nodes,
                                      const std::function<bool(int)>& pool_ok) const;
  const std::vector<std::string>& ModelsOf(const JobState& job) const;  // GPU models it may use
  // Whether a limit of `model`'s type (of the job's queue or an ancestor) has no room for `job`;
  // sets *hit to it.
  bool TypeLimited(const JobState& job, const std::string& model, QuotaHit* hit) const;
  bool SetLimited(const JobState& job, int t, QuotaHit* hit) const;  // likewise of types_[t]
  QuotaHit TypedLimitHit(const JobState& job) const;  // a limit on every type the job may use
  // Its shape left off the types and pools whose limits have no room.
  void NarrowTypes(JobState& job);
  model::PendingReason TypedLimitReason(const JobState& job, const QuotaHit& hit) const;
  // Whether `q`, with `taken` gone, stays above its fair share and deserved quota of every GPU
  // type `holds` has some of, by at least its smallest job there: it may lose `holds`.
  bool TypedKeeps(const QueueState& q, const TypedGpus& taken, const TypedGpus& holds) const;
  // Narrows the job's shape to the GPU types its project stays within its fair share or deserved
  // quota of with it (`typed_only`: only types some quota names); false when none is left.
  // Its two halves follow: the models of its shape, then the quota pools of its nodes.
  bool NarrowToEntitled(JobState& job, bool typed_only);
  // Whether the job's project stays within its fair share or deserved quota of types_[t] with it.
  bool Entitled(const JobState& job, int t) const;
  // The GPU models of its shape (every model when it names none) of a type some quota names that
  // it is entitled to (*named: there are some), and those of a type no quota names unless
  // `typed_only` found some of the first kind; sorted when those of no type are in.
  std::vector<std::string> EntitledModels(const JobState& job, bool typed_only, bool* named) const;
  // The quota pools of its shape's nodes it may keep: those it is entitled to, and nodes in no
  // named pool unless `typed_only` found some of the first kind.
  struct EntitledPools {
    std::vector<bool> ok;    // by index in types_: an entitled pool
    bool named = false;      // some pool of its nodes is one it is entitled to
    bool unnamed_ok = true;  // nodes in no named pool stay
    bool some = false;       // some pool of its nodes stays
    bool all = true;         // every pool of its nodes stays
    bool May(int t) const { return t < 0 ? unnamed_ok : ok[static_cast<size_t>(t)]; }
  };
  EntitledPools PoolsEntitled(const JobState& job, bool typed_only) const;
  std::vector<bool> Wanted(const JobState& job) const;  // the named sets its shape may use
  bool ReclaimWithTypes(JobState& job);
  bool ReclaimOfType(JobState& job);
  void TypedShares(const QueueState& q, QueueShare& out) const;

  // evict.cc
  // Holds the room being made by victims still stopping from earlier cycles for the jobs they were
  // evicted for: what each such job's plan (room_on) takes that is free already; the nodes of the
  // victims of a job without a plan (herd-ctld restarted) as a whole.
  void HoldRoom();
  // Turns the cluster into the one eviction plans count on (evict.cc's head): victims still stopping
  // gone, the jobs waiting for them placed. Nothing starts after it in the cycle.
  void PlanRoom();
  // Whether `job` fits in that cluster without more victims (it then waits, with its reason set).
  bool FitsRoomMade(JobState& job);
  // Whether `job` fits in that cluster on resources free but reserved for other jobs: it waits
  // for the reservation instead of taking running jobs of other projects elsewhere (no reclaim,
  // no consolidation).
  bool FitsReserved(const JobState& job);
  // Takes back starts of this cycle that reclaim would take for `job`, and starts it instead.
  bool TakeBack(JobState& job);  // when within its fair share or quota (gpu_types.cc)
  bool TakeBackShare(JobState& job);
  // Takes back the fewest of `may` (latest first) that let `job` start, when MayTake agrees.
  bool TakeBackFrom(JobState& job, const std::vector<JobState*>& may, const VictimMemo& memo,
                    bool by_type = false);
  bool TakeBackOfType(JobState& job);  // the starts ReclaimOfType could take next cycle
  // Those starts (of other queues, preemptible, on the `wanted` types, above their share of them).
  std::vector<JobState*> StartsOfType(const JobState& job, const std::vector<bool>& wanted);
  // Whether `job` may take back starts only as a whole job: its project is below its fair share
  // and the job takes it a little above (fair shares are fractions, jobs whole; TakeBackShare).
  bool WholeJobAboveShare(const JobState& job) const;
  // Whether a job of a project other than `job`'s waits (or is among `back`, the starts about to
  // be taken back) that is within its project's fair share or deserved quota.
  bool EntitledElsewhere(const JobState& job, const std::vector<JobState*>& back) const;
  // This cycle's starts reclaim could take for `job` next cycle (of another queue above its fair
  // share, each by the reclaim rule on its own: MayTake checks a set; preemptible, not in room made
  // for them), the latest first.
  std::vector<JobState*> GiveWay(const JobState& job);
  // Whether taking `starts` and `victims` together keeps every project they belong to at its fair
  // share less its smallest job on each resource they take above its fair share (AboveShare's rule
  // for a set taken at once).
  // `by_type`: only each GPU type's share counts (TypedKeeps), as ReclaimOfType takes victims.
  bool MayTake(const std::vector<JobState*>& starts, const std::vector<const RunningJob*>& victims,
               bool by_type = false) const;
  // Takes back `starts` (already released and uncharged) for `job`.
  void Withdraw(const std::vector<JobState*>& starts, const JobState& job);
  void Evict();
  // Takes back this cycle's starts of queues that lost jobs to reclaim in it: a queue gives back
  // its old jobs or starts new ones, not both in one cycle.
  void WithdrawStartsOfReclaimed();

  // victims.cc
  bool Reclaim(JobState& job);  // ReclaimShare, or with typed quotas ReclaimWithTypes
  bool ReclaimShare(JobState& job);
  bool Preempt(JobState& job);
  bool Consolidate(JobState& job);
  bool MoveFor(JobState& job);  // Consolidate's search, once the job may be moved for
  // The shape a job moved by Consolidate restarts with: its GPU models and nodes, narrowed to the
  // GPU types whose limits (its queue's and its ancestors') have room for it once it has left its
  // GPUs; nullopt when no type has.
  std::optional<Shape> MoverShape(const RunningJob& job) const;
  // Releases `candidates` in order (skipping those `allowed` refuses) until the job fits and
  // `enough` agrees, then puts back every victim not needed. Leaves the cluster unchanged.
  std::optional<VictimPlan> FindVictims(
      const JobState& job, const std::vector<const RunningJob*>& candidates,
      const std::function<bool(const RunningJob&, const std::vector<const RunningJob*>&)>& allowed,
      const std::function<bool(const std::vector<const RunningJob*>&)>& enough,
      const std::vector<int>* only);
  std::optional<VictimPlan> SearchByNode(
      const JobState& job, const std::vector<const RunningJob*>& candidates,
      const std::function<bool(const RunningJob&, const std::vector<const RunningJob*>&)>& allowed,
      const std::function<bool(const std::vector<const RunningJob*>&)>& enough);
  bool Protected(const RunningJob& job) const;  // young, suspended, non-preemptible or already chosen
  bool Shielded(size_t k) const;  // snap_.running[k] is Protected whatever the cycle chooses
  // `why`: the kind and the words' parameters (PreemptDecision) each victim's decision gets.
  void Commit(JobState& job, const VictimPlan& plan, const PreemptDecision& why);

  const Snapshot& snap_;
  const Policy& policy_;
  Cluster cluster_;
  std::vector<NodeState> initial_;  // the cluster as the snapshot gave it (built on first use)
  std::unordered_map<std::string, QueueState> queues_;
  std::vector<JobState> jobs_;
  std::vector<JobState*> visited_;  // in the order the allocate pass served them
  // shape, options -> reason (nullopt: it fit the cycle's start)
  std::map<std::pair<Shape, OptionsKey>, std::optional<model::PendingReason>> no_fit_;
  std::set<model::JobId> reserved_by_;                    // jobs holding a reservation
  std::set<VictimMemo> no_victims_;                       // victim searches that failed
  // Reserve's order of the reservable nodes (most free first, then index), in step with the
  // cluster's changes (Cluster::Changed) as of reserve_seen_ and reserve_generation_.
  std::set<std::pair<int64_t, int>> reserve_order_;
  std::vector<int64_t> reserve_key_;  // per node: its key in reserve_order_
  std::vector<char> reserve_in_;      // per node: in reserve_order_
  size_t reserve_seen_ = 0;
  uint64_t reserve_generation_ = UINT64_MAX;
  // Per node: GPU share, cores of jobs with an end (running, and started this cycle among the
  // first reserve_visited_ of visited_); started_: those of visited_'s jobs that started.
  std::vector<std::pair<int64_t, int64_t>> ending_;
  std::vector<const JobState*> started_;
  size_t reserve_visited_ = 0;
  std::map<int, std::vector<const RunningJob*>> running_on_;  // node index -> jobs holding it
  std::vector<std::vector<int>> nodes_of_;  // per snap_.running entry: node indexes it holds
  std::vector<const ClassView*> class_of_;  // per snap_.running entry
  std::vector<QueueState*> queue_of_;       // per snap_.running entry; nullptr: unknown queue
  std::vector<model::Resources> total_of_;  // per snap_.running entry: all its workers hold
  std::vector<char> shielded_;              // per snap_.running entry: Shielded()
  std::set<model::JobId> victims_;
  std::vector<std::pair<model::WorkerPlacement, int64_t>> holds_;  // HoldRoom's, GPU memory each
  // GiveWay's starts of every queue (latest first) and the cluster without them, as of starts_version_.
  std::vector<JobState*> give_way_;
  std::vector<NodeState> loose_;
  int starts_version_ = 0, give_way_version_ = -1;
  int room_version_ = 0;
  // Reclaim's candidates per queue, as of (starts_version_, room_version_).
  std::map<const QueueState*, std::pair<std::pair<int, int>, std::vector<const RunningJob*>>>
      reclaim_candidates_;  // changes with the room being made (PlanRoom, Commit); 0: none
  std::vector<const RunningJob*> reclaim_order_;  // snap_.running in reclaim's order (built once)
  std::map<std::pair<Shape, OptionsKey>, std::pair<int, bool>> room_fit_;  // FitsRoomMade by version
  std::set<const QueueState*> reclaimed_;  // queues that lost jobs to reclaim this cycle
  ClassView default_class_;  // for classes the snapshot does not name
  // GPU types some queue's quota names, sorted, then (from first_pool_) the quota pools, sorted.
  std::vector<std::string> types_;
  size_t first_pool_ = 0;
  std::vector<int> pool_set_;        // per cluster_ node: its quota pool's index in types_, -1 none
  std::vector<int> all_pools_;       // PoolsOf(every node)
  std::vector<std::string> models_;  // every GpuSlot::model of the snapshot, sorted
  std::vector<TypedGpus> typed_of_;  // per snap_.running entry
  std::set<Shape> no_reserve_;  // shapes too few nodes can be reserved for
  Decisions out_;
};

}  // namespace herd::sched::internal
