// Workflow gates: what keeps a pending job from starting besides resources. Dependencies on
// other jobs (--after), a hold (--hold, herd release), a begin time (--begin) and the number
// of an array's members running at once (--array ...%N).
#include <time.h>

#include <charconv>
#include <optional>

#include "ctld/controller.h"

namespace herd::ctld {

using model::Job;
using model::JobState;

namespace {

struct Dependency {
  model::JobId id = 0;
  std::string kind;  // "ok", "any", "fail"
};

// "12", "12:ok", "12:any", "12:fail".
std::optional<Dependency> ParseDependency(const std::string& text) {
  Dependency d;
  const auto colon = text.find(':');
  const std::string id = text.substr(0, colon);
  d.kind = colon == std::string::npos ? "ok" : text.substr(colon + 1);
  auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), d.id);
  if (id.empty() || ec != std::errc() || p != id.data() + id.size() || d.id < 1) return {};
  if (d.kind != "ok" && d.kind != "any" && d.kind != "fail") return {};
  return d;
}

std::string LocalTime(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  localtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

}  // namespace

Status Controller::ValidateWorkflow(model::JobSpec* spec) const {
  // Array membership is set by OnSubmit, never by the client.
  spec->array_id = 0;
  spec->array_index = 0;
  spec->sweep.clear();
  if (spec->begin_time < 0) return Invalid("the begin time must not be negative");
  if (spec->after.size() > 1000) return Invalid("a job depends on at most 1000 jobs");
  for (auto& text : spec->after) {
    auto d = ParseDependency(text);
    if (!d) return Invalid("dependency '" + text + "': use JOB, JOB:ok, JOB:any or JOB:fail");
    if (!jobs_.count(d->id)) return NotFound("job " + std::to_string(d->id) + " not found");
    text = std::to_string(d->id) + ":" + d->kind;
  }
  return Status::Ok();
}

// --stop-after-first-success: once a member of such an array has completed, its unfinished
// members are cancelled, pending and running alike. Derived from the stored states every cycle,
// so it holds across a controller restart.
void Controller::StopAfterFirstSuccess() {
  std::map<model::JobId, model::JobId> succeeded;  // array id -> its first completed member
  for (const auto& [id, j] : jobs_) {
    if (j.spec.stop_after_success && j.spec.array_id != 0 && j.state == JobState::kCompleted) {
      succeeded.try_emplace(j.spec.array_id, id);
    }
  }
  if (succeeded.empty()) return;
  const int grace_ms = static_cast<int>(config_.scheduler.kill_grace_s * 1000);
  for (auto& [id, j] : jobs_) {
    auto it = succeeded.find(j.spec.array_id);
    if (it == succeeded.end() || model::IsTerminal(j.state)) continue;
    const std::string reason = "cancelled: job " + std::to_string(it->second) + " of array " +
                               std::to_string(it->first) +
                               " completed (--stop-after-first-success)";
    if (j.state == JobState::kPending) {
      Finish(j, JobState::kCancelled, -1, reason);
    } else if (auto e = jobs_.ending.find(id);
               e == jobs_.ending.end() || e->second.final_state != JobState::kCancelled) {
      StopJob(j, JobState::kCancelled, reason, grace_ms);
    }
  }
}

