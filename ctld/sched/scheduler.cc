// Decide(): fair shares, then the allocate pass (with reservations), then reclaim / preempt /
// consolidate for the jobs left pending, then a plain-language reason for every job not started.
#include "ctld/sched/scheduler.h"

#include <algorithm>
#include <climits>
#include <set>
#include <tuple>
#include <unordered_map>

#include "common/model/placement.h"
#include "common/model/units.h"
#include "ctld/sched/cycle.h"
#include "ctld/sched/usage.h"

namespace herd::sched {

using internal::Block;
using internal::Cycle;
using internal::JobState;
using internal::QueueState;
using internal::Shape;

static_assert(std::size(model::kPlacementPolicies) == static_cast<size_t>(Placement::kSpread) + 1,
              "sched::Placement has one value per row of model::kPlacementPolicies");

bool ParsePlacement(const std::string& name, Placement* out) {
  for (size_t i = 0; i < std::size(model::kPlacementPolicies); ++i) {
    if (name != model::kPlacementPolicies[i].name) continue;
    *out = static_cast<Placement>(i);
    return true;
  }
  return false;
}

int64_t ReclaimBackoff(const Policy& policy, int32_t reclaims) {
  if (reclaims <= 0 || policy.reclaim_backoff_s <= 0) return 0;
  return policy.reclaim_backoff_s << std::min(reclaims - 1, 3);
}

const char* EvictionKindName(EvictionKind kind) {
  switch (kind) {
    case EvictionKind::kReclaim: return "reclaim";
    case EvictionKind::kPreempt: return "preempt";
    case EvictionKind::kConsolidate: return "consolidate";
  }
  return "reclaim";
}

std::string EvictionText(const PreemptDecision& p) {
  const std::string job = "job " + std::to_string(p.for_job);
  switch (p.kind) {
    case EvictionKind::kReclaim:
      return "reclaimed by " + job + " of project " + p.project + " (" + p.project +
             (!p.gpu_type.empty() ? " below its fair share of " + p.gpu_type + " GPUs)"
              : p.below_deserved  ? " below its deserved quota)"
                                  : " below its fair share)");
    case EvictionKind::kPreempt:
      return "preempted by " + job + " (" + p.job_class + ", priority " +
             std::to_string(p.priority) + ") of project " + p.project;
    case EvictionKind::kConsolidate:
      return "moved so " + job + " (" + internal::GpuText(p.gpu_milli) + ") fits on " + p.node +
             "; it restarts on another node";
  }
  return "evicted by " + job;
}

const char* PlacementName(Placement p) {
  const auto i = static_cast<size_t>(p);
  return i < std::size(model::kPlacementPolicies)
             ? model::kPlacementPolicies[i].name
             : model::kPlacementPolicies[model::kDefaultPlacement].name;
}

Decisions Decide(const Snapshot& snapshot, const Policy& policy) {
  return Cycle(snapshot, policy).Run();
}

namespace internal {
namespace {

int64_t Get(const model::Resources& r, int c) { return r.Component(c); }

}  // namespace

Cycle::Cycle(const Snapshot& snapshot, const Policy& policy)
    : snap_(snapshot), policy_(policy), cluster_(snapshot, policy) {
  default_class_.name = "default";
  std::map<std::string, const QueueView*> by_name;
  for (const QueueView& q : snap_.queues) by_name[q.name] = &q;
  for (const QueueView& q : snap_.queues) {
    QueueState& s = queues_[q.name];
    s.view = &q;
    for (const QueueView* p = &q; p && s.path.size() < 64; p = by_name.count(p->parent) ? by_name[p->parent] : nullptr) {
      s.path.push_back(p->name);
    }
  }
  for (auto& [name, q] : queues_) {
    for (const std::string& a : q.path) q.up.push_back(&queues_[a]);
  }
  for (const RunningJob& r : snap_.running) {
    auto q = queues_.find(r.queue);
    queue_of_.push_back(q == queues_.end() ? nullptr : &q->second);
    total_of_.push_back(Shape::Of(r.request).Total());
    if (q != queues_.end()) {
      q->second.running_jobs.push_back(&r);
      model::Resources& least = q->second.smallest;
      for (int64_t* m : {&least.gpu_milli, &least.cpus, &least.memory_mib}) {
        const int64_t have = m == &least.gpu_milli ? total_of_.back().gpu_milli
                             : m == &least.cpus    ? total_of_.back().cpus
                                                   : total_of_.back().memory_mib;
        if (have > 0 && (*m == 0 || have < *m)) *m = have;
      }
    }
    class_of_.push_back(&ClassOf(r.job_class));
    Charge(r.queue, total_of_.back(), +1, *class_of_.back());
    std::set<int> on;
    for (const auto& w : r.placement) on.insert(cluster_.NodeIndex(w.node));
    nodes_of_.emplace_back();
    for (int i : on) {
      if (i >= 0) running_on_[i].push_back(&r), nodes_of_.back().push_back(i);
    }
  }
  for (size_t k = 0; k < snap_.running.size(); ++k) shielded_.push_back(Shielded(k));
  for (auto& [name, q] : queues_) q.running = q.allocated;
  // A victim still stopping leaves its queue's allocation (its beneficiary is charged as if started,
  // below), but what it holds counts against its queue's limits until it has stopped.
  for (size_t k = 0; k < snap_.running.size(); ++k) {
    if (snap_.running[k].evicted_for == 0) continue;
    Charge(snap_.running[k].queue, total_of_[k], -1, *class_of_[k]);
    if (queue_of_[k] != nullptr) {
      for (QueueState* a : queue_of_[k]->up) a->stopping += total_of_[k];
    }
  }
  // Most jobs share their predecessor's queue and class: look those up once per run of equal names.
  jobs_.reserve(snap_.pending.size());
  const PendingJob* prev = nullptr;
  for (const PendingJob& p : snap_.pending) {
    JobState& j = jobs_.emplace_back();
    j.pending = &p;
    const bool same_class = prev != nullptr && prev->job_class == p.job_class;
    j.job_class = same_class ? jobs_[jobs_.size() - 2].job_class : &ClassOf(p.job_class);
    if (prev != nullptr && prev->queue == p.queue) {
      j.queue = jobs_[jobs_.size() - 2].queue;
    } else if (auto q = queues_.find(p.queue); q != queues_.end()) {
      j.queue = &q->second;
    }
    j.shape = Shape::Of(p.request, p.gpu_models, p.nodes);
    j.total = j.shape.Total();
    prev = &p;
  }
  std::map<std::string, model::Resources> demand;
  // Victims still stopping will be pending again: they stay in their queue's demand, so that fair
  // shares do not move because a project's jobs are being evicted (subtree sums; leaves hold jobs).
  for (auto& [name, q] : queues_) demand[name] = q.allocated + q.stopping;
  for (const QueueView& q : snap_.queues) {
    if (!q.is_leaf) demand[q.name] = {};
  }
  std::unordered_map<QueueState*, model::Resources> own;  // each queue's own pending jobs
  for (JobState& j : jobs_) {
    if (j.queue == nullptr) continue;
    own[j.queue] += j.total;
    if (j.pending->victims_stopping > 0) {
      j.waiting = true;
      if (j.job_class->within_quota_only && j.queue->quota_held_for == nullptr) j.queue->quota_held_for = &j;
      j.reason = WaitingForVictims(static_cast<size_t>(j.pending->victims_stopping));
      continue;
    }
    j.queue->jobs.push_back(&j);
  }
  for (const PendingJob& p : snap_.held_out) {
    if (auto q = queues_.find(p.queue); q != queues_.end()) own[&q->second] += Shape::Of(p.request, {}).Total();
  }
  for (auto& [q, total] : own) {
    demand[q->view->name] += total;
    for (QueueState* a : q->up) a->pending_demand += total;
  }
  model::Resources capacity;
  for (const NodeView& n : snap_.nodes) {
    if (!n.schedulable) continue;
    capacity += {1000 * static_cast<int64_t>(n.gpus.size()), n.total_cores, n.memory_mib};
  }
  auto fair = ComputeFairShares(snap_.queues, demand, capacity);
  InitTypes();
  for (JobState& j : jobs_) {
    if (j.waiting)
      Charge(j.pending->queue, j.total, +1, *j.job_class);  // as if started (Commit does the same)
  }
  // Each queue's jobs by class priority (highest first), then submit time, then id, then snapshot
  // order (jobs_ is in it): sorted on copied keys (no pointer chasing), and not at all when the
  // snapshot already lists them so.
  using SortKey = std::tuple<int, int64_t, model::JobId, JobState*>;
  std::vector<SortKey> keys;
  for (auto& [name, q] : queues_) {
    q.fair = fair[name];
    keys.clear();
    for (JobState* j : q.jobs) {
      keys.emplace_back(-j->job_class->priority, j->pending->submit_time, j->pending->id, j);
    }
    if (std::is_sorted(keys.begin(), keys.end())) continue;
    std::sort(keys.begin(), keys.end());
    for (size_t k = 0; k < keys.size(); ++k) q.jobs[k] = std::get<3>(keys[k]);
  }
}

const ClassView& Cycle::ClassOf(const std::string& name) const {
  auto it = snap_.classes.find(name);
  return it == snap_.classes.end() ? default_class_ : it->second;
}

const ClassView& Cycle::ClassOf(const RunningJob& job) const {
  return *class_of_[static_cast<size_t>(&job - snap_.running.data())];
}

void Cycle::Charge(const std::string& queue, const model::Resources& r, int sign,
                   const ClassView& c, const TypedGpus* typed) {
  auto it = queues_.find(queue);
  if (it == queues_.end()) return;
  const bool firm = Firm(c);
  for (QueueState* a : it->second.up) {
    for (size_t t = 0; typed != nullptr && t < typed->size(); ++t) {
      a->typed_allocated[t] += sign * (*typed)[t];
    }
    if (sign > 0) {
      a->allocated += r;
      if (firm) a->firm += r;
    } else {
      a->allocated -= r;
      if (firm) a->firm -= r;
    }
  }
}

PlaceOptions Cycle::OptionsFor(const JobState& job) const {
  PlaceOptions o;
  o.policy = job.pending->request.spread ? Placement::kSpread : policy_.placement;
  o.job = job.pending->id;
  o.shape = &job.shape;
  // Within its deserved quota (a within-quota class: as CheckQuota counts it), a job may use
  // nodes reserved for another queue's job.
  if (job.queue != nullptr &&
      (WithinDeserved(*job.queue, job.total) ||
       (job.job_class->within_quota_only && CheckQuota(job).block == Block::kNone))) {
    o.quota_queue = job.queue;
  }
  if (job.pending->request.time_limit_s > 0) o.ends_at = snap_.now + job.pending->request.time_limit_s;
  return o;
}

// GPUs always count (a project that deserves none has none guaranteed); cores and memory count
// where the quota names them, else they come with the GPUs. A job needing none of the counted
// resources is not within a quota.
bool Cycle::WithinDeserved(const QueueState& q, const model::Resources& more) const {
  bool counted = false;
  for (int c = 0; c < 3; ++c) {
    const int64_t need = Get(more, c), deserved = Get(q.view->deserved, c);
    if (need <= 0 || (c > 0 && deserved <= 0)) continue;
    counted = true;
    if (Get(q.allocated, c) + need > deserved) return false;
  }
  return counted;
}

// A queue whose quota names something and whose allocation stays within it (GPUs always, cores and
// memory where named) holds only what it deserves.
bool Cycle::HoldsOnlyDeserved(const QueueState& q) const {
  const model::Resources& d = q.view->deserved;
  if (d.gpu_milli <= 0 && d.cpus <= 0 && d.memory_mib <= 0) return false;
  for (int c = 0; c < 3; ++c) {
    if ((c == 0 || Get(d, c) > 0) && Get(q.allocated, c) > Get(d, c)) return false;
  }
  return true;
}

// Key of the options that change where a job may go: the same key, the same feasibility answer.
Cycle::OptionsKey Cycle::KeyOf(const PlaceOptions& o) const {
  if (reserved_by_.empty()) return {o.policy == Placement::kSpread, 0, nullptr, 0};
  return {o.policy == Placement::kSpread, reserved_by_.count(o.job) ? o.job : 0, o.quota_queue,
          o.ends_at};
}

Decisions Cycle::Run() {
  HoldRoom();
  Allocate();
  Evict();
  const std::map<std::string, double> weights = UsageWeights(snap_.queues);
  for (const QueueView& q : snap_.queues) {
    const QueueState& s = queues_[q.name];
    out_.shares.push_back({q.name, q.deserved, q.limit, s.fair, s.running, s.pending_demand,
                           q.usage, weights.at(q.name)});
    TypedShares(s, out_.shares.back());
  }
  // The snapshot usually lists pending jobs in id order: then each insertion is at the end.
  for (JobState& j : jobs_) {
    if (!j.started) {
      out_.pending_reasons.emplace_hint(out_.pending_reasons.end(), j.pending->id,
                                        std::move(j.reason));
    }
  }
  return std::move(out_);
}

// Queues take turns, the one furthest below its fair share first; each turn tries the queue's
// next job. A job that cannot start does not stop the jobs behind it.
void Cycle::Allocate() {
  std::set<std::pair<double, std::string>> turn;
  for (JobState& j : jobs_) {
    if (j.queue == nullptr) {
      j.block = Block::kUnknownQueue;
      j.reason = {.code = model::ReasonCode::kUnknownProject, .queue = j.pending->queue};
    }
  }
  // Jobs whose victims have released their resources go first: the room was made for them, and
  // they take it where their plan put them (two such jobs never swap rooms), else where they fit.
  // Among them, by class priority, then submit time: a job of a class that runs only within the
  // deserved quota comes before a lower one of its project that would take the rest of it.
  std::vector<std::tuple<int, int64_t, model::JobId, JobState*>> made;
  for (JobState& j : jobs_) {
    if (!j.pending->room_made || j.queue == nullptr || j.waiting) continue;
    made.emplace_back(-j.job_class->priority, j.pending->submit_time, j.pending->id, &j);
  }
  std::sort(made.begin(), made.end());
  for (const auto& m : made) {
    JobState& j = *std::get<3>(m);
    j.tried = true;
    visited_.push_back(&j);
    if (StartInRoom(j) || TryStart(j)) j.queue->started_any = true;
  }
  // Two passes over the queues, lowest dominant share first, each queue's jobs in its order: the
  // first serves a queue up to its first job that would take it beyond its fair share and deserved
  // quota; the second serves the rest, so resources beyond a fair share are borrowed only from what
  // the first pass left (and a job so started is not reclaimed next cycle for a job that was
  // already waiting). A job a limit or quota blocks now stays blocked this cycle (allocations only
  // grow): it is passed over at once, and does not decide its queue's turn.
  for (bool borrowing : {false, true}) {
    // Moves q.next to the queue's next job to try in this pass; false when there is none.
    auto advance = [&](QueueState& q) {
      for (; q.next < q.jobs.size(); ++q.next) {
        JobState& j = *q.jobs[q.next];
        if (j.tried) continue;
        if (CheckQuota(j).block == Block::kNone) {
          if (BackoffLeft(j) <= 0 || WithinDeserved(q, j.total)) {
            return borrowing || KeepsShare(q, j.total);
          }
          // Reclaimed before, it would start beyond its project's deserved quota, where the
          // owners' next arrival takes it back: it waits out its backoff first.
          j.tried = true;
          j.block = Block::kBackoff;
          j.reason = {.code = model::ReasonCode::kReclaimBackoff,
                      .queue = j.pending->queue,
                      .amount = ReclaimBackoff(policy_, j.pending->reclaims),
                      .count = j.pending->reclaims};
          continue;
        }
        j.tried = true;
        visited_.push_back(&j);
        TryStart(j);  // records the block and its reason
      }
      return false;
    };
    for (auto& [name, q] : queues_) {
      if (advance(q)) turn.insert({TurnKey(q), name});
    }
    while (!turn.empty()) {
      std::string name = turn.begin()->second;
      turn.erase(turn.begin());
      QueueState& q = queues_[name];
      JobState& job = *q.jobs[q.next++];
      job.tried = true;
      visited_.push_back(&job);
      if (TryStart(job)) q.started_any = true;
      if (advance(q)) turn.insert({TurnKey(q), name});
    }
  }
}

// Whether `need` started keeps `q` within its fair share on every resource or its deserved quota.
bool Cycle::KeepsShare(const QueueState& q, const model::Resources& need) const {
  return DominantShare(q.allocated + need, q.fair) <= 1.0 || WithinDeserved(q, need);
}

int64_t Cycle::BackoffLeft(const JobState& job) const {
  const int64_t backoff = ReclaimBackoff(policy_, job.pending->reclaims);
  return backoff > 0 ? job.pending->pending_since + backoff - snap_.now : 0;
}

// The queue's dominant share; a queue whose fair share is 0 of a resource its next job needs comes
// after every queue with a share (it takes only what they leave).
double Cycle::TurnKey(const QueueState& q) const {
  const model::Resources& need = q.jobs[q.next]->total;
  for (int c = 0; c < 3; ++c) {
    if (Get(need, c) > 0 && Get(q.fair, c) <= 0) return 2e9;
  }
  return DominantShare(q.allocated, q.fair);
}

bool Cycle::TryStart(JobState& job) {
  if (QuotaHit hit = CheckQuota(job); hit.block != Block::kNone) {
    job.block = hit.block;
    job.reason = QuotaReason(job, hit);
    return false;
  }
  NarrowTypes(job);
  PlaceOptions o = OptionsFor(job);
  auto key = std::make_pair(job.shape, KeyOf(o));
  auto cached = no_fit_.find(key);
  if (cached == no_fit_.end()) {
    if (auto p = cluster_.Place(job.shape, o)) {
      Start(job, std::move(*p));
      return true;
    }
    cached = no_fit_.emplace(key, NoFitReason(job)).first;
  }
  job.block = Block::kNoFit;
  if (cached->second) {
    job.reason = *cached->second;
  } else {
    // The resources this job needs were free at the start of the cycle: jobs ahead of it took them.
    job.reason = {.code = job.queue->started_any ? model::ReasonCode::kBehindOwnQueue
                                                 : model::ReasonCode::kBehindOtherQueues};
  }
  Reserve(job);
  return false;
}

void Cycle::Start(JobState& job, std::vector<model::WorkerPlacement> placement) {
  job.started = true;
  job.block = Block::kNone;
  job.placement = placement;
  job.typed = TypedOf(job.placement);
  ++starts_version_;
  Charge(job.pending->queue, job.total, +1, *job.job_class, &job.typed);
  out_.starts.push_back({job.pending->id, std::move(placement)});
}

std::vector<int> Cycle::RoomOf(const PendingJob& job) const {
  std::vector<int> nodes;
  for (const model::WorkerPlacement& w : job.room_on) {
    if (int i = cluster_.NodeIndex(w.node); i >= 0) nodes.push_back(i);
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

std::optional<std::vector<model::WorkerPlacement>> Cycle::PlaceAsPlanned(const JobState& job) {
  const std::vector<model::WorkerPlacement>& plan = job.pending->room_on;
  if (plan.empty() || static_cast<int>(plan.size()) != job.shape.workers) return std::nullopt;
  for (const model::WorkerPlacement& w : plan) {
    const int i = cluster_.NodeIndex(w.node);
    if (i < 0 || !cluster_.nodes[i].schedulable) return std::nullopt;
  }
  if (!cluster_.Free(plan, job.shape.gpu_memory_mib)) return std::nullopt;
  cluster_.ApplyAll(plan, job.shape.gpu_memory_mib);
  return plan;
}

bool Cycle::StartInRoom(JobState& job) {
  if (job.pending->room_on.empty() || CheckQuota(job).block != Block::kNone) return false;
  const std::vector<int> room = RoomOf(*job.pending);
  PlaceOptions o = OptionsFor(job);
  o.ignore_reservations = true;  // the room was made for it
  o.only = &room;
  auto p = PlaceAsPlanned(job);
  if (!p) p = cluster_.Place(job.shape, o);
  if (!p) return false;
  Start(job, std::move(*p));
  return true;
}

}  // namespace internal
}  // namespace herd::sched
