// What users do to their jobs once submitted: cancel (by id or by filters), suspend, resume,
// hold, release, requeue and update. An array's id stands for its members; a member named as
// ID_INDEX (resolved by herd to its id, sent in `members`) is acted on alone. Every change goes
// through JobTable::Transition and is written to the store in the Step's transaction, before the
// reply leaves.
#include <algorithm>
#include <set>

#include "common/model/units.h"
#include "ctld/controller.h"
#include "ctld/limits.h"

namespace herd::ctld {

using model::Job;
using model::JobState;

namespace rpc {
namespace {
struct JobVerbFamily;
}  // namespace

template <>
struct Handlers<JobVerbFamily> {
  // herd cancel/suspend/resume/release/hold/requeue.
  static Status OnJobAction(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
  // herd update.
  static Status OnUpdateJob(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
};
}  // namespace rpc

using JobVerbRequests = rpc::Handlers<rpc::JobVerbFamily>;

std::span<const rpc::Route> rpc::JobVerbRoutes() {
  using proto::MessageName;
  static const Route kRoutes[] = {
      {MessageName<proto::JobActionRequest>(), Caller::kUser, &JobVerbRequests::OnJobAction},
      {MessageName<proto::UpdateJobRequest>(), Caller::kUser, &JobVerbRequests::OnUpdateJob},
  };
  return kRoutes;
}

namespace {

constexpr const char* kActions[] = {"cancel", "suspend", "resume", "release", "hold", "requeue"};

// What an array's members must be for `action` to apply to them: "unfinished", "held", ...
const char* WhatActionNeeds(const std::string& action) {
  if (action == "release") return "held";
  if (action == "hold") return "pending";
  if (action == "suspend" || action == "requeue") return "running";
  if (action == "resume") return "suspended";
  return "unfinished";
}

}  // namespace

Status JobVerbRequests::OnJobAction(Controller& ctl, const net::Incoming& in,
                                    const auth::Identity& who) {
  auto req = proto::BodyOf<proto::JobActionRequest>(in.envelope);
  if (!req.ok()) return req.status();
  if (std::find(std::begin(kActions), std::end(kActions), req->action) == std::end(kActions)) {
    return Invalid("unknown action '" + req->action +
                   "': use cancel, suspend, resume, release, hold or requeue");
  }
  const bool filtered =
      !req->user.empty() || !req->states.empty() || !req->name.empty() || !req->project.empty();
  if (filtered || (req->ids.empty() && req->members.empty())) {
    if (req->action != "cancel") return Invalid(req->action + " takes job ids, not filters");
    if (!req->ids.empty() || !req->members.empty()) {
      return Invalid("cancel takes job ids or filters (-u, --state, --name, --project), not both");
    }
    auto reply = ctl.CancelMatching(*req, who);
    if (!reply.ok()) return reply.status();
    ctl.ReplyBody(in, *reply);
    return Status::Ok();
  }
  proto::JobActionReply reply;
  for (auto id : req->ids) reply.results.push_back(ctl.ActOn(req->action, id, true, who));
  for (auto id : req->members) reply.results.push_back(ctl.ActOn(req->action, id, false, who));
  ctl.ReplyBody(in, reply);
  return Status::Ok();
}

proto::JobActionResult Controller::ActOn(const std::string& action, model::JobId id,
                                         bool whole_array, const auth::Identity& who) {
  proto::JobActionResult r{id, false, "", 0};
  Job* found = FindJob(id);
  if (found == nullptr) {
    r.message = "not found";
    return r;
  }
  Job& job = *found;
  if (!MayActOn(who, job)) {
    r.message = "permission denied: job " + std::to_string(id) + " belongs to " + job.user;
    return r;
  }
  if (!whole_array || !IsArrayHead(job)) return ActOnJob(action, job, who);
  // The array: every member the action applies to; the others are not an error.
  std::string refused;
  for (Job* m : ArrayMembers(id)) {
    if (model::IsTerminal(m->state)) continue;
    proto::JobActionResult one = ActOnJob(action, *m, who);
    if (one.ok) {
      ++r.array_jobs;
      r.message = one.message;
    } else if (refused.empty() || one.message.starts_with("held by an admin")) {
      refused = one.message;
    }
  }
  r.ok = r.array_jobs > 0;
  if (!r.ok) {
    r.message = refused.starts_with("held by an admin")
                    ? refused
                    : "array " + std::to_string(id) + " has no " + WhatActionNeeds(action) + " job";
  }
  return r;
}

proto::JobActionResult Controller::ActOnJob(const std::string& action, Job& j,
                                            const auth::Identity& who) {
  proto::JobActionResult r{j.id, false, "", 0};
  const int grace_ms = static_cast<int>(config_.scheduler.kill_grace_s * 1000);
  const std::string state = model::JobStateName(j.state);
  schedule_soon_ = true;
  if (model::IsTerminal(j.state)) {
    r.message = "already " + state;
  } else if (action == "cancel") {
    if (j.state == JobState::kPending) {
      Finish(j, JobState::kCancelled, -1, "cancelled by " + who.user);
      r.ok = true, r.message = "cancelled";
    } else {
      StopJob(j, JobState::kCancelled, "cancelled by " + who.user, grace_ms);
      r.ok = true, r.message = "cancelling";
    }
  } else if (action == "suspend" || action == "resume") {
    const bool suspend = action == "suspend";
    if (j.state != (suspend ? JobState::kRunning : JobState::kSuspended)) {
      r.message = "cannot " + action + " a " + state + " job";
      return r;
    }
    jobs_.Transition(j, suspend ? JobState::kSuspended : JobState::kRunning, Now());
    j.reason = suspend ? "suspended by " + who.user : "";
    for (const auto& w : j.placement) {
      SendToNode(w.node, proto::SignalCommand{j.id, action, 0, "", j.restart_count});
    }
    Save(j);
    Event(j.id, (suspend ? "suspended by " : "resumed by ") + who.user);
    r.ok = true, r.message = suspend ? "suspended" : "resumed";
  } else if (action == "release") {
    if (!j.spec.hold) {
      r.message = "not held";
    } else if (j.spec.admin_hold && !IsAdmin(who)) {
      r.message = "held by an admin: only an admin can release it";
    } else {
      j.spec.hold = false;
      j.spec.admin_hold = false;
      if (j.state == JobState::kPending) {
        SetPendingReason(j, {.code = model::ReasonCode::kScheduler});
      }
      Save(j);
      Event(j.id, "released by " + who.user);
      r.ok = true, r.message = "released";
    }
  } else if (action == "hold") {
    // An admin's hold on another user's job is theirs to lift, as in Slurm.
    const bool by_admin = IsAdmin(who) && who.uid != j.uid;
    if (j.state != JobState::kPending) {
      r.message = "cannot hold a " + state + " job: only a pending job can be held";
    } else if (j.spec.hold && (j.spec.admin_hold || !by_admin)) {
      r.message = "already held";
    } else {
      j.spec.hold = true;
      j.spec.admin_hold = by_admin;
      SetPendingReason(j, HoldReason(j));
      Save(j);
      Event(j.id, "held by " + who.user + (by_admin ? " (admin)" : ""));
      r.ok = true, r.message = "held";
    }
  } else if (action == "requeue") {
    if (j.state == JobState::kPending) {
      r.message = "is pending: it is already in the queue";
    } else if (auto e = jobs_.ending.find(j.id); e != jobs_.ending.end()) {
      r.message = std::string("is already being stopped (") + e->second.reason + ")";
    } else {
      // Through PREEMPTED: the job is killed and, once its end is reported, PENDING again under
      // the same id (Requeue), like a preempted job but without counting as a preemption.
      StopJob(j, JobState::kPending, "requeued by " + who.user, grace_ms);
      if (auto e = jobs_.ending.find(j.id); e != jobs_.ending.end()) {
        e->second.requeue_asked = true;
        SaveStop(j.id);
      }
      r.ok = true, r.message = "requeued";
    }
  }
  return r;
}

Result<proto::JobActionReply> Controller::CancelMatching(const proto::JobActionRequest& req,
                                                         const auth::Identity& who) {
  if (req.user.empty() && req.states.empty() && req.name.empty() && req.project.empty()) {
    return Invalid("name the jobs to cancel, or filter them with -u, --state, --name or --project");
  }
  std::string user = req.user;
  if (!IsAdmin(who)) {
    if (!user.empty() && user != who.user) {
      return Denied("permission denied: you (" + who.user +
                    ") may cancel only your own jobs, not " + user + "'s");
    }
    user = who.user;
  }
  std::set<JobState> states;
  for (const auto& name : req.states) {
    auto s = model::ParseJobState(name);
    if (!s) return Invalid("unknown job state '" + name + "'");
    states.insert(*s);
  }
  proto::JobActionReply reply;
  for (auto& [id, j] : jobs_) {
    if (model::IsTerminal(j.state)) continue;
    if (!user.empty() && j.user != user) continue;
    if (!states.empty() && !states.count(j.state)) continue;
    if (!req.name.empty() && j.spec.name != req.name) continue;
    if (!req.project.empty() && j.spec.project != req.project) continue;
    reply.results.push_back(ActOnJob("cancel", j, who));
  }
  return reply;
}

Status JobVerbRequests::OnUpdateJob(Controller& ctl, const net::Incoming& in,
                                    const auth::Identity& who) {
  auto req = proto::BodyOf<proto::UpdateJobRequest>(in.envelope);
  if (!req.ok()) return req.status();
  if (req->time_limit_s < 0 && req->name.empty() && req->project.empty() && !req->hold) {
    return Invalid("nothing to update: give --time, --name, --project or --hold");
  }
  if (req->time_limit_s == 0) return Invalid("--time must be more than zero");
  proto::JobActionReply reply;
  auto update = [&](model::JobId id, bool whole_array) {
    proto::JobActionResult r{id, false, "", 0};
    Job* found = ctl.FindJob(id);
    if (found == nullptr) {
      r.message = "not found";
    } else if (!ctl.MayActOn(who, *found)) {
      r.message = "permission denied: job " + std::to_string(id) + " belongs to " + found->user;
    } else if (!whole_array || !ctl.IsArrayHead(*found)) {
      r = ctl.UpdateJob(*req, *found, who);
    } else {
      for (Job* m : ctl.ArrayMembers(id)) {
        if (m->state != JobState::kPending) continue;
        proto::JobActionResult one = ctl.UpdateJob(*req, *m, who);
        if (!one.ok) {
          r.message = one.message;  // the same for every member: say it once
          break;
        }
        ++r.array_jobs;
      }
      r.ok = r.array_jobs > 0;
      if (r.ok) r.message = "updated";
      if (r.message.empty()) r.message = "array " + std::to_string(id) + " has no pending job";
    }
    reply.results.push_back(std::move(r));
  };
  for (auto id : req->ids) update(id, true);
  for (auto id : req->members) update(id, false);
  ctl.ReplyBody(in, reply);
  return Status::Ok();
}

proto::JobActionResult Controller::UpdateJob(const proto::UpdateJobRequest& req, Job& j,
                                             const auth::Identity& who) {
  proto::JobActionResult r{j.id, false, "", 0};
  const bool pending = j.state == JobState::kPending;
  // An admin may give a running job more (or less) time; everything else waits in the queue.
  const bool only_time = req.name.empty() && req.project.empty() && !req.hold;
  if (model::IsTerminal(j.state)) {
    r.message = std::string("already ") + model::JobStateName(j.state);
    return r;
  }
  if (!pending && !(only_time && IsAdmin(who))) {
    r.message = std::string("is ") + model::JobStateName(j.state) + ": only a pending job can be " +
                "updated" + (only_time ? " (an admin may change a running job's time limit)" : "");
    return r;
  }
  // The new spec is checked as a submit checks it, as the user who asks.
  model::JobSpec spec = j.spec;
  if (!req.name.empty()) spec.name = req.name;
  if (!req.project.empty()) spec.project = req.project;
  if (req.time_limit_s > 0) spec.time_limit_s = req.time_limit_s;
  Status s = Status::Ok();
  if (!req.project.empty()) s = CheckProject(&spec, who);
  if (s.ok() && !req.project.empty()) {
    if (const config::ClassConfig* cls = config_.FindClass(spec.job_class)) {
      s = CheckQuotaCanHold(spec, config_, *cls);
    }
  }
  if (s.ok() && req.time_limit_s > 0) s = CheckTimeLimit(&spec);
  if (s.ok()) s = CheckSpecLimits(spec, config_.controller);
  if (!s.ok()) {
    r.message = s.message();
    return r;
  }
  std::string changed;
  auto note = [&](const std::string& what) { changed += (changed.empty() ? "" : ", ") + what; };
  if (spec.name != j.spec.name) note("name " + spec.name);
  if (spec.project != j.spec.project) note("project " + spec.project);
  if (spec.time_limit_s != j.spec.time_limit_s) {
    note("time limit " + model::FormatDuration(spec.time_limit_s));
  }
  j.spec = std::move(spec);
  if (req.hold) {
    proto::JobActionResult held = ActOnJob("hold", j, who);
    if (held.ok) note("held");
    if (!held.ok && changed.empty()) return held;
  }
  Save(j);
  Event(j.id, "updated by " + who.user + ": " + (changed.empty() ? "nothing changed" : changed));
  schedule_soon_ = true;
  r.ok = true;
  r.message = changed.empty() ? "unchanged" : "updated: " + changed;
  return r;
}

}  // namespace herd::ctld