void Controller::GateWorkflow() {
  jobs_.gated.clear();
  StopAfterFirstSuccess();
  std::map<model::JobId, int> array_slots;  // per capped array: members running or offered
  for (const auto& [id, j] : jobs_) {
    if (j.spec.array_id != 0 && j.spec.array_limit > 0 && model::HoldsResources(j.state)) {
      array_slots[j.spec.array_id]++;
    }
  }
  const int64_t now = Now();
  // In id order: a dependency is older than its dependent, so a cancel cascades in one pass.
  for (auto& [id, j] : jobs_) {
    if (j.state != JobState::kPending) continue;
    model::PendingReason reason{model::WaitsFor::kNothing, ""};
    std::string never;
    for (const auto& text : j.spec.after) {
      auto d = ParseDependency(text);
      if (!d) continue;  // validated at submit
      const std::string name = "job " + std::to_string(d->id);
      auto it = jobs_.find(d->id);
      if (it == jobs_.end()) {
        never = "dependency " + name + " not found";
        break;
      }
      const Job& dep = it->second;
      if (!model::IsTerminal(dep.state)) {
        if (reason.text.empty()) {
          reason.waits_for = model::WaitsFor::kDependency;
          reason.text = "waiting for " + name + " to " +
                   (d->kind == "ok" ? "complete" : d->kind == "fail" ? "fail" : "end");
        }
        continue;
      }
      const bool completed = dep.state == JobState::kCompleted;
      if ((d->kind == "ok" && !completed) || (d->kind == "fail" && completed)) {
        never = "dependency " + name + " ended " + model::JobStateName(dep.state);
        break;
      }
    }
    if (!never.empty()) {
      Finish(j, JobState::kCancelled, -1, never);
      continue;
    }
    if (j.spec.hold) {
      reason = {model::WaitsFor::kHold, "held: herd release " + std::to_string(id)};
    } else if (j.spec.begin_time > now) {
      reason = {model::WaitsFor::kBeginTime, "starts at " + LocalTime(j.spec.begin_time)};
    }
    if (reason.text.empty() && j.spec.array_id != 0 && j.spec.array_limit > 0) {
      int& used = array_slots[j.spec.array_id];
      if (used >= j.spec.array_limit) {
        reason.waits_for = model::WaitsFor::kArrayLimit;
        reason.text = "array " + std::to_string(j.spec.array_id) + " runs " +
                 std::to_string(j.spec.array_limit) + " at once";
      } else {
        ++used;
      }
    }
    if (reason.text.empty()) continue;
    jobs_.gated.insert(id);
    jobs_.pending_since[id] = now;  // the reservation clock starts when the job may start
    if (SetPendingReason(j, std::move(reason))) Save(j);
  }
}

proto::JobActionResult Controller::WorkflowAction(const std::string& action, Job& job,
                                                  const auth::Identity& who) {
  proto::JobActionResult r{job.id, false, "", 0};
  const bool array = IsArrayHead(job);
  std::vector<Job*> targets;
  if (array) {
    for (auto& [id, m] : jobs_) {
      if (m.spec.array_id == job.id && !model::IsTerminal(m.state)) targets.push_back(&m);
    }
  } else {
    targets.push_back(&job);
  }
  const int grace_ms = static_cast<int>(config_.scheduler.kill_grace_s * 1000);
  int acted = 0;
  for (Job* t : targets) {
    if (model::IsTerminal(t->state)) {
      r.message = std::string("already ") + model::JobStateName(t->state);
    } else if (action == "cancel") {
      if (t->state == JobState::kPending) {
        Finish(*t, JobState::kCancelled, -1, "cancelled by " + who.user);
        r.message = "cancelled";
      } else {
        StopJob(*t, JobState::kCancelled, "cancelled by " + who.user, grace_ms);
        r.message = "cancelling";
      }
      ++acted;
    } else if (!t->spec.hold) {
      r.message = "not held";
    } else {
      t->spec.hold = false;
      if (t->state == JobState::kPending) {
        SetPendingReason(*t, {model::WaitsFor::kScheduler, kSchedulerReason});
      }
      Save(*t);
      Event(t->id, "released by " + who.user);
      r.message = "released";
      ++acted;
    }
  }
  r.ok = acted > 0;
  if (array) {
    r.array_jobs = acted;
    if (!r.ok) {
      r.message = "array " + std::to_string(job.id) + " has no " +
                  (action == "cancel" ? "unfinished" : "held") + " job";
    }
  }
  schedule_soon_ = true;
  return r;
}

}  // namespace herd::ctld
