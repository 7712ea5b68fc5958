// When a pending job could start: the estimate `herd why` shows. A pure function of the Snapshot,
// like Decide(): it walks the running jobs in the order they are expected to end (their time
// limits; now for jobs being stopped), freeing their resources, until the job's workers fit on the
// nodes it may use and its project's limit (and, for a class that starts only within quota, its
// deserved quota, against which only the project's firm jobs count, as in Decide()) has room.
// Pending jobs ahead of it, preemption, reservations and GPU memory are left out: a rough,
// optimistic lower bound. Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <set>

#include "ctld/sched/snapshot.h"

namespace herd::sched {

// Why there is no estimate.
enum class NoEstimate {
  kNone,         // there is one
  kOverLimit,    // it asks for more GPUs than its project may ever use
  kNoTimeLimit,  // it fits only once running jobs without a time limit (or
                 // suspended) end
  kNeverFits,    // it does not fit even when every running job has ended: never,
                 // on these nodes
};
// "over_limit", "no_time_limit", "never_fits" ("" for kNone): names for the scenario format.
const char* NoEstimateName(NoEstimate why);
// The sentence herd why prints: "no estimate: running jobs have no time limit".
const char* NoEstimateText(NoEstimate why);

struct StartEstimate {
  int64_t at = -1;                      // seconds since epoch (>= snapshot.now); -1: none
  NoEstimate none = NoEstimate::kNone;  // why not, when at < 0
  bool operator==(const StartEstimate&) const = default;
};

// The earliest time `job` could start on `snapshot` by the rule above. `stopping`: running jobs
// herd-ctld is stopping for reasons the snapshot does not show (a cancel or time-out under way):
// they release their resources now, like jobs with evicted_for set.
StartEstimate EstimateStart(const Snapshot& snapshot, const PendingJob& job,
                            const std::set<model::JobId>& stopping = {});

}  // namespace herd::sched
