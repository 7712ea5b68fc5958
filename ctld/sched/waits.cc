// Why a job waits where the allocate pass could not start it: the quota checks and their reasons,
// the reason a job fits nowhere now, and the reservations of jobs that waited long enough
// (Decide()'s other steps are in scheduler.cc).
#include <algorithm>
#include <climits>
#include <set>
#include <tuple>

#include "common/model/placement.h"
#include "common/model/units.h"
#include "ctld/sched/cycle.h"

namespace herd::sched::internal {

// The limit of the queue and of every ancestor; the deserved quota for within-quota classes.
QuotaHit Cycle::CheckQuota(const JobState& job) const {
  const QueueState& q = *job.queue;
  for (const QueueState* a : q.up) {
    for (int c = 0; c < 3; ++c) {
      int64_t limit = a->view->limit.Component(c);
      // victims stop in its cap
      const int64_t held = a->allocated.Component(c) + a->stopping.Component(c);
      if (limit >= 0 && job.total.Component(c) > 0 && held + job.total.Component(c) > limit) {
        return {Block::kLimit, a, c};
      }
    }
  }
  if (QuotaHit hit = TypedLimitHit(job); hit.block != Block::kNone) return hit;
  // A within-quota class counts what the queue's jobs that may not be evicted hold (QueueState::
  // firm): preemptible jobs beyond the quota borrow, and give way when their GPUs are needed, not
  // before. While another job's quota is held, no other firm job takes the queue's firm jobs beyond
  // its deserved quota (the holder is charged as started; preemptible jobs take none of it).
  const bool held = q.quota_held_for != nullptr && q.quota_held_for != &job;
  if (!job.job_class->within_quota_only && !(held && Firm(*job.job_class))) return {};
  for (int c = 0; c < 3; ++c) {
    int64_t deserved = q.view->deserved.Component(c), need = job.total.Component(c);
    if (need <= 0 || (c > 0 && deserved <= 0)) continue;
    if (q.firm.Component(c) + need > deserved) {
      return {job.job_class->within_quota_only ? Block::kQuota : Block::kHeld, &q, c};
    }
  }
  return {};
}

// The queue whose limit or quota the job hit, with the numbers its reason quotes.
model::PendingReason Cycle::QuotaReason(const JobState& job, const QuotaHit& hit) {
  if (hit.type >= 0) return TypedLimitReason(job, hit);
  const QueueState& a = *hit.queue;
  const int c = hit.component;
  model::PendingReason r;
  r.queue = a.view->name;
  r.component = c;
  r.used = (hit.block == Block::kLimit ? a.allocated : a.firm).Component(c);
  if (hit.block == Block::kLimit) {
    r.code = model::ReasonCode::kLimit;
    r.department = !a.view->is_leaf;
    r.amount = a.view->limit.Component(c);
    r.need = job.total.Component(c);
  } else if (hit.block == Block::kHeld) {
    r.code = model::ReasonCode::kQuotaHeld;
    r.job = a.quota_held_for->pending->id;
    r.job_class = a.quota_held_for->pending->job_class;
    r.amount = a.view->deserved.Component(c);
  } else {
    r.code = model::ReasonCode::kWithinQuotaOnly;
    r.job_class = job.pending->job_class;
    r.amount = a.view->deserved.Component(c);
  }
  return r;
}

// The binding constraint, in the user's terms; nullopt when the job would have fit the cycle's
// start.
std::optional<model::PendingReason> Cycle::NoFitReason(const JobState& job) {
  using model::ReasonCode;
  const Shape& s = job.shape;
  PlaceOptions o = OptionsFor(job);
  if (!reserved_by_.empty()) {
    PlaceOptions any = o;
    any.ignore_reservations = true;
    if (auto p = cluster_.Place(s, any)) {
      cluster_.ReleaseAll(*p, s.gpu_memory_mib);
      for (const auto& w : *p) {
        int i = cluster_.NodeIndex(w.node);
        if (cluster_.nodes[i].reserved_for != 0 && !cluster_.Usable(cluster_.nodes[i], o)) {
          return model::PendingReason{.code = ReasonCode::kReserved,
                                      .job = cluster_.nodes[i].reserved_for};
        }
      }
    }
  }
  {
    if (initial_.empty()) initial_ = cluster_.InitialNodes();
    cluster_.SwapNodes(initial_);
    auto p = cluster_.Place(s, o);
    if (p) cluster_.ReleaseAll(*p, s.gpu_memory_mib);
    cluster_.SwapNodes(initial_);
    if (p) return std::nullopt;
  }
  int usable = 0, block = 0, capable = 0;
  int64_t cores = 0, memory = 0, share = 0;
  std::set<std::string> other_free;  // types the job may not use with a GPU free enough for it
  bool memory_short = false;
  for (const NodeState& n : cluster_.nodes) {
    if (!cluster_.Usable(n, o)) continue;
    ++usable;
    cores = std::max(cores, n.free_cores_count);
    memory = std::max(memory, n.free_memory_mib);
    int free = 0, of_model = 0;
    for (const GpuSlot& g : n.gpus) {
      bool model_ok = s.ModelOk(g.model);
      of_model += model_ok;
      if (!model_ok) {
        if (g.free_milli >= std::min<int64_t>(s.gpu_milli, 1000)) other_free.insert(g.model);
        continue;
      }
      if (g.free_milli >= 1000 && (s.gpu_memory_mib == 0 || g.memory_mib >= s.gpu_memory_mib)) ++free;
      if (s.Fractional() && g.free_milli >= s.gpu_milli) {
        if (g.free_memory_mib >= GpuMemoryTaken(g, s.gpu_milli, s.gpu_memory_mib)) {
          share = std::max(share, g.free_milli);
        } else {
          memory_short = true;
        }
      } else if (s.Fractional()) {
        share = std::max(share, g.free_milli);
      }
    }
    block = std::max(block, free);
    if (of_model >= std::max(1, s.WholeGpus())) ++capable;
  }
  model::PendingReason r;
  for (const std::string& m : s.gpu_models) r.gpu_types += (r.gpu_types.empty() ? "" : " or ") + m;
  r.workers = s.workers;
  auto with = [&r](ReasonCode code, int64_t need, int64_t most_free) {
    r.code = code;
    r.need = need;
    r.most_free = most_free;
    return r;
  };
  if (usable == 0 && s.nodes) {
    if (s.nodes->empty()) return with(ReasonCode::kNoNodeMatches, 0, 0);
    r.count = static_cast<int64_t>(s.nodes->size());
    return with(ReasonCode::kAllowedNodesDown, 0, 0);
  }
  if (usable == 0) return with(ReasonCode::kNoSchedulableNode, 0, 0);
  if (!s.gpu_models.empty() && s.gpu_milli > 0 && capable == 0) {
    return with(ReasonCode::kNoNodeHasType, std::max(1, s.WholeGpus()) * 1000, 0);
  }
  // None of its types has a GPU free while GPUs of other types are: say so in its own terms.
  const bool gpus_short = (s.WholeGpus() > 0 && block == 0) || (s.Fractional() && share == 0);
  if (!s.gpu_models.empty() && gpus_short && !other_free.empty()) {
    for (const std::string& m : other_free)
      r.other_types += (r.other_types.empty() ? "" : ", ") + m;
    return with(ReasonCode::kOnlyOtherTypesFree,
                s.WholeGpus() > 0 ? s.WholeGpus() * 1000 : s.gpu_milli, 0);
  }
  if (s.WholeGpus() > 0 && block < s.WholeGpus()) {
    return with(ReasonCode::kGpuBlock, s.WholeGpus() * 1000, block);
  }
  if (s.Fractional() && share < s.gpu_milli) {
    if (memory_short) {
      r.amount = s.gpu_memory_mib;
      return with(ReasonCode::kGpuShareMemory, s.gpu_milli, 0);
    }
    return with(ReasonCode::kGpuShare, s.gpu_milli, share);
  }
  if (cores < s.cpus) return with(ReasonCode::kCores, s.cpus, cores);
  if (memory < s.memory_mib) return with(ReasonCode::kMemory, s.memory_mib, memory);
  r.per_worker = {s.gpu_milli, s.cpus, s.memory_mib};
  return with(s.workers > 1 ? ReasonCode::kGangDoesNotFit : ReasonCode::kNoNodeFitsAll, 0, 0);
}

// A job pending longer than reserve_after_s holds the nodes closest to fitting it, so that a
// stream of later non-preemptible jobs cannot keep taking them.
void Cycle::Reserve(JobState& job) {
  const PendingJob& p = *job.pending;
  if (policy_.reserve_after_s < 0 || snap_.now - p.pending_since < policy_.reserve_after_s) return;
  const Shape& s = job.shape;
  if (no_reserve_.count(s)) return;
  std::vector<std::string> chosen;
  int workers = 0;
  // Takes node i if it could hold a worker once empty; true when the job has enough nodes.
  auto take = [&](int i) {
    const NodeState& n = cluster_.nodes[i];
    if (!n.schedulable || n.held || n.reserved_for != 0 || !s.NodeOk(n.view->name)) return false;
    int64_t fit = 1 << 20;
    int gpus = 0;
    for (const GpuSlot& g : n.gpus) {
      gpus += s.ModelOk(g.model) &&
              (s.gpu_memory_mib == 0 || g.memory_mib >= s.gpu_memory_mib);
    }
    if (s.WholeGpus() > 0) fit = std::min<int64_t>(fit, gpus / s.WholeGpus());
    if (s.Fractional()) fit = std::min<int64_t>(fit, gpus * (1000 / s.gpu_milli));
    if (s.cpus > 0) fit = std::min<int64_t>(fit, n.view->total_cores / s.cpus);
    if (s.memory_mib > 0) fit = std::min<int64_t>(fit, n.view->memory_mib / s.memory_mib);
    if (fit <= 0) return false;
    chosen.push_back(n.view->name);
    workers += static_cast<int>(std::min<int64_t>(fit, s.workers));
    return workers >= s.workers;
  };
  // Nodes by free GPU share, then free cores, most first, counting what running jobs with a time
  // limit hold as free (so a reservation stays on the nodes jobs backfilled into it); ties by
  // index. The order is kept in step with the nodes whose free resources changed since the last
  // call (Cluster::Changed). Nodes only leave the reservable set during the allocate pass (the
  // only caller): one that has left it leaves the order for good.
  auto reservable = [](const NodeState& n) {
    return n.schedulable && !n.held && n.reserved_for == 0;
  };
  const size_t count = cluster_.nodes.size();
  if (ending_.empty()) {  // what running jobs with a time limit hold per node: it comes free
    ending_.assign(count, {});
    for (const RunningJob& r : snap_.running) {
      if (r.end_by <= 0) continue;
      for (const auto& w : r.placement) {
        if (int i = cluster_.NodeIndex(w.node); i >= 0) {
          ending_[i].first += static_cast<int64_t>(w.gpus.size()) * w.gpu_milli_each;
          ending_[i].second += static_cast<int64_t>(w.cores.size());
        }
      }
    }
  }
  // This cycle's starts with a time limit come free the same way (else a reservation made in the
  // cycle they start moves to their nodes in the next). The allocate pass only adds starts, each
  // of a job visited after the last call: their nodes changed since then.
  for (; reserve_visited_ < visited_.size(); ++reserve_visited_) {
    const JobState* j = visited_[reserve_visited_];
    if (!j->started) continue;
    started_.push_back(j);
    if (j->pending->request.time_limit_s <= 0) continue;
    for (const auto& w : j->placement) {
      if (int i = cluster_.NodeIndex(w.node); i >= 0) {
        ending_[i].first += static_cast<int64_t>(w.gpus.size()) * w.gpu_milli_each;
        ending_[i].second += static_cast<int64_t>(w.cores.size());
      }
    }
  }
  auto refresh = [&](int i) {
    if (reserve_in_[i]) reserve_order_.erase({reserve_key_[i], i});
    const NodeState& n = cluster_.nodes[i];
    reserve_in_[i] = reservable(n);
    if (!reserve_in_[i]) return;
    const int64_t gpu = n.free_gpu_milli + ending_[i].first;
    const int64_t cores = n.free_cores_count + ending_[i].second;
    reserve_key_[i] = -(gpu * 4096 + cores);
    reserve_order_.emplace(reserve_key_[i], i);
  };
  const std::vector<int>& changed = cluster_.Changed();
  if (reserve_generation_ != cluster_.Generation() || cluster_.Swapped()) {
    reserve_generation_ = cluster_.Swapped() ? UINT64_MAX : cluster_.Generation();
    reserve_order_.clear();
    reserve_key_.assign(count, 0);
    reserve_in_.assign(count, 0);
    for (size_t i = 0; i < count; ++i) refresh(static_cast<int>(i));
  } else {
    for (size_t k = reserve_seen_; k < changed.size(); ++k) refresh(changed[k]);
  }
  reserve_seen_ = changed.size();
  for (auto it = reserve_order_.begin(); it != reserve_order_.end();) {
    const int i = it->second;
    if (!reservable(cluster_.nodes[i])) {
      reserve_in_[i] = 0;
      it = reserve_order_.erase(it);
      continue;
    }
    if (take(i)) break;
    ++it;
  }
  // Nodes only leave the reservable set during a cycle and a node's fit depends on its size alone:
  // a shape that finds too few nodes now never finds enough this cycle.
  if (workers < s.workers) {
    no_reserve_.insert(s);
    return;
  }
  // The holder can start once the jobs on its nodes have ended: known only when they all have a
  // time limit. Until then only jobs ending sooner may backfill its nodes.
  // This cycle's starts on them count like running jobs: a job started without a time limit
  // before the reservation was made holds its node for as long as the snapshot's jobs do.
  int64_t start = snap_.now;
  for (const std::string& name : chosen) {
    for (const RunningJob* r : running_on_[cluster_.NodeIndex(name)]) {
      start = r->end_by > 0 && start != INT64_MAX ? std::max(start, r->end_by) : INT64_MAX;
    }
  }
  for (const JobState* j : started_) {
    if (start == INT64_MAX) break;
    if (!j->started) continue;
    const bool here = std::any_of(j->placement.begin(), j->placement.end(), [&](const auto& w) {
      return std::find(chosen.begin(), chosen.end(), w.node) != chosen.end();
    });
    if (!here) continue;
    const int64_t limit = j->pending->request.time_limit_s;
    start = limit > 0 ? std::max(start, snap_.now + limit) : INT64_MAX;
  }
  for (const std::string& name : chosen) {
    NodeState& n = cluster_.nodes[cluster_.NodeIndex(name)];
    n.reserved_for = p.id;
    n.reserved_queue = job.queue;
    n.reserved_start = start;
  }
  reserved_by_.insert(p.id);
  std::string list;
  for (const std::string& name : chosen) list += (list.empty() ? "" : ",") + name;
  job.reason.holding = std::move(list);
  out_.reservations.push_back({p.id, chosen});
}

}  // namespace herd::sched::internal
