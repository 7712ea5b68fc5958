#include "ctld/job_table.h"

#include <algorithm>
#include <vector>

#include "common/model/pending_reason.h"
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
  // Freed, not just emptied: clear() would keep a string's capacity.
  job.spec.env = {};
  std::string().swap(job.spec.script);
  if (job.state == JobState::kPending) pending_since[id] = since;
  if (model::IsTerminal(job.state)) ended_.emplace(job.end_time, id);
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
    job.reason_code = model::ReasonCodeName(model::ReasonCode::kScheduler);
  } else {
    job.waits_for = model::WaitsFor::kNothing;
    job.reason_code.clear();
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
    ended_.emplace(now, id);
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

void JobTable::DropFacts(model::JobId id) {
  ending.erase(id);
  ended_workers.erase(id);
  pending_since.erase(id);
  idle_since.erase(id);
  worker_usage.erase(id);
  preempted_for.erase(id);
  room_for.erase(id);
  gated.erase(id);
}

size_t JobTable::ForgetEndedBefore(int64_t cutoff, int64_t now) {
  size_t forgotten = 0;
  std::map<model::JobId, int64_t> later;  // array -> when to look again; 0: gone
  std::vector<std::pair<int64_t, model::JobId>> again;
  auto forget = [&](Map::iterator it) {
    DropFacts(it->first);
    ++forgotten;
    return jobs_.erase(it);
  };
  while (!ended_.empty() && ended_.begin()->first < cutoff) {
    const model::JobId id = ended_.begin()->second;
    ended_.erase(ended_.begin());
    auto it = jobs_.find(id);
    if (it == jobs_.end() || !model::IsTerminal(it->second.state)) continue;
    const model::JobId array = it->second.spec.array_id;
    if (array == 0 || !jobs_.count(array)) {  // no array, or (not expected) one without its head
      forget(it);
      continue;
    }
    auto [verdict, fresh] = later.try_emplace(array, 0);
    if (fresh) {
      // Members have consecutive ids from the array's (ctld/rpc/submit.cc).
      auto first = jobs_.find(array), last = first;
      for (; last != jobs_.end() && last->second.spec.array_id == array; ++last) {
        const model::Job& m = last->second;
        if (!model::IsTerminal(m.state)) {
          verdict->second = std::max(verdict->second, now);
        } else if (m.end_time >= cutoff) {
          verdict->second = std::max(verdict->second, m.end_time);
        }
      }
      if (verdict->second == 0) {
        while (first != last) first = forget(first);
      }
    }
    if (verdict->second != 0) again.emplace_back(verdict->second, id);
  }
  ended_.insert(again.begin(), again.end());
  return forgotten;
}

}  // namespace herd::ctld
