#include "ctld/sched/estimate.h"

#include <algorithm>
#include <climits>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace herd::sched {
namespace {

// What one node the job may use has free.
struct FreeNode {
  const NodeView* view = nullptr;
  std::vector<int64_t> gpu_free_milli;  // per GpuSlot, in the view's order; -1:
                                        // a type it may not use
  int64_t cores = 0;
  int64_t memory_mib = 0;
};

// How many workers of `r` fit on `n` at once (at most r.workers).
int WorkersThatFit(FreeNode n, const Request& r) {
  int fit = 0;
  while (fit < r.workers && n.cores >= r.cpus && n.memory_mib >= r.memory_mib) {
    if (r.gpu_milli >= 1000) {
      int64_t want = (r.gpu_milli + 999) / 1000;
      for (int64_t& g : n.gpu_free_milli) {
        if (want > 0 && g >= 1000) g = 0, --want;
      }
      if (want > 0) break;
    } else if (r.gpu_milli > 0) {
      auto g = std::find_if(n.gpu_free_milli.begin(), n.gpu_free_milli.end(),
                            [&](int64_t f) { return f >= r.gpu_milli; });
      if (g == n.gpu_free_milli.end()) break;
      *g -= r.gpu_milli;
    }
    n.cores -= r.cpus;
    n.memory_mib -= r.memory_mib;
    ++fit;
  }
  return fit;
}

}  // namespace

const char* NoEstimateName(NoEstimate why) {
  switch (why) {
    case NoEstimate::kOverLimit:
      return "over_limit";
    case NoEstimate::kNoTimeLimit:
      return "no_time_limit";
    case NoEstimate::kNeverFits:
      return "never_fits";
    default:
      return "";
  }
}

const char* NoEstimateText(NoEstimate why) {
  switch (why) {
    case NoEstimate::kOverLimit:
      return "no estimate: it asks for more GPUs than its project may use";
    case NoEstimate::kNoTimeLimit:
      return "no estimate: running jobs have no time limit";
    case NoEstimate::kNeverFits:
      return "no estimate: it does not fit even when every running job has ended";
    default:
      return "";
  }
}

StartEstimate EstimateStart(const Snapshot& snapshot, const PendingJob& job,
                            const std::set<model::JobId>& stopping) {
  const Request& r = job.request;
  auto may_use = [&](const NodeView& v) {
    return v.schedulable &&
           (!job.nodes || std::binary_search(job.nodes->begin(), job.nodes->end(), v.name));
  };
  std::vector<FreeNode> free;
  for (const NodeView& v : snapshot.nodes) {
    if (!may_use(v)) continue;
    FreeNode& f = free.emplace_back();
    f.view = &v;
    for (const GpuSlot& g : v.gpus) {
      const bool type_ok =
          job.gpu_models.empty() ||
          std::find(job.gpu_models.begin(), job.gpu_models.end(), g.model) != job.gpu_models.end();
      f.gpu_free_milli.push_back(type_ok ? g.free_milli : -1);
    }
    for (const auto& [numa, cores] : v.free_cores_by_numa) f.cores += std::ssize(cores);
    f.memory_mib = v.free_memory_mib;
  }
  std::unordered_map<std::string_view, size_t> index;
  for (size_t i = 0; i < free.size(); ++i) index.emplace(free[i].view->name, i);
  auto node_of = [&](const std::string& name) -> FreeNode* {
    auto it = index.find(name);
    return it == index.end() ? nullptr : &free[it->second];
  };
  // Quota room in GPUs for the job's queue: its limit counts every job of the queue, its deserved
  // quota (for a within-quota class) only the firm ones (within-quota or not preemptible).
  int64_t limit = -1, deserved = -1;
  const ClassView default_class;
  auto class_of = [&](const std::string& name) -> const ClassView& {
    auto c = snapshot.classes.find(name);
    return c == snapshot.classes.end() ? default_class : c->second;
  };
  for (const QueueView& q : snapshot.queues) {
    if (q.name != job.queue) continue;
    limit = q.limit.gpu_milli;
    if (class_of(job.job_class).within_quota_only) deserved = q.deserved.gpu_milli;
  }
  auto firm = [&](const RunningJob& j) {
    const ClassView& c = class_of(j.job_class);
    return c.within_quota_only || !c.preemptible;
  };
  int64_t used = 0, firm_used = 0;
  struct Release {
    int64_t at;
    const RunningJob* job;
  };
  std::vector<Release> releases, unlimited;  // unlimited: no end expected
  for (const RunningJob& j : snapshot.running) {
    if (j.queue == job.queue) {
      used += j.request.gpu_milli * j.request.workers;
      if (firm(j)) firm_used += j.request.gpu_milli * j.request.workers;
    }
    if (j.evicted_for != 0 || stopping.count(j.id)) {
      releases.push_back({snapshot.now, &j});
    } else if (!j.suspended && j.end_by > 0) {
      releases.push_back({std::max(snapshot.now, j.end_by), &j});
    } else {
      unlimited.push_back({INT64_MAX, &j});
    }
  }
  std::sort(releases.begin(), releases.end(), [](const Release& a, const Release& b) {
    return std::tie(a.at, a.job->id) < std::tie(b.at, b.job->id);
  });
  const int64_t need = r.gpu_milli * r.workers;
  if ((limit >= 0 && need > limit) || (deserved >= 0 && need > deserved)) {
    return {-1, NoEstimate::kOverLimit};
  }
  // Workers that fit on each node, and in all: a release recounts only the nodes it frees.
  std::vector<int> fit_on(free.size());
  int64_t workers = 0;
  for (size_t i = 0; i < free.size(); ++i) workers += fit_on[i] = WorkersThatFit(free[i], r);
  auto fits = [&] {
    if (limit >= 0 && used + need > limit) return false;
    if (deserved >= 0 && firm_used + need > deserved) return false;
    return workers >= r.workers;
  };
  if (fits()) return {snapshot.now, NoEstimate::kNone};
  auto release = [&](const Release& rel) {
    for (const model::WorkerPlacement& w : rel.job->placement) {
      FreeNode* f = node_of(w.node);
      if (f == nullptr) continue;
      for (int g : w.gpus) {
        for (size_t i = 0; i < f->view->gpus.size(); ++i) {
          if (f->view->gpus[i].index == g && f->gpu_free_milli[i] >= 0) {
            f->gpu_free_milli[i] += w.gpu_milli_each;
          }
        }
      }
      f->cores += std::ssize(w.cores);
      f->memory_mib += w.memory_mib;
      const size_t i = static_cast<size_t>(f - free.data());
      workers -= fit_on[i];
      workers += fit_on[i] = WorkersThatFit(*f, r);
    }
    if (rel.job->queue == job.queue) {
      used -= rel.job->request.gpu_milli * rel.job->request.workers;
      if (firm(*rel.job)) firm_used -= rel.job->request.gpu_milli * rel.job->request.workers;
    }
  };
  for (const Release& rel : releases) {
    release(rel);
    if (fits()) return {rel.at, NoEstimate::kNone};
  }
  // Not by any time the snapshot foresees: would it fit once the jobs without an end have ended?
  for (const Release& rel : unlimited) release(rel);
  return {-1, !unlimited.empty() && fits() ? NoEstimate::kNoTimeLimit : NoEstimate::kNeverFits};
}

}  // namespace herd::sched
