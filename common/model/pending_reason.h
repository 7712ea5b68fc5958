// Why a pending job waits, as a code with its parameters, and the one function that says it in
// English (ReasonText). The scheduler core (ctld/sched) and herd-ctld build reasons; herd-ctld
// stores the text and the WaitsFor class (WaitsForOf) with the job; anything that decides by a
// reason reads its code, never its words. Thread-safety: plain value types and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/model/job.h"
#include "common/model/resources.h"

namespace herd::model {

// One code per sentence. The parameters each code uses are listed beside it (PendingReason's
// fields); the text it makes is in pending_reason.cc.
enum class ReasonCode {
  kScheduler,           // waiting for the next cycle
  kNoNodeRegistered,    // no node has registered yet
  kHeldByUser,          // target: the job ("12", "7_3")
  kHeldByAdmin,         // target
  kBeginTime,           // target: the start time as the user reads it
  kAfterOk,             // target: "job 5" | "array 5" | "job 5_2"
  kAfterFail,           // target
  kAfterAny,            // target
  kArrayLimit,          // job: the array's id; count: its cap
  kUnknownProject,      // queue
  kLimit,               // queue, department, component, amount (the limit), used, need
  kTypedLimit,          // queue, department, gpu_types (one type) or target (one quota
                        // pool), amount, used, need (thousandths)
  kQuotaHeld,           // queue, job + job_class (the holder), component, used, amount
                        // (deserved)
  kWithinQuotaOnly,     // job_class, component, used, amount (deserved)
  kGaveWay,             // queue; job and other_queue: the job its start gave way to
  kGivesBack,           // queue
  kReserved,            // job: the job the resources are reserved for
  kNoNodeMatches,       // (its pool, constraints and node list match no node)
  kAllowedNodesDown,    // count: the nodes it may use
  kNoSchedulableNode,   // (all down or drained)
  kNoNodeHasType,       // need (GPU thousandths), gpu_types
  kOnlyOtherTypesFree,  // need, gpu_types, other_types, workers
  kGpuBlock,            // need, gpu_types, workers, most_free (GPUs)
  kGpuShareMemory,      // need, amount (GPU memory MiB), gpu_types
  kGpuShare,            // need, gpu_types, most_free (thousandths)
  kCores,               // need, workers, most_free
  kMemory,              // need (MiB), workers, most_free (MiB)
  kGangDoesNotFit,      // workers, per_worker, gpu_types
  kNoNodeFitsAll,       // per_worker, gpu_types
  kBehindOwnQueue,      // jobs ahead in its own queue took what it needed
  kBehindOtherQueues,   // jobs of projects further below their fair share took it
  kPreemptedJobs,       // count: victims still stopping
  kRoomBeingMade,       // resources freed by jobs evicted for others
  kReclaimBackoff,      // queue, count (times the job was reclaimed), amount (the backoff, s)
};
// The last code: tables and tests that walk every code go up to it.
inline constexpr ReasonCode kLastReasonCode = ReasonCode::kReclaimBackoff;

// "scheduler", "no_node_registered", ... "room_being_made": the code's name for scenarios and logs
// (snake case of the enumerator).
const char* ReasonCodeName(ReasonCode code);
std::optional<ReasonCode> ParseReasonCode(std::string_view name);
// The class of wait a code belongs to (what herd why and herd jobs show as "waits for").
WaitsFor WaitsForOf(ReasonCode code);

// A reason with the numbers and names its sentence quotes; fields a code does not use stay default.
// Built by ctld/sched (resources, quota, preemption) and herd-ctld (workflow, nodes).
struct PendingReason {
  ReasonCode code = ReasonCode::kScheduler;
  std::string queue = {};        // the project or department it names
  bool department = false;       // `queue` is a department
  std::string other_queue = {};  // kGaveWay: the project of `job`
  std::string job_class = {};
  std::string gpu_types = {};    // the job's GPU types, "H100" or "A100 or H100"; "": any
  std::string other_types = {};  // kOnlyOtherTypesFree: types it may not use that have GPUs free
  std::string target = {};       // see the codes
  JobId job = 0;
  int component = 0;  // 0 GPU thousandths, 1 cores, 2 memory MiB (quota numbers)
  int64_t amount = 0, used = 0, need = 0, most_free = 0;
  int64_t count = 0;
  int workers = 1;
  Resources per_worker = {};
  std::string holding = {};  // nodes reserved for it, "n1,n2"; "" when none
  bool operator==(const PendingReason&) const = default;
};

// The sentence a user reads: "needs 4 GPUs on one node; largest free block is 3".
std::string ReasonText(const PendingReason& reason);

}  // namespace herd::model
