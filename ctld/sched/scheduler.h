// The scheduler core: one pure, deterministic function from a Snapshot to the Decisions of one cycle.
// It reads nothing but its arguments (no clock, no I/O), so herd-ctld, bench/ and the scenario tests
// make identical decisions for identical snapshots. See DESIGN.md "The scheduler core".
// Thread-safety: Decide() has no shared state; calls may run concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/model/job.h"
#include "common/model/pending_reason.h"
#include "common/model/placement.h"
#include "common/model/resources.h"
#include "ctld/sched/snapshot.h"

namespace herd::sched {

// One value per row of model::kPlacementPolicies (common/model/placement.h), in its order.
enum class Placement {
  kHerd,     // kFgd with cores and GPU models counted (internal::Fgd), with NUMA / PCIe-switch /
             // NIC locality inside the node (default)
  kBestFit,  // the node left with the least free resources (ties at random, by Policy::seed)
  kFgd,      // fragmentation gradient descent (Weng et al., ATC'23); equal scores: the fullest node
  kRandom,   // a uniformly random feasible node, seeded by Policy::seed
  kSpread,   // the least-used node first
};

// How the scheduler decides. Its defaults are herd's: herd.toml's [scheduler] keys start from the
// same constants (common/model/placement.h); the others are not settable there.
struct Policy {
  Placement placement = static_cast<Placement>(model::kDefaultPlacement);  // kHerd
  // A job pending this long reserves the nodes it will get.
  int64_t reserve_after_s = model::kDefaultReserveAfterS;
  // A job reclaimed N times (PendingJob::reclaims) starts (or reclaims) beyond its project's
  // deserved quota only once it has waited reclaim_backoff_s x 2^(N-1) (at most 8 x
  // reclaim_backoff_s) since it was requeued; within the quota at once. 0: never held back.
  int64_t reclaim_backoff_s = model::kDefaultReclaimBackoffS;
  uint64_t seed = 1;                  // kRandom, and ties of kBestFit
  int max_preemptions_per_cycle = 64; // reclaim + preempt + consolidate victims per cycle
};

// How long a job reclaimed `reclaims` times waits after its requeue before it runs beyond its
// project's deserved quota (Policy::reclaim_backoff_s doubled per further reclaim, at most 8x);
// 0 when it is not held back.
int64_t ReclaimBackoff(const Policy& policy, int32_t reclaims);

// Start pending job `id` on `placement` (one entry per worker).
struct StartDecision {
  model::JobId id = 0;
  std::vector<model::WorkerPlacement> placement;
};

// Why a running job is evicted (DESIGN.md, steps 3-5 of a cycle).
enum class EvictionKind {
  kReclaim,      // its queue is above its fair share and another below needs the room
  kPreempt,      // a higher-priority job of its own queue needs the room
  kConsolidate,  // moved so a pending job fits; it restarts on another node in the same cycle
};
// "reclaim", "preempt", "consolidate": the one name of each kind, for logs, traces and reports.
const char* EvictionKindName(EvictionKind kind);

// Evict running job `id` to make room for pending job `for_job`. Its resources are not reused in
// this cycle; how it and `for_job` appear in later snapshots is ctld/sched/evictions.h's rule
// (it waits, with its place in line, until `for_job` has started).
struct PreemptDecision {
  model::JobId id = 0;
  model::JobId for_job = 0;
  EvictionKind kind = EvictionKind::kReclaim;
  // What EvictionText quotes: for_job's project and, by kind, kPreempt: its class and priority;
  // kReclaim: what its project is below (its fair share of gpu_type GPUs, "h100" or "train pool",
  // when set, else its deserved quota when below_deserved, else its fair share); kConsolidate: the
  // GPUs it asks for (per worker) and the node it fits on.
  std::string project = {};
  std::string job_class = {};
  int priority = 0;
  bool below_deserved = false;
  std::string gpu_type = {};
  int64_t gpu_milli = 0;
  std::string node = {};
  // Where `for_job` is planned, worker by worker (PendingJob::room_on): the GPUs, cores and memory
  // held for it while its victims stop.
  std::vector<model::WorkerPlacement> room = {};
};

// The victim's reason, in words: "reclaimed by job 12 of project vision (vision below its fair
// share)", "preempted by job 7 (interactive, priority 100) of project nlp", "moved so job 9 (4
// GPUs) fits on n3; it restarts on another node".
std::string EvictionText(const PreemptDecision& p);

// Hold `nodes` for pending job `id` this cycle: other jobs start on them only if they end (time
// limit) before the jobs running there, or stay within their own queue's deserved quota when `id`
// is of another queue.
struct ReserveDecision {
  model::JobId id = 0;
  std::vector<std::string> nodes;
};

// One queue's numbers this cycle (every queue of the snapshot, in snapshot order).
struct QueueShare {
  std::string name;
  model::Resources deserved, limit, fair_share, allocated, pending_demand;
  double usage = 0;   // QueueView::usage: recent GPU-seconds, decayed
  double weight = 0;  // its over-quota weight with its usage counted (ctld/sched/usage.h)
  // Per GPU type some queue's quota names (QueueView::by_type): GPU thousandths of that type.
  struct OfType {
    int64_t deserved = 0, limit = -1, fair_share = 0, allocated = 0;
    bool operator==(const OfType&) const = default;
  };
  std::map<std::string, OfType> by_type = {};
  std::map<std::string, OfType> by_pool = {};  // likewise per quota pool (QueueView::by_pool)
};

struct Decisions {
  std::vector<StartDecision> starts;
  std::vector<PreemptDecision> preemptions;
  std::vector<ReserveDecision> reservations;
  std::map<model::JobId, model::PendingReason> pending_reasons;  // every pending job not started
  std::vector<QueueShare> shares;
};

// Decides one scheduling cycle. Deterministic: equal inputs give equal outputs.
[[nodiscard]] Decisions Decide(const Snapshot& snapshot, const Policy& policy);

// A name of model::kPlacementPolicies; false when `name` is none of them.
bool ParsePlacement(const std::string& name, Placement* out);
const char* PlacementName(Placement p);

}  // namespace herd::sched
