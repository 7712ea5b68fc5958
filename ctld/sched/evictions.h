// How evictions carry from one scheduling cycle to the next. herd-ctld, the scenario tests and
// bench/ all apply Decide()'s preemptions through these functions, so multi-cycle tests and
// simulations exercise what herd-ctld does:
// * a victim keeps its resources until it has stopped (herd-ctld: preempt_grace), and is never
//   chosen again meanwhile (RunningJob::evicted_for);
// * the job it was evicted for waits, counted in its queue, until every victim has released its
//   resources (PendingJob::victims_stopping); then it is served before every other job
//   (PendingJob::room_made), so no other queue takes the room made for it, and placed where its
//   eviction plan put it (PendingJob::room_on), so two jobs served so never swap rooms;
// * a victim waits, out of the scheduler's sight, until the job it was evicted for has started or
//   is no longer pending; then it is pending again, with its place in line.
// `evicted_for` maps each victim to the job it was evicted for (PreemptDecision::for_job); `room`
// maps each such job to where its eviction plan places it (PreemptDecision::room). herd-ctld
// keeps `room` in memory only: after a restart a job is placed wherever its room is.
// Thread-safety: plain functions over their arguments.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/model/job.h"
#include "ctld/sched/scheduler.h"
#include "ctld/sched/snapshot.h"

namespace herd::sched {

using EvictedFor = std::map<model::JobId, model::JobId>;  // victim -> the job it made room for
// That job -> where it is planned, worker by worker.
using RoomFor = std::map<model::JobId, std::vector<model::WorkerPlacement>>;

// Adds this cycle's evictions to `evicted_for` and their plans to `room` (RecordRoom).
void RecordEvictions(const Decisions& decisions, EvictedFor& evicted_for, RoomFor& room);
// Adds where each beneficiary of this cycle's evictions is planned to `room` (herd-ctld
// records the victims themselves as it stops them).
void RecordRoom(const Decisions& decisions, RoomFor& room);

// Counts a reclaim in its victim (RunningJob::reclaims, found in `running`), which the job keeps
// when it is requeued (Requeued): Policy::reclaim_backoff_s reads it.
void CountReclaim(const PreemptDecision& p, std::vector<RunningJob>& running);

// Drops the entries whose beneficiary is no longer waiting (`waiting(id)` false: it has started,
// ended or gone), releasing their victims back into line and their room to every job.
void ForgetSettled(EvictedFor& evicted_for, RoomFor& room,
                   const std::function<bool(model::JobId)>& waiting);

// Marks `snapshot` (built with every running and pending job) for the evictions under way: victims
// still running get evicted_for; victims waiting again leave `pending` for `held_out` while their
// beneficiary is pending; each beneficiary gets victims_stopping or room_made, and room_on.
// REQUIRES: ForgetSettled was called with the same notion of waiting.
void MarkEvictions(const EvictedFor& evicted_for, const RoomFor& room, Snapshot& snapshot);

}  // namespace herd::sched
