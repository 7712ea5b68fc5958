// Who is evicted: the victim search, and the reclaim, preempt and consolidate steps that use it
// (the room held for a job while its victims stop is in evict.cc).
#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "ctld/sched/cycle.h"
#include "ctld/sched/evict_rules.h"

namespace herd::sched::internal {

bool Cycle::Protected(const RunningJob& r) const {
  return shielded_[static_cast<size_t>(&r - snap_.running.data())] || victims_.count(r.id) > 0;
}

bool Cycle::Shielded(size_t k) const {
  const RunningJob& r = snap_.running[k];
  if (r.evicted_for != 0 || r.suspended || !class_of_[k]->preemptible) return true;
  // The queue's min_runtime, where it sets one, else the class's.
  const int64_t queue_min = queue_of_[k] != nullptr ? queue_of_[k]->view->min_runtime_s : -1;
  return snap_.now - r.start_time < (queue_min >= 0 ? queue_min : class_of_[k]->min_runtime_s);
}

std::optional<VictimPlan> Cycle::FindVictims(
    const JobState& job, const std::vector<const RunningJob*>& candidates,
    const std::function<bool(const RunningJob&, const std::vector<const RunningJob*>&)>& allowed,
    const std::function<bool(const std::vector<const RunningJob*>&)>& enough,
    const std::vector<int>* only) {
  PlaceOptions o = OptionsFor(job);
  o.only = only;
  auto fits = [&](const std::vector<const RunningJob*>& chosen)
      -> std::optional<std::vector<model::WorkerPlacement>> {
    if (!enough(chosen)) return std::nullopt;
    auto p = cluster_.Place(job.shape, o);
    if (p) cluster_.ReleaseAll(*p, job.shape.gpu_memory_mib);
    return p;
  };
  auto take = [&](const RunningJob* r) { cluster_.ReleaseAll(r->placement, r->request.gpu_memory_mib); };
  auto put_back = [&](const RunningJob* r) { cluster_.ApplyAll(r->placement, r->request.gpu_memory_mib); };

  std::vector<const RunningJob*> chosen;
  bool ok = false;
  int budget = policy_.max_preemptions_per_cycle - static_cast<int>(out_.preemptions.size());
  bool refused = false;  // a candidate not allowed beside victims chosen before it
  for (const RunningJob* c : candidates) {
    if (static_cast<int>(chosen.size()) >= budget) break;
    if (!allowed(*c, chosen)) {
      refused |= !chosen.empty();
      continue;
    }
    take(c);
    chosen.push_back(c);
    if (fits(chosen)) {
      ok = true;
      break;
    }
  }
  if (!ok) {
    for (const RunningJob* c : chosen) put_back(c);
    chosen.clear();
    // A victim chosen first that does not make room can keep one that alone would from being
    // allowed (reclaim: together they would leave their project too far below its fair share):
    // then each candidate is tried alone.
    for (const RunningJob* c : candidates) {
      if (!refused || budget < 1) break;
      if (!allowed(*c, chosen)) continue;
      take(c);
      chosen.push_back(c);
      if (fits(chosen)) {
        ok = true;
        break;
      }
      put_back(c);
      chosen.clear();
    }
    if (!ok) return std::nullopt;
  }
  // Keep running every victim the job can do without, the last chosen (smallest need) first.
  for (size_t i = chosen.size(); i-- > 0;) {
    std::vector<const RunningJob*> without = chosen;
    without.erase(without.begin() + static_cast<std::ptrdiff_t>(i));
    put_back(chosen[i]);
    if (fits(without)) {
      chosen = without;
    } else {
      take(chosen[i]);
    }
  }
  VictimPlan plan;
  plan.placement = *fits(chosen);
  for (const RunningJob* c : chosen) {
    put_back(c);
    plan.evicted_gpu_milli += TotalOf(*c).gpu_milli;
  }
  plan.victims = chosen;
  return plan;
}

void Cycle::Commit(JobState& job, const VictimPlan& plan, const PreemptDecision& why) {
  const std::vector<model::WorkerPlacement>& room = plan.placement;
  const EvictionKind kind = why.kind;
  for (const RunningJob* v : plan.victims) {
    victims_.insert(v->id);
    if (kind == EvictionKind::kReclaim) reclaimed_.insert(queue_of_[static_cast<size_t>(v - snap_.running.data())]);
    if (kind != EvictionKind::kConsolidate) Charge(v->queue, TotalOf(*v), -1, ClassOf(*v), &TypedOf(*v));
    PreemptDecision& p = out_.preemptions.emplace_back(why);
    p.id = v->id;
    p.for_job = job.pending->id;
    p.room = room;
  }
  // Its reservation, if it holds one, is no longer needed: the room is being made.
  if (reserved_by_.count(job.pending->id)) {
    for (NodeState& n : cluster_.nodes) {
      if (n.reserved_for == job.pending->id) n.reserved_for = 0;
    }
  }
  job.typed = TypedOf(plan.placement);
  Charge(job.pending->queue, job.total, +1, *job.job_class, &job.typed);
  // The cluster as it will be: the victims gone, the job in their place.
  for (const RunningJob* v : plan.victims) cluster_.ReleaseAll(v->placement, v->request.gpu_memory_mib);
  cluster_.ApplyAll(plan.placement, job.shape.gpu_memory_mib);
  ++room_version_;
  job.reason = WaitingForVictims(plan.victims.size());
}

// Better plan: fewer victims, then less GPU evicted, then the earlier node.
static bool Better(const std::optional<VictimPlan>& a, const std::optional<VictimPlan>& b) {
  if (!a) return false;
  if (!b) return true;
  return std::make_tuple(a->victims.size(), a->evicted_gpu_milli) <
         std::make_tuple(b->victims.size(), b->evicted_gpu_milli);
}

// Reclaim, in whole jobs and on every resource (DESIGN.md "Reclaim"):
// * job J of queue Q may reclaim when Q with J started stays within its fair share on every
//   resource, or within its deserved quota (WithinDeserved): a queue below its deserved quota can
//   always reclaim enough to run a job that fits in what it has left of that quota;
// * a running job V of another queue P may be taken when P holds more than its deserved quota and,
//   with the victims already chosen this cycle gone, P is still above its fair share on a resource
//   V holds, and keeps, without V, at least its fair share less its smallest running job on every
//   such resource. P so goes below its fair share by less than one of its jobs, never more (its
//   largest whole-job allocation not above its fair share, when its jobs are of one size); and V,
//   pending again, cannot reclaim its place back (its queue would again be above its fair share
//   with it), so two queues never evict each other in turn.
bool Cycle::Reclaim(JobState& job) {
  return types_.empty() ? ReclaimShare(job) : ReclaimWithTypes(job);  // gpu_types.cc
}

bool Cycle::ReclaimShare(JobState& job) {
  const std::string& name = job.pending->queue;
  const QueueState* own = job.queue;
  model::Resources with = own->allocated + job.total;
  const bool within_fair = DominantShare(with, own->fair) <= 1.0;
  if (!within_fair && !WithinDeserved(*own, job.total)) return false;
  const VictimMemo memo{'r', own, 0, Block::kNone, job.shape, KeyOf(OptionsFor(job))};
  if (no_victims_.count(memo)) return false;
  const auto& above = AboveShare;
  // The candidates change only with allocations and victims: built once per queue until then.
  auto& [version, candidates] =
      reclaim_candidates_.try_emplace(own, std::make_pair(-1, -1), std::vector<const RunningJob*>{})
          .first->second;
  if (version != std::make_pair(starts_version_, room_version_)) {
    version = {starts_version_, room_version_};
    candidates.clear();
    // Largest first, then lowest class priority, latest start, id: every running job sorted once
    // (stable), then filtered, is the candidates sorted.
    if (reclaim_order_.size() != snap_.running.size()) {
      reclaim_order_.clear();
      for (const RunningJob& r : snap_.running) reclaim_order_.push_back(&r);
      std::stable_sort(reclaim_order_.begin(), reclaim_order_.end(),
                       [&](const RunningJob* a, const RunningJob* b) {
                         const model::Resources &x = TotalOf(*a), &y = TotalOf(*b);
                         return std::make_tuple(-x.gpu_milli, -x.cpus, ClassOf(*a).priority,
                                                -a->start_time, a->id) <
                                std::make_tuple(-y.gpu_milli, -y.cpus, ClassOf(*b).priority,
                                                -b->start_time, b->id);
                       });
    }
    for (const RunningJob* r : reclaim_order_) {
      const size_t k = static_cast<size_t>(r - snap_.running.data());
      const QueueState* q = queue_of_[k];
      if (q == own || q == nullptr || !above(*q, {}, total_of_[k])) continue;
      if (HoldsOnlyDeserved(*q) || Protected(*r)) continue;
      if (!TypedKeeps(*q, {}, TypedOf(*r))) continue;
      candidates.push_back(r);
    }
  }
  if (candidates.empty() && GiveWay(job).empty()) return false;
  // One victim at a time by AboveShare, and its project's victims together by MayTake: on every
  // resource they take where it was above its fair share, it keeps its fair share less its
  // smallest job (whatever order they were chosen in; the rule starts give way by, so that a start
  // refused that way is not reclaimed a cycle later by the same victims taken one by one).
  std::vector<const RunningJob*> same;
  auto allowed = [&](const RunningJob& c, const std::vector<const RunningJob*>& chosen) {
    model::Resources taken;
    same.clear();
    for (const RunningJob* v : chosen) {
      if (v->queue == c.queue) taken += TotalOf(*v), same.push_back(v);
    }
    const QueueState& q = *queue_of_[static_cast<size_t>(&c - snap_.running.data())];
    if (!above(q, taken, TotalOf(c))) return false;
    if (!types_.empty()) {  // and above its share of each GPU type c holds
      TypedGpus typed_taken(types_.size(), 0);
      for (const RunningJob* v : same) {
        for (size_t t = 0; t < types_.size(); ++t) typed_taken[t] += TypedOf(*v)[t];
      }
      if (!TypedKeeps(q, typed_taken, TypedOf(c))) return false;
    }
    if (same.empty()) return true;  // AboveShare's rule is MayTake's for one job
    same.push_back(&c);
    return MayTake({}, same);
  };
  auto enough = [](const std::vector<const RunningJob*>&) { return true; };
  // This cycle's starts that reclaim could take next cycle (GiveWay) are set aside for the search;
  // those the plan needs give way, the others are put back. When the starts and victims a plan
  // needs may not be taken together (MayTake), the largest of those starts stays and the search
  // runs again without it.
  std::vector<JobState*> aside = GiveWay(job);
  // The starts set aside may be room enough without any victim (also where no running job may be
  // taken: a search by victims then finds nothing).
  auto search = [&]() -> std::optional<VictimPlan> {
    if (auto plan = SearchByNode(job, candidates, allowed, enough)) return plan;
    if (aside.empty()) return std::nullopt;
    auto p = cluster_.Place(job.shape, OptionsFor(job));
    if (!p) return std::nullopt;
    cluster_.ReleaseAll(*p, job.shape.gpu_memory_mib);
    return VictimPlan{{}, std::move(*p), 0};
  };
  for (JobState* j : aside) cluster_.ReleaseAll(j->placement, j->shape.gpu_memory_mib);
  std::optional<VictimPlan> best = search();
  if (!best) {
    for (JobState* j : aside) cluster_.ApplyAll(j->placement, j->shape.gpu_memory_mib);
  }
  while (best && !aside.empty()) {  // every start in `aside` is set aside here
    std::vector<int> nodes;
    for (const auto& w : best->placement) nodes.push_back(cluster_.NodeIndex(w.node));
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    PlaceOptions o = OptionsFor(job);
    o.only = &nodes;
    auto fits = [&] {
      for (const RunningJob* v : best->victims) cluster_.ReleaseAll(v->placement, v->request.gpu_memory_mib);
      auto p = cluster_.Place(job.shape, o);
      if (p) cluster_.ReleaseAll(*p, job.shape.gpu_memory_mib);
      for (const RunningJob* v : best->victims) cluster_.ApplyAll(v->placement, v->request.gpu_memory_mib);
      return p;
    };
    // The largest go back first, so that those that give way are the smallest the plan can do
    // with (MayTake keeps each project at its fair share less its smallest job taken).
    std::vector<JobState*> back(aside.rbegin(), aside.rend());
    std::stable_sort(back.begin(), back.end(), [](const JobState* a, const JobState* b) {
      return std::make_pair(a->total.gpu_milli, a->total.cpus) >
             std::make_pair(b->total.gpu_milli, b->total.cpus);
    });
    std::vector<JobState*> needed;
    for (JobState* j : back) {
      cluster_.ApplyAll(j->placement, j->shape.gpu_memory_mib);
      if (!fits()) {
        cluster_.ReleaseAll(j->placement, j->shape.gpu_memory_mib);
        needed.push_back(j);
      }
    }
    // The starts and victims taken together keep each project its fair share less its smallest job.
    if (MayTake(needed, best->victims)) {
      best->placement = *fits();
      for (JobState* j : needed) Charge(j->pending->queue, j->total, -1, *j->job_class, &j->typed);
      Withdraw(needed, job);
      break;
    }
    for (JobState* j : needed) cluster_.ApplyAll(j->placement, j->shape.gpu_memory_mib);
    best.reset();
    if (needed.empty()) break;  // every start is back
    std::erase(aside, needed.front());
    for (JobState* j : aside) cluster_.ReleaseAll(j->placement, j->shape.gpu_memory_mib);
    best = search();
    if (!best) {
      for (JobState* j : aside) cluster_.ApplyAll(j->placement, j->shape.gpu_memory_mib);
    }
  }
  if (!best) {
    no_victims_.insert(memo);
    return false;
  }
  if (best->victims.empty()) {  // the starts that gave way are room enough
    cluster_.ApplyAll(best->placement, job.shape.gpu_memory_mib);
    if (room_version_ == 0) {  // no victim in the cluster planned on: it is the one of now
      Start(job, best->placement);
    } else {  // its place kept in the planned cluster, as FitsRoomMade keeps it
      job.reason = RoomBeingMade();
    }
    return true;
  }
  Commit(job, *best,
         {.kind = EvictionKind::kReclaim, .project = name, .below_deserved = !within_fair});
  return true;
}

// Single-worker jobs look node by node (victims on one node, the fewest wins); gangs cluster-wide.
std::optional<VictimPlan> Cycle::SearchByNode(
    const JobState& job, const std::vector<const RunningJob*>& candidates,
    const std::function<bool(const RunningJob&, const std::vector<const RunningJob*>&)>& allowed,
    const std::function<bool(const std::vector<const RunningJob*>&)>& enough) {
  if (job.shape.workers > 1) return FindVictims(job, candidates, allowed, enough, nullptr);
  PlaceOptions o = OptionsFor(job);
  std::optional<VictimPlan> best;
  // The candidates in their order, per node: node i's are on[from[i]] .. on[from[i + 1] - 1].
  const size_t count = cluster_.nodes.size();
  std::vector<size_t> from(count + 1, 0);
  for (const RunningJob* c : candidates) {
    for (int i : nodes_of_[static_cast<size_t>(c - snap_.running.data())]) ++from[i + 1];
  }
  for (size_t i = 0; i < count; ++i) from[i + 1] += from[i];
  std::vector<const RunningJob*> on(from[count]);
  std::vector<size_t> next(from.begin(), from.end() - 1);
  for (const RunningJob* c : candidates) {
    for (int i : nodes_of_[static_cast<size_t>(c - snap_.running.data())]) on[next[i]++] = c;
  }
  std::vector<const RunningJob*> here;
  for (size_t i = 0; i < count; ++i) {
    if (from[i] == from[i + 1] || !cluster_.Usable(cluster_.nodes[i], o)) continue;
    here.assign(on.begin() + static_cast<std::ptrdiff_t>(from[i]),
                on.begin() + static_cast<std::ptrdiff_t>(from[i + 1]));
    std::vector<int> only{static_cast<int>(i)};
    auto plan = FindVictims(job, here, allowed, enough, &only);
    if (Better(plan, best)) best = plan;
    if (best && best->victims.size() == 1 && best->evicted_gpu_milli <= job.total.gpu_milli) break;
  }
  return best;
}

// Inside one queue a higher-priority job evicts lower-priority preemptible ones, also to get back
// under the queue's deserved quota or limit.
bool Cycle::Preempt(JobState& job) {
  const std::string& name = job.pending->queue;
  int priority = job.job_class->priority;
  const VictimMemo memo{'p', job.queue, priority, job.block, job.shape, KeyOf(OptionsFor(job))};
  if (no_victims_.count(memo)) return false;
  std::vector<const RunningJob*> candidates;
  for (const RunningJob* r : job.queue->running_jobs) {
    if (Protected(*r) || ClassOf(*r).priority >= priority) continue;
    // Room in the quota of a within-quota class is made only by jobs that count against it.
    if (job.block == Block::kQuota && !Firm(ClassOf(*r))) continue;
    candidates.push_back(r);
  }
  if (candidates.empty()) {
    no_victims_.insert(memo);  // jobs only become protected during a cycle: stays empty
    return false;
  }
  // For room on nodes, the largest first. For room in the deserved quota, the smallest job that
  // alone makes enough of it first (no gang is stopped for a quarter GPU), then the largest.
  int component = 0;
  int64_t need = 0;
  if (job.block == Block::kQuota) {
    if (QuotaHit hit = CheckQuota(job); hit.block == Block::kQuota) {
      component = hit.component;
      need = Get(hit.queue->firm, component) + Get(job.total, component) -
             Get(hit.queue->view->deserved, component);
    }
  }
  auto key = [&](const RunningJob* r) {
    const model::Resources& x = TotalOf(*r);
    const int64_t held = Get(x, component);
    const bool covers = need > 0 && held >= need;
    return std::make_tuple(ClassOf(*r).priority, !covers, covers ? held : 0, -x.gpu_milli, -x.cpus,
                           -r->start_time, r->id);
  };
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](const RunningJob* a, const RunningJob* b) { return key(a) < key(b); });
  auto allowed = [](const RunningJob&, const std::vector<const RunningJob*>&) { return true; };
  auto enough = [&](const std::vector<const RunningJob*>& chosen) {
    for (const RunningJob* v : chosen) Charge(v->queue, TotalOf(*v), -1, ClassOf(*v), &TypedOf(*v));
    bool ok = CheckQuota(job).block == Block::kNone;
    for (const RunningJob* v : chosen) Charge(v->queue, TotalOf(*v), +1, ClassOf(*v), &TypedOf(*v));
    return ok;
  };
  std::optional<VictimPlan> best = job.block == Block::kQuota
                                       ? FindVictims(job, candidates, allowed, enough, nullptr)
                                       : SearchByNode(job, candidates, allowed, enough);
  if (!best) {
    no_victims_.insert(memo);
    return false;
  }
  Commit(job, *best,
         {.kind = EvictionKind::kPreempt,
          .project = name,
          .job_class = job.pending->job_class,
          .priority = priority});
  return true;
}

