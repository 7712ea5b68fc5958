// Quotas per GPU type (QueueView::by_type; herd.toml(5) "QUOTAS PER GPU TYPE") and per node pool
// (QueueView::by_pool; "QUOTAS PER NODE POOL"). Both are quotas on a named set of GPUs, and one
// code path serves both: Cycle::types_ lists the named types, then the named pools; "type" below
// means either. A queue's `gpu` quota, fair share and limit keep counting every GPU; a type's quota
// counts only the GPUs whose GpuSlot::model is that type, a pool's only the GPUs of the nodes whose
// NodeView::quota_pool is that pool. A GPU counts in its type's set and its pool's; a job may run
// where both have room (the two are narrowed apart: models by Shape::gpu_models, pools by
// Shape::nodes). Per type:
// * fair share: the GPUs of that type divided by the two-step rule of fair_share.cc, with each
//   queue's deserved, limit and over-quota weight of that type; a pending job counts in the
//   demand of every type it may run on;
// * limit: a job starts only on types whose limits (its queue's and its ancestors') have room;
//   one whose every type is at its limit waits for the limit;
// * reclaim: a job reclaims only onto types its project stays within its fair share or deserved
//   quota of, and a job holding GPUs of a type is taken only while its project stays above its
//   fair share and deserved quota of that type (TypedKeeps). A project within its fair share on
//   every resource reclaims as before (ReclaimShare) with that rule added; any other project under
//   its quota of a type reclaims jobs on GPUs of that type only (ReclaimOfType). TakeBack (starts
//   of this cycle giving way) follows the same entitlement.
// Without typed or pool quotas types_ is empty and nothing here changes a decision.
#include <algorithm>
#include <functional>
#include <optional>
#include <set>

#include "common/model/units.h"
#include "ctld/sched/cycle.h"

