// herd why's estimate of a pending job's start (the request handlers are in ctld/rpc/report.cc).
#include <set>

#include "ctld/controller.h"
#include "ctld/sched/estimate.h"

namespace herd::ctld {

using model::Job;
using model::JobState;

// sched::EstimateStart on the snapshot a cycle would decide on now; jobs whose stop herd-ctld has
// asked for (cancels, time-outs and preemptions under way) release their resources now.
void Controller::EstimateStart(const Job& job, proto::WhyReply* reply) const {
  switch (job.waits_for) {
    case model::WaitsFor::kDependency:
    case model::WaitsFor::kHold:
    case model::WaitsFor::kBeginTime:
    case model::WaitsFor::kArrayLimit:
    case model::WaitsFor::kNode:
      reply->estimate_note =
          std::string("no estimate: it waits for its ") + model::WaitsForName(job.waits_for);
      return;
    default:
      break;
  }
  const sched::Snapshot snapshot = BuildSnapshot();
  // A job evicted for another waits out of the scheduler's sight (held_out) until that one starts.
  const sched::PendingJob* pending = nullptr;
  for (const auto* jobs : {&snapshot.pending, &snapshot.held_out}) {
    for (const sched::PendingJob& p : *jobs) {
      if (p.id == job.id) pending = &p;
    }
  }
  if (pending == nullptr) {
    reply->estimate_note = "no estimate: it is not among the jobs the scheduler considers";
    return;
  }
  std::set<model::JobId> stopping;
  for (const auto& [id, ending] : jobs_.ending) stopping.insert(id);
  for (const auto& [id, j] : jobs_) {
    if (j.state == JobState::kPreempted) stopping.insert(id);
  }
  const sched::StartEstimate e = sched::EstimateStart(snapshot, *pending, stopping);
  if (e.at >= 0) {
    reply->estimated_start = e.at;
  } else {
    reply->estimate_note = sched::NoEstimateText(e.none);
  }
}

}  // namespace herd::ctld
