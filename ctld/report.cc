// The controller's reports on its own state: `herd why` (why a job waits) and `herd usage`
// (GPU-hours and waits per user, project or department). Both read the in-memory jobs and the
// scheduler's last cycle; usage also reads the finished jobs that left memory from the store, and
// the daily totals of those whose records were pruned.
#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include "ctld/controller.h"
#include "spdlog/spdlog.h"

namespace herd::ctld {

using model::Job;
using model::JobState;

namespace {

// What one node has free for the estimate of a pending job's start.
struct FreeNode {
  std::string name;
  std::vector<int64_t> gpu_free_milli;  // per GPU index
  int64_t cores = 0;
  int64_t memory_mib = 0;
};

// How many workers of `spec` fit on `n` at once (at most spec.workers).
int WorkersThatFit(FreeNode n, const model::JobSpec& spec) {
  int fit = 0;
  while (fit < spec.workers && n.cores >= spec.cpus && n.memory_mib >= spec.memory_mib) {
    if (spec.gpu_milli >= 1000) {
      int64_t want = spec.gpu_milli / 1000;
      for (auto& g : n.gpu_free_milli) {
        if (want > 0 && g >= 1000) g = 0, --want;
      }
      if (want > 0) break;
    } else if (spec.gpu_milli > 0) {
      auto g = std::find_if(n.gpu_free_milli.begin(), n.gpu_free_milli.end(),
                            [&](int64_t f) { return f >= spec.gpu_milli; });
      if (g == n.gpu_free_milli.end()) break;
      *g -= spec.gpu_milli;
    }
    n.cores -= spec.cpus;
    n.memory_mib -= spec.memory_mib;
    ++fit;
  }
  return fit;
}

}  // namespace

// Walks the running jobs in the order their time limits end them, freeing their resources,
// until the pending job's workers fit on the schedulable nodes and its project's limit (and,
// for a class that starts only within quota, its deserved quota, against which only the
// project's jobs that may not be evicted count, as in the core) has room. Pending jobs ahead
// of it, preemption and reservations are left out: a rough, optimistic lower bound.
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
  std::map<std::string, FreeNode> free;
  for (const auto& [name, n] : nodes_) {
    if (n.state != model::NodeState::kUp || n.drain || !n.unavailable.empty()) continue;
    FreeNode& f = free[name];
    f.name = name;
    for (const auto& g : n.topology.gpus) {
      if (g.index >= static_cast<int>(f.gpu_free_milli.size())) f.gpu_free_milli.resize(g.index + 1);
      f.gpu_free_milli[g.index] = 1000;
    }
    f.cores = n.topology.Cores();
    f.memory_mib = n.topology.memory_mib;
  }
  // Quota room in GPUs for the job's project: its limit, and its deserved share for a class
  // that may start only within it. The limit counts every job of the project; the deserved
  // quota only its firm jobs (of within-quota or non-preemptible classes), as sched::Decide
  // counts them: its preemptible jobs beyond the quota give way to the job.
  int64_t limit = -1, deserved = -1;
  const config::QueueConfig* q = config_.FindQueue(job.spec.project);
  const config::ClassConfig* cls = config_.FindClass(job.spec.job_class);
  if (q != nullptr && q->limit && q->limit->gpu_milli >= 0) limit = q->limit->gpu_milli;
  if (q != nullptr && cls != nullptr && cls->within_quota_only) deserved = q->deserved.gpu_milli;
  auto firm = [this](const Job& j) {
    const config::ClassConfig* c = config_.FindClass(j.spec.job_class);
    return c != nullptr && (c->within_quota_only || !c->preemptible);
  };
  int64_t project_used = 0, firm_used = 0;
  struct Release {
    int64_t at;
    const Job* job;
  };
  std::vector<Release> releases;
  bool unlimited = false;
  const int64_t now = Now();
  for (const auto& [id, j] : jobs_) {
    if (!model::HoldsResources(j.state)) continue;
    for (const auto& w : j.placement) {
      auto it = free.find(w.node);
      if (it == free.end()) continue;
      for (int g : w.gpus) {
        if (g >= 0 && g < static_cast<int>(it->second.gpu_free_milli.size())) {
          it->second.gpu_free_milli[g] -= w.gpu_milli_each;
        }
      }
      it->second.cores -= static_cast<int64_t>(w.cores.size());
      it->second.memory_mib -= w.memory_mib;
    }
    if (j.spec.project == job.spec.project) {
      project_used += j.spec.gpu_milli * j.spec.workers;
      if (firm(j)) firm_used += j.spec.gpu_milli * j.spec.workers;
    }
    if (j.state == JobState::kPreempted || jobs_.ending.count(id)) {
      releases.push_back({now, &j});  // already being stopped
    } else if (j.state != JobState::kSuspended && j.spec.time_limit_s > 0 && j.start_time > 0) {
      releases.push_back({std::max(now, j.start_time + j.spec.time_limit_s), &j});
    } else {
      unlimited = true;
    }
  }
  std::sort(releases.begin(), releases.end(), [](const Release& a, const Release& b) {
    return std::tie(a.at, a.job->id) < std::tie(b.at, b.job->id);
  });
  const int64_t need = job.spec.gpu_milli * job.spec.workers;
  auto fits = [&] {
    if (limit >= 0 && project_used + need > limit) return false;
    if (deserved >= 0 && firm_used + need > deserved) return false;
    int workers = 0;
    for (const auto& [name, f] : free) workers += WorkersThatFit(f, job.spec);
    return workers >= job.spec.workers;
  };
  if ((limit >= 0 && need > limit) || (deserved >= 0 && need > deserved)) {
    reply->estimate_note = "no estimate: it asks for more GPUs than its project may use";
    return;
  }
  if (fits()) {
    reply->estimated_start = now;
    return;
  }
  for (const Release& r : releases) {
    for (const auto& w : r.job->placement) {
      auto it = free.find(w.node);
      if (it == free.end()) continue;
      for (int g : w.gpus) {
        if (g >= 0 && g < static_cast<int>(it->second.gpu_free_milli.size())) {
          it->second.gpu_free_milli[g] += w.gpu_milli_each;
        }
      }
      it->second.cores += static_cast<int64_t>(w.cores.size());
      it->second.memory_mib += w.memory_mib;
    }
    if (r.job->spec.project == job.spec.project) {
      project_used -= r.job->spec.gpu_milli * r.job->spec.workers;
      if (firm(*r.job)) firm_used -= r.job->spec.gpu_milli * r.job->spec.workers;
    }
    if (fits()) {
      reply->estimated_start = r.at;
      return;
    }
  }
  reply->estimate_note = unlimited ? "no estimate: running jobs have no time limit"
                                   : "no estimate: it does not fit even when every running job "
                                     "has ended";
}

}  // namespace herd::ctld