std::optional<Shape> Cycle::MoverShape(const RunningJob& job) const {
  const size_t k = static_cast<size_t>(&job - snap_.running.data());
  const QueueState* q = queue_of_[k];
  const int64_t need = total_of_[k].gpu_milli;
  if (types_.empty() || need <= 0 || q == nullptr)
    return Shape::Of(job.request, job.gpu_models, job.nodes);
  // What it holds of each type is released when it moves; what it takes is its whole request.
  std::vector<std::string> keep;
  for (const std::string& model : job.gpu_models.empty() ? models_ : job.gpu_models) {
    const int t = TypeIndex(model);
    const bool room =
        t < 0 || std::none_of(q->up.begin(), q->up.end(), [&](const QueueState* a) {
          const int64_t limit = a->typed_limit[t];
          return limit >= 0 &&
                 a->typed_allocated[t] + a->typed_stopping[t] - typed_of_[k][t] + need > limit;
        });
    if (room) keep.push_back(model);
  }
  if (keep.empty()) return std::nullopt;
  if (job.gpu_models.empty() && keep.size() == models_.size()) keep.clear();
  return Shape::Of(job.request, keep, job.nodes);
}

// Free whole GPUs add up but no node has enough: move the fewest preemptible single-node jobs off
// one node, provided every moved job fits elsewhere right now, where it may run (MoverShape). A
// moved job is stopped like any victim: it restarts once the job it moved for has
// started (ctld/sched/evictions.h), wherever it fits then; it is not placed again in this cycle
// (its resources are not free until it stops).
bool Cycle::Consolidate(JobState& job) {
  if (job.shape.workers != 1 || job.shape.WholeGpus() == 0) return false;
  // A job that takes its project beyond its fair share and deserved quota could be reclaimed as
  // soon as it starts: no job is moved for it. With quotas per GPU type, the same holds of each
  // type (ReclaimOfType would take it back): it is moved for only onto the types its project
  // stays within its share or deserved quota of, as it reclaims (ReclaimWithTypes).
  if (!KeepsShare(*job.queue, job.total)) return false;
  const Shape full = job.shape;
  if (!types_.empty() && !NarrowToEntitled(job, false)) return false;
  if (MoveFor(job)) return true;
  job.shape = full;
  return false;
}