namespace herd::sched::internal {

std::map<std::string, int64_t> TypedFairShares(const std::vector<QueueView>& queues,
                                               const std::string& type, bool pool,
                                               const std::map<std::string, int64_t>& demand,
                                               int64_t capacity) {
  std::vector<QueueView> typed;
  typed.reserve(queues.size());
  for (const QueueView& q : queues) {
    QueueView& v = typed.emplace_back();
    v.name = q.name;
    v.parent = q.parent;
    v.is_leaf = q.is_leaf;
    v.over_quota_weight = q.over_quota_weight;
    v.usage = q.usage;  // recent use lowers the weight of every type's surplus alike
    v.limit = {q.limit.gpu_milli, -1, -1};
    const model::GpuTypeQuotas& quotas = pool ? q.by_pool : q.by_type;
    if (auto it = quotas.find(type); it != quotas.end()) {
      const model::GpuTypeQuota& t = it->second;
      v.deserved.gpu_milli = t.deserved_milli;
      if (t.limit_milli >= 0 && (v.limit.gpu_milli < 0 || t.limit_milli < v.limit.gpu_milli)) {
        v.limit.gpu_milli = t.limit_milli;
      }
      if (t.over_quota_weight >= 0) v.over_quota_weight = t.over_quota_weight;
    }
  }
  std::map<std::string, model::Resources> d;
  for (const auto& [name, milli] : demand) d[name].gpu_milli = milli;
  std::map<std::string, int64_t> out;
  for (const auto& [name, r] : ComputeFairShares(typed, d, {capacity, 0, 0})) {
    out[name] = r.gpu_milli;
  }
  return out;
}

void Cycle::InitTypes() {
  std::set<std::string> named, pools, models;
  for (const QueueView& q : snap_.queues) {
    for (const auto& [type, quota] : q.by_type) named.insert(type);
    for (const auto& [pool, quota] : q.by_pool) pools.insert(pool);
  }
  if (named.empty() && pools.empty()) return;
  types_.assign(named.begin(), named.end());
  first_pool_ = types_.size();
  types_.insert(types_.end(), pools.begin(), pools.end());
  pool_set_.assign(cluster_.nodes.size(), -1);
  std::set<int> all_pools;
  for (size_t i = 0; i < cluster_.nodes.size(); ++i) {
    pool_set_[i] = PoolIndex(cluster_.nodes[i].view->quota_pool);
    all_pools.insert(pool_set_[i]);
  }
  all_pools_.assign(all_pools.begin(), all_pools.end());
  for (const NodeView& n : snap_.nodes) {
    for (const GpuSlot& g : n.gpus) models.insert(g.model);
  }
  models_.assign(models.begin(), models.end());
  const size_t n = types_.size();
  for (auto& [name, q] : queues_) {
    for (TypedGpus* v : {&q.typed_allocated, &q.typed_running, &q.typed_stopping, &q.typed_fair,
                         &q.typed_smallest, &q.typed_deserved}) {
      v->assign(n, 0);
    }
    q.typed_limit.assign(n, -1);
    for (size_t i = 0; i < n; ++i) {
      const model::GpuTypeQuotas& quotas = i < first_pool_ ? q.view->by_type : q.view->by_pool;
      auto it = quotas.find(types_[i]);
      if (it == quotas.end()) continue;
      q.typed_deserved[i] = it->second.deserved_milli;
      q.typed_limit[i] = it->second.limit_milli;
    }
  }
  auto add = [n](TypedGpus& to, const TypedGpus& v, int sign) {
    for (size_t i = 0; i < n; ++i) to[i] += sign * v[i];
  };
  // As the constructor charges running jobs: a victim still stopping counts in its queue's
  // stopping.
  for (size_t k = 0; k < snap_.running.size(); ++k) {
    typed_of_.push_back(TypedOf(snap_.running[k].placement));
    QueueState* q = queue_of_[k];
    if (q == nullptr) continue;
    const TypedGpus& t = typed_of_.back();
    for (size_t i = 0; i < n; ++i) {
      if (t[i] > 0 && (q->typed_smallest[i] == 0 || t[i] < q->typed_smallest[i])) {
        q->typed_smallest[i] = t[i];
      }
    }
    for (QueueState* a : q->up) {
      add(a->typed_running, t, +1);
      add(snap_.running[k].evicted_for != 0 ? a->typed_stopping : a->typed_allocated, t, +1);
    }
  }
  // Demand per type: held and stopping GPUs of that type, and every pending job that may run on it
  // (on a pool: that may use one of its nodes).
  std::vector<std::map<std::string, int64_t>> demand(n);
  for (auto& [name, q] : queues_) {
    if (!q.view->is_leaf) continue;
    for (size_t i = 0; i < n; ++i) demand[i][name] = q.typed_allocated[i] + q.typed_stopping[i];
  }
  auto wants = [&](const std::string& queue, const PendingJob& p, int64_t milli) {
    if (milli <= 0 || !queues_.count(queue)) return;
    for (size_t i = 0; i < first_pool_; ++i) {
      if (p.gpu_models.empty() ||
          std::find(p.gpu_models.begin(), p.gpu_models.end(), types_[i]) != p.gpu_models.end()) {
        demand[i][queue] += milli;
      }
    }
    if (!HasPools()) return;
    for (int t : PoolsOf(p.nodes)) {
      if (t >= 0) demand[static_cast<size_t>(t)][queue] += milli;
    }
  };
  for (JobState& j : jobs_) {
    if (j.queue == nullptr) continue;
    wants(j.pending->queue, *j.pending, j.total.gpu_milli);
    if (!j.waiting) continue;
    j.typed = TypedOf(j.pending->room_on);  // charged as if started, as the constructor does
    for (QueueState* a : j.queue->up) add(a->typed_allocated, j.typed, +1);
  }
  for (const PendingJob& p : snap_.held_out)
    wants(p.queue, p, Shape::Of(p.request).Total().gpu_milli);
  for (size_t i = 0; i < n; ++i) {
    const bool pool = i >= first_pool_;
    int64_t capacity = 0;
    for (const NodeView& node : snap_.nodes) {
      if (!node.schedulable) continue;
      for (const GpuSlot& g : node.gpus) {
        capacity += (pool ? node.quota_pool : g.model) == types_[i] ? 1000 : 0;
      }
    }
    for (const auto& [name, milli] :
         TypedFairShares(snap_.queues, types_[i], pool, demand[i], capacity)) {
      if (auto q = queues_.find(name); q != queues_.end()) q->second.typed_fair[i] = milli;
    }
  }
}

int Cycle::TypeIndex(const std::string& model) const {
  const auto end = types_.begin() + static_cast<std::ptrdiff_t>(first_pool_);
  auto t = std::lower_bound(types_.begin(), end, model);
  return t != end && *t == model ? static_cast<int>(t - types_.begin()) : -1;
}

int Cycle::PoolIndex(const std::string& pool) const {
  if (pool.empty()) return -1;
  const auto begin = types_.begin() + static_cast<std::ptrdiff_t>(first_pool_);
  auto t = std::lower_bound(begin, types_.end(), pool);
  return t != types_.end() && *t == pool ? static_cast<int>(t - types_.begin()) : -1;
}

std::vector<int> Cycle::PoolsOf(const std::optional<std::vector<std::string>>& nodes) const {
  if (!nodes) return all_pools_;
  std::set<int> out;
  for (const std::string& name : *nodes) {
    if (const int i = cluster_.NodeIndex(name); i >= 0) out.insert(pool_set_[i]);
  }
  return {out.begin(), out.end()};
}

std::vector<std::string> Cycle::NodesWhere(const std::optional<std::vector<std::string>>& nodes,
                                           const std::function<bool(int)>& pool_ok) const {
  std::vector<std::string> out;
  if (nodes) {
    for (const std::string& name : *nodes) {
      const int i = cluster_.NodeIndex(name);
      if (i >= 0 && pool_ok(pool_set_[i])) out.push_back(name);
    }
    return out;  // already sorted
  }
  for (size_t i = 0; i < cluster_.nodes.size(); ++i) {
    if (pool_ok(pool_set_[i])) out.push_back(cluster_.nodes[i].view->name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TypedGpus Cycle::TypedOf(const std::vector<model::WorkerPlacement>& placement) const {
  if (types_.empty()) return {};
  TypedGpus out(types_.size(), 0);
  for (const model::WorkerPlacement& w : placement) {
    const int i = cluster_.NodeIndex(w.node);
    if (i < 0) continue;
    for (int index : w.gpus) {
      if (const int p = pool_set_[i]; p >= 0) out[p] += w.gpu_milli_each;
      for (const GpuSlot& g : cluster_.nodes[i].view->gpus) {
        if (g.index != index) continue;
        if (const int t = TypeIndex(g.model); t >= 0) out[t] += w.gpu_milli_each;
        break;
      }
    }
  }
  return out;
}

const TypedGpus& Cycle::TypedOf(const RunningJob& job) const {
  static const TypedGpus kNone;
  return types_.empty() ? kNone : typed_of_[static_cast<size_t>(&job - snap_.running.data())];
}

const std::vector<std::string>& Cycle::ModelsOf(const JobState& job) const {
  return job.pending->gpu_models.empty() ? models_ : job.pending->gpu_models;
}

bool Cycle::TypeLimited(const JobState& job, const std::string& model, QuotaHit* hit) const {
  const int t = TypeIndex(model);
  return t >= 0 && SetLimited(job, t, hit);
}

bool Cycle::SetLimited(const JobState& job, int t, QuotaHit* hit) const {
  for (const QueueState* a : job.queue->up) {
    const int64_t limit = a->typed_limit[t];
    if (limit >= 0 && a->typed_allocated[t] + a->typed_stopping[t] + job.total.gpu_milli > limit) {
      *hit = {Block::kLimit, a, 0, t};
      return true;
    }
  }
  return false;
}

QuotaHit Cycle::TypedLimitHit(const JobState& job) const {
  if (types_.empty() || job.total.gpu_milli <= 0 || job.queue == nullptr) return {};
  QuotaHit first, hit;
  bool room = false;
  for (const std::string& model : ModelsOf(job)) {
    if (!TypeLimited(job, model, &hit)) {
      room = true;
      break;
    }
    if (first.block == Block::kNone) first = hit;
  }
  if (!room && first.block != Block::kNone) return first;
  if (!HasPools()) return {};
  first = {};  // a limit on every pool the job may use
  for (int t : PoolsOf(job.pending->nodes)) {
    if (t < 0 || !SetLimited(job, t, &hit)) return {};
    if (first.block == Block::kNone) first = hit;
  }
  return first;
}

void Cycle::NarrowTypes(JobState& job) {
  if (types_.empty() || job.total.gpu_milli <= 0 || job.queue == nullptr) return;
  std::vector<std::string> keep;
  QuotaHit hit;
  for (const std::string& model : ModelsOf(job)) {
    if (!TypeLimited(job, model, &hit)) keep.push_back(model);
  }
  if (keep.empty()) return;  // TypedLimitHit blocks it
  if (keep.size() == ModelsOf(job).size()) keep = job.pending->gpu_models;
  std::sort(keep.begin(), keep.end());
  std::optional<std::vector<std::string>> nodes = job.pending->nodes;
  if (HasPools()) {  // and off the nodes of pools whose limits have no room
    std::vector<bool> full(types_.size(), false);
    bool any_full = false, any_open = false;
    for (int t : PoolsOf(job.pending->nodes)) {
      const bool f = t >= 0 && SetLimited(job, t, &hit);
      if (f) full[static_cast<size_t>(t)] = true;
      any_full = any_full || f;
      any_open = any_open || !f;
    }
    if (!any_open) return;  // TypedLimitHit blocks it
    if (any_full) nodes = NodesWhere(job.pending->nodes, [&](int t) { return t < 0 || !full[t]; });
  }
  if (keep != job.shape.gpu_models || (HasPools() && nodes != job.shape.nodes)) {
    job.shape = Shape::Of(job.pending->request, keep, nodes);
  }
}

model::PendingReason Cycle::TypedLimitReason(const JobState& job, const QuotaHit& hit) const {
  const QueueState& a = *hit.queue;
  const size_t t = static_cast<size_t>(hit.type);
  model::PendingReason r;
  r.code = model::ReasonCode::kTypedLimit;
  r.queue = a.view->name;
  r.department = !a.view->is_leaf;
  (t < first_pool_ ? r.gpu_types : r.target) = types_[t];
  r.amount = a.typed_limit[t];
  r.used = a.typed_allocated[t] + a.typed_stopping[t];
  r.need = job.total.gpu_milli;
  return r;
}

bool Cycle::TypedKeeps(const QueueState& q, const TypedGpus& taken, const TypedGpus& holds) const {
  for (size_t i = 0; i < holds.size(); ++i) {
    const int64_t h = holds[i];
    if (h <= 0) continue;
    const int64_t left = q.typed_allocated[i] - (taken.empty() ? 0 : taken[i]);
    const int64_t f = q.typed_fair[i];
    if (left <= f || left <= q.typed_deserved[i]) return false;
    const int64_t least = q.typed_smallest[i] > 0 ? std::min(q.typed_smallest[i], h) : h;
    if (left - h < f - least || left - h < q.typed_deserved[i] - least) return false;
  }
  return true;
}

// Models and pools are narrowed apart. With `typed_only`, a side (models or pools) with a named set
// the project is entitled to keeps only such sets, the other side keeps its sets of no quota and
// those it is entitled to; one side at least must have such a set.
bool Cycle::NarrowToEntitled(JobState& job, bool typed_only) {
  if (job.total.gpu_milli <= 0) return !typed_only;
  bool models_named = false;
  std::vector<std::string> models = EntitledModels(job, typed_only, &models_named);
  const EntitledPools pools = PoolsEntitled(job, typed_only);
  if (typed_only && !models_named && !pools.named) return false;
  if (models.empty() || !pools.some) return false;
  std::optional<std::vector<std::string>> nodes = job.shape.nodes;
  if (!pools.all) nodes = NodesWhere(job.shape.nodes, [&](int t) { return pools.May(t); });
  job.shape = Shape::Of(job.pending->request, models, nodes);
  return true;
}

bool Cycle::Entitled(const JobState& job, int t) const {
  const QueueState& own = *job.queue;
  const int64_t with = own.typed_allocated[t] + job.total.gpu_milli;
  return with <= own.typed_fair[t] || with <= own.typed_deserved[t];
}

std::vector<std::string> Cycle::EntitledModels(const JobState& job, bool typed_only,
                                               bool* named) const {
  std::vector<std::string> keep, other;  // models of a named type it is entitled to; of none
  for (const std::string& model : job.shape.gpu_models.empty() ? models_ : job.shape.gpu_models) {
    const int t = TypeIndex(model);
    if (t < 0) {
      other.push_back(model);
    } else if (Entitled(job, t)) {
      keep.push_back(model);
    }
  }
  *named = !keep.empty();
  if (!typed_only || keep.empty()) {
    keep.insert(keep.end(), other.begin(), other.end());
    std::sort(keep.begin(), keep.end());
  }
  return keep;
}

Cycle::EntitledPools Cycle::PoolsEntitled(const JobState& job, bool typed_only) const {
  EntitledPools p;
  p.ok.assign(types_.size(), false);
  const std::vector<int> pools = HasPools() ? PoolsOf(job.shape.nodes) : std::vector<int>{-1};
  for (int t : pools) {
    if (t >= 0 && Entitled(job, t)) p.ok[static_cast<size_t>(t)] = p.named = true;
  }
  p.unnamed_ok = !(typed_only && p.named);
  for (int t : pools) {
    if (p.May(t)) {
      p.some = true;
    } else {
      p.all = false;
    }
  }
  return p;
}

std::vector<bool> Cycle::Wanted(const JobState& job) const {
  std::vector<bool> wanted(types_.size(), false);
  for (const std::string& model : job.shape.gpu_models) {
    if (const int t = TypeIndex(model); t >= 0) wanted[static_cast<size_t>(t)] = true;
  }
  if (!HasPools()) return wanted;
  for (int t : PoolsOf(job.shape.nodes)) {
    if (t >= 0) wanted[static_cast<size_t>(t)] = true;
  }
  return wanted;
}

// Its shape is put back when it fails.
bool Cycle::ReclaimWithTypes(JobState& job) {
  const Shape full = job.shape;
  if (NarrowToEntitled(job, false) && (ReclaimShare(job) || ReclaimOfType(job))) return true;
  job.shape = full;
  return false;
}

bool Cycle::TakeBack(JobState& job) {
  const QueueState& own = *job.queue;
  const bool by_share = DominantShare(own.allocated + job.total, own.fair) <= 1.0 ||
                        WithinDeserved(own, job.total) || WholeJobAboveShare(job);
  if (types_.empty()) return by_share && TakeBackShare(job);
  const Shape full = job.shape;
  if (by_share && NarrowToEntitled(job, false) && TakeBackShare(job)) return true;
  job.shape = full;
  if (NarrowToEntitled(job, true) && TakeBackOfType(job)) return true;
  job.shape = full;
  return false;
}

std::vector<JobState*> Cycle::StartsOfType(const JobState& job, const std::vector<bool>& wanted) {
  std::vector<JobState*> may;  // as ReclaimOfType takes running jobs, the latest first
  for (auto it = visited_.rbegin(); it != visited_.rend(); ++it) {
    JobState& j = **it;
    if (!j.started || j.queue == nullptr || j.queue == job.queue) continue;
    if (!j.job_class->preemptible || j.pending->room_made) continue;
    bool on = false;
    for (size_t t = 0; t < types_.size(); ++t) on = on || (wanted[t] && j.typed[t] > 0);
    if (on && TypedKeeps(*j.queue, {}, j.typed)) may.push_back(&j);
  }
  return may;
}

bool Cycle::TakeBackOfType(JobState& job) {
  const std::vector<bool> wanted = Wanted(job);
  const VictimMemo memo{'u', job.queue, 0, Block::kNone, job.shape, KeyOf(OptionsFor(job))};
  if (no_victims_.count(memo)) return false;
  const std::vector<JobState*> may = StartsOfType(job, wanted);
  if (may.empty()) return false;
  return TakeBackFrom(job, may, memo, true);
}

bool Cycle::ReclaimOfType(JobState& job) {
  if (job.total.gpu_milli <= 0) return false;
  const QueueState* own = job.queue;
  const Shape before = job.shape;
  if (!NarrowToEntitled(job, true)) return false;  // the types of a quota it is under
  const std::vector<bool> wanted = Wanted(job);
  const VictimMemo memo{'y', own, 0, Block::kNone, job.shape, KeyOf(OptionsFor(job))};
  if (no_victims_.count(memo)) {
    job.shape = before;
    return false;
  }
  std::vector<const RunningJob*> candidates;
  for (size_t k = 0; k < snap_.running.size(); ++k) {
    const QueueState* q = queue_of_[k];
    if (q == own || q == nullptr || Protected(snap_.running[k])) continue;
    bool on = false;
    for (size_t t = 0; t < types_.size(); ++t) on = on || (wanted[t] && typed_of_[k][t] > 0);
    if (on && TypedKeeps(*q, {}, typed_of_[k])) candidates.push_back(&snap_.running[k]);
  }
  std::stable_sort(
      candidates.begin(), candidates.end(), [&](const RunningJob* a, const RunningJob* b) {
        const model::Resources &x = TotalOf(*a), &y = TotalOf(*b);
        return std::make_tuple(-x.gpu_milli, ClassOf(*a).priority, -a->start_time, a->id) <
               std::make_tuple(-y.gpu_milli, ClassOf(*b).priority, -b->start_time, b->id);
      });
  // Victims of one project together keep it above its fair share of each type they take.
  auto allowed = [&](const RunningJob& c, const std::vector<const RunningJob*>& chosen) {
    TypedGpus taken(types_.size(), 0);
    for (const RunningJob* v : chosen) {
      if (v->queue != c.queue) continue;
      for (size_t t = 0; t < types_.size(); ++t) taken[t] += TypedOf(*v)[t];
    }
    return TypedKeeps(*queue_of_[static_cast<size_t>(&c - snap_.running.data())], taken,
                      TypedOf(c));
  };
  auto enough = [](const std::vector<const RunningJob*>&) { return true; };
  // This cycle's starts it could take back (TakeBackOfType's) are set aside for the search, as
  // ReclaimShare sets aside GiveWay's; those the plan needs give way, the others are put back.
  const std::vector<JobState*> aside = StartsOfType(job, wanted);
  for (JobState* j : aside) cluster_.ReleaseAll(j->placement, j->shape.gpu_memory_mib);
  std::optional<VictimPlan> plan = SearchByNode(job, candidates, allowed, enough);
  std::vector<JobState*> needed, released = aside;  // released: not put back
  if (plan && !plan->victims.empty()) {
    PlaceOptions o = OptionsFor(job);
    std::vector<int> nodes;
    for (const auto& w : plan->placement) nodes.push_back(cluster_.NodeIndex(w.node));
    std::sort(nodes.begin(), nodes.end());
    o.only = &nodes;
    auto fits = [&] {
      for (const RunningJob* v : plan->victims)
        cluster_.ReleaseAll(v->placement, v->request.gpu_memory_mib);
      auto p = cluster_.Place(job.shape, o);
      if (p) cluster_.ReleaseAll(*p, job.shape.gpu_memory_mib);
      for (const RunningJob* v : plan->victims)
        cluster_.ApplyAll(v->placement, v->request.gpu_memory_mib);
      return p;
    };
    for (JobState* j : aside) {
      cluster_.ApplyAll(j->placement, j->shape.gpu_memory_mib);
      if (!fits()) cluster_.ReleaseAll(j->placement, j->shape.gpu_memory_mib), needed.push_back(j);
    }
    released = needed;
    if (!needed.empty() && MayTake(needed, plan->victims, true)) {
      plan->placement = *fits();
    } else if (!needed.empty()) {
      plan.reset();
    }
  }
  if (!plan || plan->victims.empty()) {
    for (JobState* j : released) cluster_.ApplyAll(j->placement, j->shape.gpu_memory_mib);
    no_victims_.insert(memo);
    job.shape = before;
    return false;
  }
  for (JobState* j : needed) Charge(j->pending->queue, j->total, -1, *j->job_class, &j->typed);
  Withdraw(needed, job);
  std::string type;
  const TypedGpus room = TypedOf(plan->placement);
  for (size_t t = 0; t < types_.size() && type.empty(); ++t) {
    if (room[t] > 0 && wanted[t]) type = t < first_pool_ ? types_[t] : types_[t] + " pool";
  }
  Commit(job, *plan,
         {.kind = EvictionKind::kReclaim, .project = job.pending->queue, .gpu_type = type});
  return true;
}

void Cycle::TypedShares(const QueueState& q, QueueShare& out) const {
  for (size_t t = 0; t < types_.size(); ++t) {
    (t < first_pool_ ? out.by_type : out.by_pool)[types_[t]] = {
        q.typed_deserved[t], q.typed_limit[t], q.typed_fair[t], q.typed_running[t]};
  }
}

}  // namespace herd::sched::internal
