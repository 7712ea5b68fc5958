#include "common/model/pending_reason.h"

#include <array>

#include "common/model/units.h"

namespace herd::model {
namespace {

constexpr std::array<const char*, 34> kCodeNames = {"scheduler",
                                                    "no_node_registered",
                                                    "held_by_user",
                                                    "held_by_admin",
                                                    "begin_time",
                                                    "after_ok",
                                                    "after_fail",
                                                    "after_any",
                                                    "array_limit",
                                                    "unknown_project",
                                                    "limit",
                                                    "typed_limit",
                                                    "quota_held",
                                                    "within_quota_only",
                                                    "gave_way",
                                                    "gives_back",
                                                    "reserved",
                                                    "no_node_matches",
                                                    "allowed_nodes_down",
                                                    "no_schedulable_node",
                                                    "no_node_has_type",
                                                    "only_other_types_free",
                                                    "gpu_block",
                                                    "gpu_share_memory",
                                                    "gpu_share",
                                                    "cores",
                                                    "memory",
                                                    "gang_does_not_fit",
                                                    "no_node_fits_all",
                                                    "behind_own_queue",
                                                    "behind_other_queues",
                                                    "preempted_jobs",
                                                    "room_being_made",
                                                    "reclaim_backoff"};
static_assert(kCodeNames.size() == static_cast<size_t>(kLastReasonCode) + 1);

std::string GpuText(int64_t milli) {
  return FormatGpuMilli(milli) + (milli == 1000 ? " GPU" : " GPUs");
}
// A quota number in a "U of D unit in use" phrase: "8" GPUs, "16" cores, "64G" memory.
std::string Number(int c, int64_t v) {
  if (c == 0) return FormatGpuMilli(v);
  return c == 1 ? std::to_string(v) : FormatSizeMiB(v);
}
const char* Unit(int c) { return c == 0 ? "GPUs" : (c == 1 ? "cores" : "memory"); }

std::string Text(const PendingReason& r) {
  const std::string of_type = r.gpu_types.empty() ? "" : " of type " + r.gpu_types;
  const std::string each = r.workers > 1 ? " per worker" : "";
  const std::string queue = (r.department ? "department " : "project ") + r.queue;
  auto what = [&] {
    const Resources& w = r.per_worker;
    return (w.gpu_milli > 0 ? GpuText(w.gpu_milli) + of_type + ", " : "") + AmountText(1, w.cpus) +
           " and " + AmountText(2, w.memory_mib);
  };
  switch (r.code) {
    case ReasonCode::kScheduler:
      return "waiting for the scheduler";
    case ReasonCode::kNoNodeRegistered:
      return "no node has registered with herd-ctld yet";
    case ReasonCode::kHeldByUser:
      return "held by user: herd release " + r.target;
    case ReasonCode::kHeldByAdmin:
      return "held by admin: an admin releases it with herd release " + r.target;
    case ReasonCode::kBeginTime:
      return "starts at " + r.target;
    case ReasonCode::kAfterOk:
      return "waiting for " + r.target + " to complete";
    case ReasonCode::kAfterFail:
      return "waiting for " + r.target + " to fail";
    case ReasonCode::kAfterAny:
      return "waiting for " + r.target + " to end";
    case ReasonCode::kArrayLimit:
      return "array " + std::to_string(r.job) + " runs " + std::to_string(r.count) + " at once";
    case ReasonCode::kUnknownProject:
      return "project " + r.queue + " does not exist";
    case ReasonCode::kLimit:
      return queue + " is at its limit of " + AmountText(r.component, r.amount) + " (" +
             AmountText(r.component, r.used) + " in use, job needs " +
             AmountText(r.component, r.need) + ")";
    case ReasonCode::kTypedLimit:
      return queue + " is at its limit of " + FormatGpuMilli(r.amount) +
             (r.gpu_types.empty() ? "" : " " + r.gpu_types) +
             (r.amount == 1000 ? " GPU" : " GPUs") +
             (r.target.empty() ? "" : " in pool " + r.target) + " (" + FormatGpuMilli(r.used) +
             " in use, job needs " + FormatGpuMilli(r.need) + ")";
    case ReasonCode::kQuotaHeld:
      return "project " + r.queue + "'s deserved quota is held for job " + std::to_string(r.job) +
             " (" + r.job_class + "), waiting for jobs preempted for it to stop (" +
             Number(r.component, r.used) + " of " + Number(r.component, r.amount) + " " +
             Unit(r.component) + " in use)";
    case ReasonCode::kWithinQuotaOnly:
      return r.job_class + " jobs run only within the project's deserved quota (" +
             Number(r.component, r.used) + " of " + Number(r.component, r.amount) + " " +
             Unit(r.component) + " in use)";
    case ReasonCode::kGaveWay:
      return "project " + r.queue + " is above its fair share: its start gave way to job " +
             std::to_string(r.job) + " of project " + r.other_queue;
    case ReasonCode::kGivesBack:
      return "project " + r.queue +
             " is above its fair share: it gives back resources to projects "
             "below theirs";
    case ReasonCode::kReserved:
      return "resources reserved for job " + std::to_string(r.job);
    case ReasonCode::kNoNodeMatches:
      return "no node matches its pool, constraints and node list";
    case ReasonCode::kAllowedNodesDown:
      return "none of the " + std::to_string(r.count) +
             " nodes it may use (pool, constraints, node list) is schedulable";
    case ReasonCode::kNoSchedulableNode:
      return "no schedulable node (all are down or drained)";
    case ReasonCode::kNoNodeHasType:
      return "no node has " + GpuText(r.need) + of_type;
    case ReasonCode::kOnlyOtherTypesFree:
      return "waiting for " + FormatGpuMilli(r.need) + " " + r.gpu_types +
             (r.need <= 1000 ? " GPU" : " GPUs") + each + ": only " + r.other_types + " free";
    case ReasonCode::kGpuBlock:
      return "needs " + GpuText(r.need) + of_type + " on one node" + each +
             "; largest free block is " + std::to_string(r.most_free);
    case ReasonCode::kGpuShareMemory:
      return "needs " + GpuText(r.need) + " with " + FormatSizeMiB(r.amount) + " GPU memory" +
             of_type + "; no GPU with that share free has that much memory free";
    case ReasonCode::kGpuShare:
      return "needs " + GpuText(r.need) + of_type + " of one GPU; the most free on any GPU is " +
             FormatGpuMilli(r.most_free);
    case ReasonCode::kCores:
      return "needs " + AmountText(1, r.need) + " on one node" + each + "; most free is " +
             std::to_string(r.most_free);
    case ReasonCode::kMemory:
      return "needs " + AmountText(2, r.need) + " on one node" + each + "; most free is " +
             FormatSizeMiB(r.most_free);
    case ReasonCode::kGangDoesNotFit:
      return "gang of " + std::to_string(r.workers) + " workers (" + what() +
             " each) does not fit at once";
    case ReasonCode::kNoNodeFitsAll:
      return "no node has " + what() + " free together";
    case ReasonCode::kBehindOwnQueue:
      return "waiting for higher-priority jobs in the queue";
    case ReasonCode::kBehindOtherQueues:
      return "waiting for jobs of projects further below their fair share";
    case ReasonCode::kPreemptedJobs:
      return "waiting for " + std::to_string(r.count) +
             (r.count == 1 ? " preempted job" : " preempted jobs") + " to release resources";
    case ReasonCode::kRoomBeingMade:
      return "waiting for resources being freed by jobs evicted for others";
    case ReasonCode::kReclaimBackoff:
      return "reclaimed " + std::to_string(r.count) + (r.count == 1 ? " time" : " times") +
             ": waits " + FormatDuration(r.amount) +
             " after its requeue before it runs beyond project " + r.queue +
             "'s deserved quota again (reclaim_backoff)";
  }
  return "waiting";
}

}  // namespace

const char* ReasonCodeName(ReasonCode code) { return kCodeNames[static_cast<size_t>(code)]; }

std::optional<ReasonCode> ParseReasonCode(std::string_view name) {
  for (size_t i = 0; i < kCodeNames.size(); ++i) {
    if (name == kCodeNames[i]) return static_cast<ReasonCode>(i);
  }
  return std::nullopt;
}

WaitsFor WaitsForOf(ReasonCode code) {
  switch (code) {
    case ReasonCode::kScheduler:
      return WaitsFor::kScheduler;
    case ReasonCode::kNoNodeRegistered:
    case ReasonCode::kNoNodeMatches:
    case ReasonCode::kAllowedNodesDown:
    case ReasonCode::kNoSchedulableNode:
      return WaitsFor::kNode;
    case ReasonCode::kHeldByUser:
    case ReasonCode::kHeldByAdmin:
      return WaitsFor::kHold;
    case ReasonCode::kBeginTime:
      return WaitsFor::kBeginTime;
    case ReasonCode::kAfterOk:
    case ReasonCode::kAfterFail:
    case ReasonCode::kAfterAny:
      return WaitsFor::kDependency;
    case ReasonCode::kArrayLimit:
      return WaitsFor::kArrayLimit;
    case ReasonCode::kUnknownProject:
    case ReasonCode::kLimit:
    case ReasonCode::kTypedLimit:
    case ReasonCode::kQuotaHeld:
    case ReasonCode::kWithinQuotaOnly:
    case ReasonCode::kGaveWay:
    case ReasonCode::kGivesBack:
    case ReasonCode::kReclaimBackoff:
      return WaitsFor::kQuota;
    case ReasonCode::kReserved:
      return WaitsFor::kReservation;
    case ReasonCode::kPreemptedJobs:
    case ReasonCode::kRoomBeingMade:
      return WaitsFor::kPreemption;
    default:
      return WaitsFor::kResources;
  }
}

std::string ReasonText(const PendingReason& reason) {
  std::string text = Text(reason);
  if (!reason.holding.empty()) text += " (holding " + reason.holding + " for it)";
  return text;
}

}  // namespace herd::model