bool Cycle::MoveFor(JobState& job) {
  const Shape& s = job.shape;
  PlaceOptions o = OptionsFor(job);
  const VictimMemo memo{'c', nullptr, 0, Block::kNone, s, KeyOf(o)};
  if (no_victims_.count(memo)) return false;
  int free = 0;
  for (const NodeState& n : cluster_.nodes) {
    if (!cluster_.Usable(n, o)) continue;
    for (const GpuSlot& g : n.gpus) {
      free += g.free_milli >= 1000 && s.ModelOk(g.model);
    }
  }
  if (free < s.WholeGpus()) {
    no_victims_.insert(memo);
    return false;
  }

  struct Move {
    int node = -1;
    std::vector<const RunningJob*> movers;
    std::vector<std::vector<model::WorkerPlacement>> to;
    int64_t moved_gpu = 0;
  };
  auto movers_on = [&](int i) {
    std::vector<const RunningJob*> m;
    for (const RunningJob* r : running_on_[i]) {
      if (!Protected(*r) && r->placement.size() == 1) m.push_back(r);
    }
    std::stable_sort(m.begin(), m.end(), [&](const RunningJob* a, const RunningJob* b) {
      return std::make_tuple(TotalOf(*a).gpu_milli, ClassOf(*a).priority, a->id) <
             std::make_tuple(TotalOf(*b).gpu_milli, ClassOf(*b).priority, b->id);
    });
    return m;
  };
  // Plans moving jobs off node i; with keep, leaves the movers' new places taken.
  auto try_node = [&](int i, bool keep) -> std::optional<Move> {
    std::vector<const RunningJob*> candidates = movers_on(i);
    if (candidates.empty()) return std::nullopt;
    std::vector<int> only{i}, others;
    for (size_t k = 0; k < cluster_.nodes.size(); ++k) {
      if (static_cast<int>(k) != i) others.push_back(static_cast<int>(k));
    }
    auto none = [](const RunningJob&, const std::vector<const RunningJob*>&) { return true; };
    auto enough = [](const std::vector<const RunningJob*>&) { return true; };
    auto plan = FindVictims(job, candidates, none, enough, &only);
    if (!plan) return std::nullopt;
    Move m;
    m.node = i;
    m.movers = plan->victims;
    for (const RunningJob* v : m.movers) cluster_.ReleaseAll(v->placement, v->request.gpu_memory_mib);
    cluster_.ApplyAll(plan->placement, s.gpu_memory_mib);
    bool placed = true;
    for (const RunningJob* v : m.movers) {
      PlaceOptions mo;
      mo.policy = policy_.placement;
      mo.ignore_reservations = true;  // it ran here before any reservation
      mo.only = &others;
      // Only where it may restart (its GPU models, its nodes, its project's limits per GPU
      // type): a job moved where it may not start would wait and reclaim its place back.
      const std::optional<Shape> shape = MoverShape(*v);
      auto p = shape ? cluster_.Place(*shape, mo) : std::nullopt;
      if (!p) {
        placed = false;
        break;
      }
      m.to.push_back(*p);
      m.moved_gpu += TotalOf(*v).gpu_milli;
    }
    cluster_.ReleaseAll(plan->placement, s.gpu_memory_mib);
    for (const RunningJob* v : m.movers) cluster_.ApplyAll(v->placement, v->request.gpu_memory_mib);
    if (!placed || !keep) {
      for (size_t k = 0; k < m.to.size(); ++k) {
        cluster_.ReleaseAll(m.to[k], m.movers[k]->request.gpu_memory_mib);
      }
    }
    if (!placed) return std::nullopt;
    m.to.insert(m.to.begin(), plan->placement);  // to[0]: the waiting job's own place
    return m;
  };
  std::optional<Move> best;
  for (size_t i = 0; i < cluster_.nodes.size(); ++i) {
    const NodeState& n = cluster_.nodes[i];
    if (!cluster_.Usable(n, o) || n.whole_free >= s.WholeGpus()) continue;
    if (static_cast<int>(n.gpus.size()) < s.WholeGpus()) continue;
    int budget = policy_.max_preemptions_per_cycle - static_cast<int>(out_.preemptions.size());
    auto m = try_node(static_cast<int>(i), false);
    if (!m || static_cast<int>(m->movers.size()) > budget) continue;
    if (!best || std::make_tuple(m->movers.size(), m->moved_gpu) <
                     std::make_tuple(best->movers.size(), best->moved_gpu)) {
      best = m;
    }
  }
  if (!best) {
    no_victims_.insert(memo);
    return false;
  }
  best = try_node(best->node, true);
  if (!best) return false;
  VictimPlan plan;
  plan.victims = best->movers;
  plan.placement = best->to.front();
  Commit(job, plan,
         {.kind = EvictionKind::kConsolidate,
          .project = job.pending->queue,
          .gpu_milli = s.gpu_milli,
          .node = cluster_.nodes[best->node].view->name});
  return true;
}

}  // namespace herd::sched::internal
