// herd why (why a job waits) and herd usage (GPU-hours and waits per user, project, department or
// GPU type). Both read the in-memory jobs and the scheduler's last cycle; usage also reads the
// finished jobs that left memory from the store, and the daily totals of those whose records
// were pruned.
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "ctld/controller.h"
#include "spdlog/spdlog.h"

namespace herd::ctld {

using model::Job;
using model::JobState;

namespace rpc {
namespace {
struct ReportFamily;
}  // namespace

template <>
struct Handlers<ReportFamily> {
  // herd why.
  static Status OnWhy(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
  // herd usage.
  static Status OnUsage(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
};
}  // namespace rpc

using ReportRequests = rpc::Handlers<rpc::ReportFamily>;

std::span<const rpc::Route> rpc::ReportRoutes() {
  using proto::MessageName;
  static const Route kRoutes[] = {
      {MessageName<proto::WhyRequest>(), Caller::kUser, &ReportRequests::OnWhy},
      {MessageName<proto::UsageRequest>(), Caller::kUser, &ReportRequests::OnUsage},
  };
  return kRoutes;
}

namespace {

// The value at quantile q (0..1) of sorted `v`, nearest rank; 0 when empty.
int64_t Percentile(const std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  size_t rank = static_cast<size_t>(q * static_cast<double>(v.size()) + 0.999999);
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

}  // namespace

Status ReportRequests::OnWhy(Controller& ctl, const net::Incoming& in, const auth::Identity& who) {
  auto req = proto::BodyOf<proto::WhyRequest>(in.envelope);
  if (!req.ok()) return req.status();
  const Job* found = ctl.FindJob(req->id);
  if (found == nullptr) return NotFound("no job " + std::to_string(req->id));
  const Job& job = *found;
  proto::WhyReply reply;
  reply.may_act = ctl.MayActOn(who, job);
  reply.job = reply.may_act ? job : ctl.Redacted(job);
  if (reply.may_act) HERD_RETURN_IF_ERROR(ctl.LoadEnvironment(&reply.job));
  if (job.state == JobState::kPending) reply.waits_for = model::WaitsForName(job.waits_for);

  // The scheduler's order inside a project: class priority (higher first), then submit time.
  auto priority = [&ctl](const Job& j) {
    auto c = ctl.config_.classes.find(j.spec.job_class);
    return c == ctl.config_.classes.end() ? 0 : c->second.priority;
  };
  auto key = [&priority](const Job& j) {
    return std::make_tuple(-priority(j), j.submit_time, j.id);
  };
  for (const auto& [id, j] : ctl.jobs_) {
    if (j.state != JobState::kPending || j.spec.project != job.spec.project) continue;
    reply.queue_length++;
    if (job.state == JobState::kPending && key(j) < key(job)) reply.position++;
  }

  proto::ProjectStatus& p = reply.project;
  p.name = job.spec.project;
  for (const auto& q : ctl.config_.queues) {
    if (q.name != job.spec.project) continue;
    p.parent = q.parent;
    p.is_project = q.is_project;
    p.deserved = q.deserved;
    if (q.limit) p.limit = *q.limit;
  }
  for (const auto& s : ctl.shares_) {
    if (s.name != job.spec.project) continue;
    p.fair_share = s.fair_share;
    p.allocated = s.allocated;
    p.pending_demand = s.pending_demand;
  }
  for (const auto& [id, j] : ctl.jobs_) {
    if (j.spec.project != job.spec.project) continue;
    if (j.state == JobState::kPending) p.pending_jobs++;
    if (model::HoldsResources(j.state)) p.running_jobs++;
  }
  if (job.state == JobState::kPending) ctl.EstimateStart(job, &reply);
  // A job's history is its owner's: its events may quote its command or paths.
  if (ctl.MayActOn(who, job)) {
    auto events = ctl.store_->JobEvents(job.id);
    if (events.ok()) {
      const size_t skip = events->size() > proto::kMaxWhyEvents
                              ? events->size() - proto::kMaxWhyEvents
                              : 0;
      for (size_t i = skip; i < events->size(); ++i) {
        reply.events.push_back({(*events)[i].first, std::move((*events)[i].second)});
      }
    } else {
      spdlog::warn("store: cannot read the events of job {}: {}", job.id,
                   events.status().message());
    }
  }
  ctl.ReplyBody(in, reply);
  return Status::Ok();
}

Status ReportRequests::OnUsage(Controller& ctl, const net::Incoming& in,
                               const auth::Identity& /*who*/) {
  auto req = proto::BodyOf<proto::UsageRequest>(in.envelope);
  if (!req.ok()) return req.status();
  if (req->by != "user" && req->by != "project" && req->by != "department" && req->by != "type") {
    return Invalid("usage: --by must be user, project, department or type, not '" +
                   req->by.substr(0, 64) + "'");
  }
  const int64_t now = ctl.Now();
  proto::UsageReply reply;
  reply.since = req->since;
  reply.until = req->until > 0 ? req->until : now;
  reply.by = req->by;
  if (reply.until <= reply.since) return Invalid("usage: --until must be after --since");

  std::map<std::string, std::string> parent;
  for (const auto& q : ctl.config_.queues) parent[q.name] = q.parent;
  struct Group {
    int64_t gpu_milli_seconds = 0;
    std::vector<int64_t> waits;
    int64_t jobs = 0;
    double util_weighted = 0;  // sum of a measured job's utilization x its GPU-milliseconds
    int64_t util_weight = 0;   // GPU-milliseconds of the jobs with a measured utilization
    int64_t preemptions = 0;
  };
  std::map<std::string, Group> groups;
  // By type: the GPU type a job ran on ("-" for a job without GPUs).
  auto group_of = [&](const std::string& user, const std::string& project,
                      const std::string& gpu_type) -> Group& {
    std::string name = user;
    if (req->by == "project") name = project;
    if (req->by == "type") name = gpu_type.empty() ? "-" : gpu_type;
    if (req->by == "department") {
      auto p = parent.find(project);
      name = p == parent.end() || p->second.empty() ? "-" : p->second;
    }
    return groups[name];
  };
  auto add = [&](const Job& j) {
    if (j.start_time <= 0) return;  // never ran
    const bool running = !model::IsTerminal(j.state);
    const int64_t end = running ? now : std::max(j.end_time, j.start_time);
    const int64_t from = std::max(j.start_time, reply.since);
    const int64_t to = std::min(end, reply.until);
    // A job counts when its run overlaps the period (an instant job when it started inside).
    const bool overlaps = from < to || (j.start_time >= reply.since && j.start_time < reply.until);
    if (!overlaps) return;
    Group& g = group_of(j.user, j.spec.project, req->by == "type" ? ctl.GpuTypeOfJob(j) : "");
    const int64_t gpu_milli_seconds =
        j.spec.gpu_milli * j.spec.workers * std::max<int64_t>(0, to - from);
    g.gpu_milli_seconds += gpu_milli_seconds;
    g.jobs++;
    g.waits.push_back(std::max<int64_t>(0, j.start_time - j.submit_time));
    g.preemptions += j.preemptions;
    if (j.gpu_sampled_ms > 0 && gpu_milli_seconds > 0) {
      g.util_weighted += static_cast<double>(j.gpu_util_sum) /
                         static_cast<double>(j.gpu_sampled_ms) *
                         static_cast<double>(gpu_milli_seconds);
      g.util_weight += gpu_milli_seconds;
    }
  };
  for (const auto& [id, j] : ctl.jobs_) add(j);
  // Finished jobs that left memory, then the daily totals of those whose records were pruned
  // (herd.toml(5) job_retention): GPU time pro rata of the part of each day inside the period.
  auto stored = ctl.store_->FinishedJobsRunIn(reply.since, reply.until);
  if (!stored.ok()) return stored.status();
  for (const Job& j : *stored) {
    if (!ctl.jobs_.count(j.id)) add(j);
  }
  auto daily = ctl.store_->DailyUsageIn(reply.since, reply.until);
  if (!daily.ok()) return daily.status();
  constexpr int64_t kDay = 86400;
  for (const store::DailyUsage& d : *daily) {
    const int64_t inside = std::min(d.day + kDay, reply.until) - std::max(d.day, reply.since);
    Group& g = group_of(d.user, d.project, d.gpu_type);
    g.gpu_milli_seconds += d.gpu_milli_seconds * inside / kDay;
    g.jobs += d.jobs;
    g.preemptions += d.preemptions;
    g.util_weighted += d.util_weighted * static_cast<double>(inside) / kDay;
    g.util_weight += d.util_weight * inside / kDay;
  }
  for (auto& [name, g] : groups) {
    std::sort(g.waits.begin(), g.waits.end());
    const int32_t util =
        g.util_weight > 0 ? static_cast<int32_t>(
                                std::lround(g.util_weighted / static_cast<double>(g.util_weight)))
                          : -1;
    reply.rows.push_back({name, g.gpu_milli_seconds, g.jobs, Percentile(g.waits, 0.5),
                          Percentile(g.waits, 0.9), Percentile(g.waits, 0.99), util,
                          g.preemptions});
  }
  ctl.ReplyBody(in, reply);
  return Status::Ok();
}

}  // namespace herd::ctld
