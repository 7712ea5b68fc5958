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
  int64_t index = -1;  // >= 0: member `index` of array `id` (ID_INDEX); -1: job or array `id`
  std::string kind;    // "ok", "any", "fail"
  // "12", "12_3": as it is stored and shown.
  std::string Target() const {
    return std::to_string(id) + (index >= 0 ? "_" + std::to_string(index) : "");
  }
};

bool ParseNumber(std::string_view text, int64_t* n) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *n);
  return !text.empty() && ec == std::errc() && p == text.data() + text.size();
}

// "12", "12:ok", "12:any", "12:fail", "12_3:ok" (member 3 of array 12).
std::optional<Dependency> ParseDependency(const std::string& text) {
  Dependency d;
  const auto colon = text.find(':');
  std::string_view target = std::string_view(text).substr(0, colon);
  d.kind = colon == std::string::npos ? "ok" : text.substr(colon + 1);
  if (const auto under = target.find('_'); under != std::string_view::npos) {
    if (!ParseNumber(target.substr(under + 1), &d.index) || d.index < 0) return {};
    target = target.substr(0, under);
  }
  if (!ParseNumber(target, &d.id) || d.id < 1) return {};
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
  spec->admin_hold = false;  // only herd hold by an admin sets it
  if (spec->begin_time < 0) return Invalid("the begin time must not be negative");
  if (spec->after.size() > 1000) return Invalid("a job depends on at most 1000 jobs");
  for (auto& text : spec->after) {
    auto d = ParseDependency(text);
    if (!d) {
      return Invalid("dependency '" + text +
                     "': use JOB, JOB:ok, JOB:any or JOB:fail (JOB: an id, an array's id for all "
                     "of its members, or ARRAY_INDEX for one)");
    }
    if (d->index >= 0 ? ArrayMember(d->id, d->index) == nullptr : FindJob(d->id) == nullptr) {
      return NotFound("job " + d->Target() + " not found");
    }
    text = d->Target() + ":" + d->kind;
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

std::vector<Job*> Controller::ArrayMembers(model::JobId array) {
  // Memory holds all of an array or none of it (JobTable::ForgetEndedBefore).
  if (!jobs_.count(array)) return RecallArray(array);
  // Members have consecutive ids from the array's (ctld/rpc/submit.cc).
  std::vector<Job*> members;
  for (auto it = jobs_.lower_bound(array); it != jobs_.end() && it->second.spec.array_id == array;
       ++it) {
    members.push_back(&it->second);
  }
  return members;
}

const Job* Controller::ArrayMember(model::JobId array, int64_t index) const {
  if (!jobs_.count(array)) {
    for (const Job* m : RecallArray(array)) {
      if (m->spec.array_index == index) return m;
    }
    return nullptr;
  }
  for (auto it = jobs_.find(array); it != jobs_.end() && it->second.spec.array_id == array; ++it) {
    if (it->second.spec.array_index == index) return &it->second;
  }
  return nullptr;
}

model::PendingReason Controller::HoldReason(const Job& job) {
  return {.code = job.spec.admin_hold ? model::ReasonCode::kHeldByAdmin
                                      : model::ReasonCode::kHeldByUser,
          .target = model::JobRefText(job)};
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
    std::optional<model::PendingReason> reason;
    std::string never;
    for (const auto& text : j.spec.after) {
      auto d = ParseDependency(text);
      if (!d) continue;  // validated at submit
      // An array's id stands for all of its members; ID_INDEX for one.
      std::vector<const Job*> deps;
      bool array = false;
      if (d->index >= 0) {
        if (const Job* m = ArrayMember(d->id, d->index)) deps.push_back(m);
      } else if (const Job* dep = FindJob(d->id)) {
        array = IsArrayHead(*dep);
        if (array) {
          for (const Job* m : ArrayMembers(d->id)) deps.push_back(m);
        } else {
          deps.push_back(dep);
        }
      }
      const std::string name = (array ? "array " : "job ") + d->Target();
      if (deps.empty()) {
        never = "dependency " + name + " not found";
        break;
      }
      // afterok: every member COMPLETED; afterany: every member ended; afternotok: any member
      // ended otherwise, as soon as one does.
      const Job* failed = nullptr;
      bool all_ended = true;
      for (const Job* m : deps) {
        if (!model::IsTerminal(m->state)) {
          all_ended = false;
        } else if (m->state != JobState::kCompleted && failed == nullptr) {
          failed = m;
        }
      }
      const std::string which = failed == nullptr || !array
                                    ? name
                                    : name + " (its job " + model::JobRefText(*failed) + ")";
      if (d->kind == "ok" && failed != nullptr) {
        never = "dependency " + which + " ended " + model::JobStateName(failed->state);
        break;
      }
      if (d->kind == "fail" && failed != nullptr) continue;
      if (!all_ended) {
        if (!reason) {
          reason = {.code = d->kind == "ok"     ? model::ReasonCode::kAfterOk
                            : d->kind == "fail" ? model::ReasonCode::kAfterFail
                                                : model::ReasonCode::kAfterAny,
                    .target = name};
        }
        continue;
      }
      if (d->kind == "fail") {
        never = "dependency " + name + " ended " + (array ? "with every job COMPLETED" : "COMPLETED");
        break;
      }
    }
    if (!never.empty()) {
      Finish(j, JobState::kCancelled, -1, never);
      continue;
    }
    if (j.spec.hold) {
      reason = HoldReason(j);
    } else if (j.spec.begin_time > now) {
      reason = {.code = model::ReasonCode::kBeginTime, .target = LocalTime(j.spec.begin_time)};
    }
    if (!reason && j.spec.array_id != 0 && j.spec.array_limit > 0) {
      int& used = array_slots[j.spec.array_id];
      if (used >= j.spec.array_limit) {
        reason = {.code = model::ReasonCode::kArrayLimit,
                  .job = j.spec.array_id,
                  .count = j.spec.array_limit};
      } else {
        ++used;
      }
    }
    if (!reason) continue;
    jobs_.gated.insert(id);
    jobs_.pending_since[id] = now;  // the reservation clock starts when the job may start
    if (SetPendingReason(j, *reason)) Save(j);
  }
}

}  // namespace herd::ctld
