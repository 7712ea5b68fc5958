#include "ctld/job_table.h"

#include "spdlog/spdlog.h"

namespace herd::ctld {

using model::JobState;

bool JobTable::Allowed(JobState from, JobState to) {
  if (model::IsTerminal(from) || from == to) return false;
  switch (from) {
    case JobState::kPending:
      return to == JobState::kStarting || to == JobState::kCancelled;
    case JobState::kStarting:
    case JobState::kRunning:
    case JobState::kSuspended:
    case JobState::kPreempted:
      if (to == JobState::kPending || to == JobState::kPreempted || model::IsTerminal(to)) {
        return true;
      }
      return (from == JobState::kStarting && to == JobState::kRunning) ||
             (from == JobState::kRunning && to == JobState::kSuspended) ||
             (from == JobState::kSuspended && to == JobState::kRunning);
    default:
      return false;
  }
}

model::Job& JobTable::Add(model::Job job, int64_t since) {
  const model::JobId id = job.id;
  if (job.state == JobState::kPending) pending_since[id] = since;
  return jobs_[id] = std::move(job);
}

bool JobTable::Transition(model::Job& job, JobState to, int64_t now) {
  const JobState from = job.state;
  if (!Allowed(from, to)) {
    spdlog::error("job {}: {} -> {} is not a change herd's state machine allows", job.id,
                  model::JobStateName(from), model::JobStateName(to));
  }
  job.state = to;
  const model::JobId id = job.id;
  if (to == JobState::kPending) {
    pending_since[id] = now;
    job.waits_for = model::WaitsFor::kScheduler;  // until the next cycle says more
  } else {
    job.waits_for = model::WaitsFor::kNothing;
  }
  if (from == JobState::kPending && to != JobState::kPending) {
    pending_since.erase(id);
    gated.erase(id);
  }
  bool stop_dropped = false;
  if (model::HoldsResources(from) && !model::HoldsResources(to)) {
    stop_dropped = ending.erase(id) > 0;
    ended_workers.erase(id);
    worker_usage.erase(id);
    idle_since.erase(id);
  }
  if (model::IsTerminal(to)) {
    preempted_for.erase(id);
    room_for.erase(id);
    gated.erase(id);
  }
  return stop_dropped;
}

bool JobTable::HasFacts(model::JobId id) const {
  return ending.count(id) || ended_workers.count(id) || pending_since.count(id) ||
         idle_since.count(id) || worker_usage.count(id) || preempted_for.count(id) ||
         room_for.count(id) || gated.count(id);
}

}  // namespace herd::ctld
