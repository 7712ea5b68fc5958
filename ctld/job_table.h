// JobTable: the jobs herd-ctld holds in memory (unfinished ones, and finished ones until
// ForgetEndedBefore lets them go; in id order) and the facts it keeps in memory about each while it
// lives: its reservation clock, the stop asked of it, its workers' ends and usage, its idle clock,
// the eviction it is part of. Transition() is the only way a job's state changes, and it drops in
// one place the facts that belong to the state left, so no exit path cleans by hand and no fact
// outlives its job's run. Built by Controller; not thread-safe (the controller's one thread).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "common/model/job.h"
#include "ctld/sched/evictions.h"

namespace herd::ctld {

class JobTable {
 public:
  using Map = std::map<model::JobId, model::Job>;
  // What the controller asked of a running job that has not finished yet.
  struct Ending {
    model::JobState final_state;  // CANCELLED, TIMEOUT, or PENDING for a requeue
    std::string reason;
    bool requeue_asked = false;  // the requeue is herd requeue's, not a preemption
  };

  // Whether herd's state machine (shared/DESIGN.md "Jobs") lets a job go from `from` to `to`:
  // PENDING -> STARTING | CANCELLED; STARTING, RUNNING, SUSPENDED, PREEMPTED -> PREEMPTED (to be
  // requeued; not from itself), PENDING (requeued) or an end; STARTING -> RUNNING;
  // RUNNING <-> SUSPENDED. Nothing leaves an end.
  static bool Allowed(model::JobState from, model::JobState to);

  // Adds `job` (its id is new); a pending one's reservation clock starts at `since`. Its
  // environment and batch script are dropped: the store keeps them (store::JobEnvironment), read
  // back when the job is launched or shown to its owner, so a queued job costs memory for its
  // request alone (its environment is often a few KiB, at most [controller] max_env_bytes).
  model::Job& Add(model::Job job, int64_t since);
  // The only way a job's state changes. Entering PENDING starts its reservation clock at `now`
  // (and it waits for the scheduler); leaving PENDING stops it (and it waits for nothing). Leaving the states that hold resources (to PENDING or an end)
  // drops the run's facts: the stop asked, workers ended, their usage, the idle clock. An end
  // also drops the job from the evictions under way. Returns true when a stop was dropped (the
  // caller clears it in the store). A change the state machine does not allow is logged and made.
  bool Transition(model::Job& job, model::JobState to, int64_t now);
  // True when any per-job fact but the job itself is kept for `id` (tests: none for an ended job).
  bool HasFacts(model::JobId id) const;
  // Lets go of the finished jobs that ended before `cutoff` (the store keeps them). An array goes
  // only whole, once every member has ended before `cutoff`, so memory holds all of an array or
  // none of it; one with a member unfinished is looked at again once `now` is before `cutoff`.
  // Returns how many jobs left memory.
  size_t ForgetEndedBefore(int64_t cutoff, int64_t now);

  // The jobs, as a map in id order.
  Map::iterator begin() { return jobs_.begin(); }
  Map::iterator end() { return jobs_.end(); }
  Map::const_iterator begin() const { return jobs_.begin(); }
  Map::const_iterator end() const { return jobs_.end(); }
  Map::iterator find(model::JobId id) { return jobs_.find(id); }
  Map::const_iterator find(model::JobId id) const { return jobs_.find(id); }
  Map::iterator lower_bound(model::JobId id) { return jobs_.lower_bound(id); }
  Map::const_iterator upper_bound(model::JobId id) const { return jobs_.upper_bound(id); }
  size_t count(model::JobId id) const { return jobs_.count(id); }
  size_t size() const { return jobs_.size(); }

  // Per-job facts, each cleaned by Transition() (gated and pending_since are set by the cycle).
  std::map<model::JobId, Ending> ending;                  // kill sent, end not yet reported
  std::map<model::JobId, std::set<int>> ended_workers;    // of the current run
  std::map<model::JobId, int64_t> pending_since;          // reservation clock of pending jobs
  std::map<model::JobId, int64_t> idle_since;             // all of the job's GPUs idle since
  std::map<model::JobId, std::map<int, model::JobUsage>> worker_usage;  // running, by worker
  // Victim -> the pending job it was preempted for. Until that job starts, the victim does not
  // start again and the beneficiary waits for its victims: otherwise the freed GPUs thrash.
  sched::EvictedFor preempted_for;
  // Pending job -> where its eviction plan placed it (sched::RoomFor); in memory only: after a
  // restart the job takes its room wherever it fits.
  sched::RoomFor room_for;
  std::set<model::JobId> gated;  // pending but held back by the workflow gates this cycle

 private:
  // Drops every per-job fact of `id`.
  void DropFacts(model::JobId id);

  Map jobs_;
  // (when it ended, id) of the finished jobs in memory, oldest first; an array's members may be in
  // it again with a later time (ForgetEndedBefore).
  std::set<std::pair<int64_t, model::JobId>> ended_;
};

}  // namespace herd::ctld
