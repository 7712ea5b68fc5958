// Evictions in progress: how the jobs of a PreemptDecision wait between cycles. herd-ctld keeps each
// evicted job (victim) with the job it was evicted for (beneficiary) until the beneficiary starts; the
// victim waits outside the snapshot meanwhile, and the beneficiary waits outside it while any of its
// victims still holds resources (is still stopping). herd-ctld's cycle and the property suite of the
// core (tests/sched/property.h) both follow these rules through this header.
// Thread-safety: pure functions of their arguments.
#pragma once

#include <functional>
#include <iterator>
#include <map>

#include "common/model/job.h"

namespace herd::sched {

// victim -> the job it was evicted for
using EvictedFor = std::map<model::JobId, model::JobId>;

// Forgets the evictions whose beneficiary is no longer waiting (started, or gone): their victims
// wait in line again like any pending job.
inline void ForgetServed(EvictedFor& evicted_for, const std::function<bool(model::JobId)>& waiting) {
  for (auto it = evicted_for.begin(); it != evicted_for.end();) {
    it = waiting(it->second) ? std::next(it) : evicted_for.erase(it);
  }
}

// Beneficiary -> how many of its victims still hold resources (`stopping`).
inline std::map<model::JobId, int> Releasing(const EvictedFor& evicted_for,
                                             const std::function<bool(model::JobId)>& stopping) {
  std::map<model::JobId, int> out;
  for (const auto& [victim, for_job] : evicted_for) {
    if (stopping(victim)) out[for_job]++;
  }
  return out;
}

// Whether pending job `id` waits outside this cycle's snapshot: a victim whose beneficiary has not
// started, or a beneficiary whose victims still hold resources (`releasing`, from Releasing()).
inline bool HeldOut(model::JobId id, const EvictedFor& evicted_for,
                    const std::map<model::JobId, int>& releasing) {
  return evicted_for.count(id) > 0 || releasing.count(id) > 0;
}

}  // namespace herd::sched
