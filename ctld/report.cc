// The controller's reports on its own state: `herd why` (why a job waits) and `herd usage`
// (GPU-hours and waits per user, project or department). Both read the in-memory jobs, which
// include finished ones, and the scheduler's last cycle.
#include <algorithm>

#include "ctld/controller.h"

namespace herd::ctld {

using model::Job;
using model::JobState;

namespace {

// What a pending job waits for, from the reason the scheduler (or controller) gave it.
std::string WaitsFor(const Job& job) {
  if (job.state != JobState::kPending) return "";
  const std::string& r = job.reason;
  auto has = [&r](const char* s) { return r.find(s) != std::string::npos; };
  if (has("depend") || r.starts_with("waiting for job ")) return "dependency";
  if (r.starts_with("held")) return "hold";
  if (r.starts_with("starts at ")) return "begin time";
  if (r.starts_with("array ") && has(" at once")) return "array limit";
  if (has("reserved for job")) return "reservation";
  if (has("preempted job")) return "preemption";
  if (has("limit") || has("quota") || has("does not exist")) return "quota";
  if (has("registered") || has("schedulable node")) return "node";
  if (has("waiting for the scheduler") || r.empty()) return "scheduler";
  return "resources";
}

// The value at quantile q (0..1) of sorted `v`, nearest rank; 0 when empty.
int64_t Percentile(const std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  size_t rank = static_cast<size_t>(q * static_cast<double>(v.size()) + 0.999999);
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

}  // namespace

Status Controller::OnWhy(const net::Incoming& in) {
  auto req = proto::BodyOf<proto::WhyRequest>(in.envelope);
  if (!req.ok()) return req.status();
  auto it = jobs_.find(req->id);
  if (it == jobs_.end()) return NotFound("no job " + std::to_string(req->id));
  const Job& job = it->second;
  proto::WhyReply reply;
  reply.job = job;
  reply.waits_for = WaitsFor(job);

  // The scheduler's order inside a project: class priority (higher first), then submit time.
  auto priority = [this](const Job& j) {
    auto c = config_.classes.find(j.spec.job_class);
    return c == config_.classes.end() ? 0 : c->second.priority;
  };
  auto key = [&priority](const Job& j) {
    return std::make_tuple(-priority(j), j.submit_time, j.id);
  };
  for (const auto& [id, j] : jobs_) {
    if (j.state != JobState::kPending || j.spec.project != job.spec.project) continue;
    reply.queue_length++;
    if (job.state == JobState::kPending && key(j) < key(job)) reply.position++;
  }

  proto::ProjectStatus& p = reply.project;
  p.name = job.spec.project;
  for (const auto& q : config_.queues) {
    if (q.name != job.spec.project) continue;
    p.parent = q.parent;
    p.is_project = q.is_project;
    p.deserved = q.deserved;
    if (q.limit) p.limit = *q.limit;
  }
  for (const auto& s : shares_) {
    if (s.name != job.spec.project) continue;
    p.fair_share = s.fair_share;
    p.allocated = s.allocated;
    p.pending_demand = s.pending_demand;
  }
  for (const auto& [id, j] : jobs_) {
    if (j.spec.project != job.spec.project) continue;
    if (j.state == JobState::kPending) p.pending_jobs++;
    if (model::HoldsResources(j.state)) p.running_jobs++;
  }
  ReplyBody(in, reply);
  return Status::Ok();
}

Status Controller::OnUsage(const net::Incoming& in) {
  auto req = proto::BodyOf<proto::UsageRequest>(in.envelope);
  if (!req.ok()) return req.status();
  if (req->by != "user" && req->by != "project" && req->by != "department") {
    return Invalid("usage: --by must be user, project or department, not '" + req->by + "'");
  }
  const int64_t now = Now();
  proto::UsageReply reply;
  reply.since = req->since;
  reply.until = req->until > 0 ? req->until : now;
  reply.by = req->by;
  if (reply.until <= reply.since) return Invalid("usage: --until must be after --since");

  std::map<std::string, std::string> parent;
  for (const auto& q : config_.queues) parent[q.name] = q.parent;
  struct Group {
    int64_t gpu_milli_seconds = 0;
    std::vector<int64_t> waits;
  };
  std::map<std::string, Group> groups;
  for (const auto& [id, j] : jobs_) {
    if (j.start_time <= 0) continue;  // never ran
    const bool running = !model::IsTerminal(j.state);
    const int64_t end = running ? now : std::max(j.end_time, j.start_time);
    const int64_t from = std::max(j.start_time, reply.since);
    const int64_t to = std::min(end, reply.until);
    // A job counts when its run overlaps the period (an instant job when it started inside).
    const bool overlaps = from < to || (j.start_time >= reply.since && j.start_time < reply.until);
    if (!overlaps) continue;
    std::string name = j.user;
    if (req->by == "project") name = j.spec.project;
    if (req->by == "department") {
      auto p = parent.find(j.spec.project);
      name = p == parent.end() || p->second.empty() ? "-" : p->second;
    }
    Group& g = groups[name];
    g.gpu_milli_seconds += j.spec.gpu_milli * j.spec.workers * std::max<int64_t>(0, to - from);
    g.waits.push_back(std::max<int64_t>(0, j.start_time - j.submit_time));
  }
  for (auto& [name, g] : groups) {
    std::sort(g.waits.begin(), g.waits.end());
    reply.rows.push_back({name, g.gpu_milli_seconds, static_cast<int64_t>(g.waits.size()),
                          Percentile(g.waits, 0.5), Percentile(g.waits, 0.9),
                          Percentile(g.waits, 0.99)});
  }
  ReplyBody(in, reply);
  return Status::Ok();
}

}  // namespace herd::ctld
