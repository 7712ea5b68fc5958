// Reclaim (between queues, to restore fair share), preempt (inside a queue, by priority) and
// consolidate (move preemptible jobs so a fragmented free total becomes one fitting block): who is
// evicted is victims.cc's; this file keeps what evictions under way hold. Victims keep their
// resources until the daemon has stopped them; meanwhile what their job's plan takes that is free
// already is held for it, and nothing starts on it (HoldRoom, Commit). Evictions are planned on the
// cluster as it will be once every victim has stopped and every job it was evicted for has started
// (PlanRoom): the plans of one cycle and of the cycles before it share the room they make, none
// counts on room another takes, and a job that fits in room already being made waits for it
// instead of evicting more.
#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "ctld/sched/cycle.h"
#include "ctld/sched/evict_rules.h"

namespace herd::sched::internal {

model::PendingReason WaitingForVictims(size_t n) {
  return {.code = model::ReasonCode::kPreemptedJobs, .count = static_cast<int64_t>(n)};
}

void Cycle::HoldRoom() {
  // What the victims of a job with a plan hold on each node comes to that job as they stop; the
  // rest of its plan is free now and is held for it.
  std::map<int, int64_t> stopping_memory;  // node -> memory held by victims still stopping
  std::set<model::JobId> planned;
  for (const JobState& j : jobs_) {
    if (j.waiting && !j.pending->room_on.empty()) planned.insert(j.pending->id);
  }
  for (size_t k = 0; k < snap_.running.size(); ++k) {
    const RunningJob& r = snap_.running[k];
    if (r.evicted_for == 0) continue;
    if (!planned.count(r.evicted_for)) {
      for (int i : nodes_of_[k]) cluster_.nodes[i].held = true;
      continue;
    }
    for (const auto& w : r.placement) stopping_memory[cluster_.NodeIndex(w.node)] += w.memory_mib;
  }
  for (const JobState& j : jobs_) {
    if (!j.waiting) continue;
    for (const model::WorkerPlacement& w : j.pending->room_on) {
      std::vector<model::WorkerPlacement> parts = cluster_.FreeParts(w, j.shape.gpu_memory_mib);
      if (parts.empty()) continue;
      int64_t& freed = stopping_memory[cluster_.NodeIndex(w.node)];
      const int64_t from_victims = std::min(freed, w.memory_mib);
      freed -= from_victims;
      parts[0].memory_mib = std::min(parts[0].memory_mib, w.memory_mib - from_victims);
      for (size_t k = 0; k < parts.size(); ++k) {
        const int64_t gpu_memory = k == 0 ? j.shape.gpu_memory_mib : 0;
        cluster_.Apply(parts[k], gpu_memory);
        holds_.emplace_back(std::move(parts[k]), gpu_memory);
      }
    }
  }
}

void Cycle::PlanRoom() {
  for (const auto& [part, gpu_memory] : holds_) cluster_.Release(part, gpu_memory);
  holds_.clear();
  std::map<model::JobId, std::vector<int>> room;  // beneficiary -> its victims' nodes
  for (size_t k = 0; k < snap_.running.size(); ++k) {
    const RunningJob& r = snap_.running[k];
    if (r.evicted_for == 0) continue;
    cluster_.ReleaseAll(r.placement, r.request.gpu_memory_mib);
    std::vector<int>& nodes = room[r.evicted_for];
    nodes.insert(nodes.end(), nodes_of_[k].begin(), nodes_of_[k].end());
    ++room_version_;
  }
  for (NodeState& n : cluster_.nodes) n.held = false;
  if (room.empty()) return;
  // Each waiting job takes its place: where its plan put it when that is free, else on its plan's
  // nodes (else its victims' nodes) where it fits there (its room was made for it: no reservation
  // keeps it off), else wherever it fits; one that fits nowhere any more leaves the room to others.
  for (JobState& j : jobs_) {
    if (!j.waiting) continue;
    if (PlaceAsPlanned(j)) continue;
    PlaceOptions o = OptionsFor(j);
    o.ignore_reservations = true;
    std::vector<int> mine = RoomOf(*j.pending);
    if (auto it = room.find(j.pending->id); mine.empty() && it != room.end()) {
      mine = std::move(it->second);
      std::sort(mine.begin(), mine.end());
      mine.erase(std::unique(mine.begin(), mine.end()), mine.end());
    }
    std::optional<std::vector<model::WorkerPlacement>> p;
    if (!mine.empty()) {
      o.only = &mine;
      p = cluster_.Place(j.shape, o);
      o.only = nullptr;
    }
    if (!p) cluster_.Place(j.shape, o);
  }
}

bool Cycle::FitsRoomMade(JobState& job) {
  if (room_version_ == 0) return false;
  const PlaceOptions o = OptionsFor(job);
  auto [it, added] = room_fit_.try_emplace({job.shape, KeyOf(o)}, -1, false);
  // A job placed here keeps its place in the planned cluster: the jobs after it in the cycle do not
  // count on the same room (two jobs that each fit it but not together would both wait, and the
  // second then reclaim a cycle later what started meanwhile). Placing only takes room, so an
  // answer "does not fit" holds until more room is made.
  if (it->second.first == room_version_ && !it->second.second) return false;
  if (!cluster_.Place(job.shape, o)) {
    it->second = {room_version_, false};
    return false;
  }
  job.reason = RoomBeingMade();
  return true;
}

bool Cycle::FitsReserved(const JobState& job) {
  if (reserved_by_.empty()) return false;
  PlaceOptions o = OptionsFor(job);
  o.ignore_reservations = true;
  auto p = cluster_.Place(job.shape, o);
  if (!p) return false;
  cluster_.ReleaseAll(*p, job.shape.gpu_memory_mib);
  return true;
}

std::vector<JobState*> Cycle::GiveWay(const JobState& job) {
  if (give_way_version_ != starts_version_) {  // every queue's, built once per set of starts
    give_way_version_ = starts_version_;
    give_way_.clear();
    for (auto it = visited_.rbegin(); it != visited_.rend(); ++it) {
      JobState& j = **it;
      if (!j.started || j.queue == nullptr || !j.job_class->preemptible) continue;
      if (j.pending->room_made) continue;  // the room was made for it
      if (HoldsOnlyDeserved(*j.queue) || !AboveShare(*j.queue, {}, j.total)) continue;
      if (!TypedKeeps(*j.queue, {}, j.typed)) continue;
      give_way_.push_back(&j);
    }
    loose_.clear();
    if (!give_way_.empty()) {
      for (JobState* j : give_way_) cluster_.ReleaseAll(j->placement, j->shape.gpu_memory_mib);
      loose_ = cluster_.nodes;
      for (JobState* j : give_way_) cluster_.ApplyAll(j->placement, j->shape.gpu_memory_mib);
    }
  }
  std::vector<JobState*> out;
  for (JobState* j : give_way_) {
    if (j->queue != job.queue) out.push_back(j);
  }
  return out;
}

bool Cycle::MayTake(const std::vector<JobState*>& starts,
                    const std::vector<const RunningJob*>& victims, bool by_type) const {
  std::unordered_map<const QueueState*, std::pair<model::Resources, model::Resources>> lost;
  auto add = [&](const QueueState* q, const model::Resources& t) {
    auto& [taken, least] = lost[q];
    taken += t;
    for (int64_t* l : {&least.gpu_milli, &least.cpus, &least.memory_mib}) {
      const int64_t have = l == &least.gpu_milli ? t.gpu_milli : l == &least.cpus ? t.cpus : t.memory_mib;
      if (have > 0 && (*l == 0 || have < *l)) *l = have;
    }
  };
  for (const JobState* j : starts) add(j->queue, j->total);
  for (const RunningJob* v : victims) add(queue_of_[static_cast<size_t>(v - snap_.running.data())], TotalOf(*v));
  for (const auto& [q, e] : lost) {
    for (int c = 0; c < 3 && !by_type; ++c) {
      const int64_t t = Get(e.first, c), a = Get(q->allocated, c), f = Get(q->fair, c);
      if (t <= 0 || a <= f) continue;
      const int64_t s = Get(q->smallest, c), least = s > 0 ? std::min(s, Get(e.second, c)) : Get(e.second, c);
      if (a - t < f - least) return false;
    }
  }
  if (types_.empty()) return true;
  std::unordered_map<const QueueState*, TypedGpus> typed;  // and each GPU type's share (gpu_types.cc)
  auto add_typed = [&](const QueueState* q, const TypedGpus& t) {
    TypedGpus& sum = typed.try_emplace(q, types_.size(), 0).first->second;
    for (size_t i = 0; i < t.size(); ++i) sum[i] += t[i];
  };
  for (const JobState* j : starts) add_typed(j->queue, j->typed);
  for (const RunningJob* v : victims) add_typed(queue_of_[static_cast<size_t>(v - snap_.running.data())], TypedOf(*v));
  for (const auto& [q, sum] : typed) {
    if (!TypedKeeps(*q, {}, sum)) return false;
  }
  return true;
}

void Cycle::Withdraw(const std::vector<JobState*>& starts, const JobState& job) {
  if (starts.empty()) return;
  std::set<model::JobId> back;
  for (JobState* j : starts) {
    back.insert(j->pending->id);
    j->started = false;
    j->block = Block::kNoFit;
    j->reason = {.code = model::ReasonCode::kGaveWay,
                 .queue = j->pending->queue,
                 .other_queue = job.pending->queue,
                 .job = job.pending->id};
  }
  std::erase_if(out_.starts, [&](const StartDecision& st) { return back.count(st.id) > 0; });
  ++starts_version_;
}

bool Cycle::EntitledElsewhere(const JobState& job, const std::vector<JobState*>& back) const {
  for (const JobState* j : visited_) {
    const bool waits = !j->started || std::find(back.begin(), back.end(), j) != back.end();
    if (!waits || j->queue == nullptr || j->queue == job.queue || j == &job) continue;
    if (j->block != Block::kNoFit && !j->started) continue;
    if (DominantShare(j->queue->allocated + j->total, j->queue->fair) <= 1.0 ||
        WithinDeserved(*j->queue, j->total)) {
      return true;
    }
  }
  return false;
}

// The starts reclaim could take back next cycle (GiveWay): the latest first, as many as `job` needs
// to start now, then every one it can do without put back.
// A job its project's fair share covers takes back starts reclaim could take for it. So does a
// job of a project below its fair share that its whole job takes a little above it (fair shares
// are fractions, jobs whole), from starts whose projects they take further above theirs: the
// start it takes back could not take its place back, while left running it would be reclaimed
// as soon as a job's end raised the fair share by that little.
bool Cycle::WholeJobAboveShare(const JobState& job) const {
  const QueueState& own = *job.queue;
  return DominantShare(own.allocated + job.total, own.fair) > 1.0 &&
         DominantShare(own.allocated, own.fair) < 1.0 && !WithinDeserved(own, job.total);
}

bool Cycle::TakeBackShare(JobState& job) {  // entitled: TakeBack (gpu_types.cc) checks
  const QueueState* own = job.queue;
  const PlaceOptions o = OptionsFor(job);
  const VictimMemo memo{'t', own, 0, Block::kNone, job.shape, KeyOf(o)};
  if (no_victims_.count(memo)) return false;
  std::vector<JobState*> may = GiveWay(job);
  if (WholeJobAboveShare(job)) {  // only starts it takes further above their share than its own
    const double with = DominantShare(own->allocated + job.total, own->fair);
    std::erase_if(may, [&](const JobState* j) {
      return DominantShare(j->queue->allocated, j->queue->fair) <= with;
    });
  }
  // Most jobs do not fit even with every such start gone (of any queue): one placement says so.
  std::optional<std::vector<model::WorkerPlacement>> all;
  if (!may.empty()) {
    cluster_.SwapNodes(loose_);
    all = cluster_.Place(job.shape, o);
    if (all) cluster_.ReleaseAll(*all, job.shape.gpu_memory_mib);
    cluster_.SwapNodes(loose_);
  }
  if (!all) {
    no_victims_.insert(memo);
    return false;
  }
  return TakeBackFrom(job, may, memo);
}

bool Cycle::TakeBackFrom(JobState& job, const std::vector<JobState*>& may, const VictimMemo& memo,
                         bool by_type) {
  const PlaceOptions o = OptionsFor(job);
  std::vector<JobState*> chosen;
  bool fits = false;
  for (JobState* j : may) {
    cluster_.ReleaseAll(j->placement, j->shape.gpu_memory_mib);
    chosen.push_back(j);
    if (auto p = cluster_.Place(job.shape, o)) {
      cluster_.ReleaseAll(*p, job.shape.gpu_memory_mib);
      fits = true;
      break;
    }
  }
  if (!fits) {
    for (JobState* j : chosen) cluster_.ApplyAll(j->placement, j->shape.gpu_memory_mib);
    no_victims_.insert(memo);
    return false;
  }
  for (size_t i = chosen.size(); i-- > 0;) {
    cluster_.ApplyAll(chosen[i]->placement, chosen[i]->shape.gpu_memory_mib);
    if (auto q = cluster_.Place(job.shape, o)) {
      cluster_.ReleaseAll(*q, job.shape.gpu_memory_mib);
      chosen.erase(chosen.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      cluster_.ReleaseAll(chosen[i]->placement, chosen[i]->shape.gpu_memory_mib);
    }
  }
  if (!MayTake(chosen, {}, by_type)) {
    for (JobState* j : chosen) cluster_.ApplyAll(j->placement, j->shape.gpu_memory_mib);
    no_victims_.insert(memo);
    return false;
  }
  for (JobState* j : chosen) Charge(j->pending->queue, j->total, -1, *j->job_class, &j->typed);
  if (!by_type && WholeJobAboveShare(job) && EntitledElsewhere(job, chosen)) {
    // A job of another project, within its share once these starts are back, would reclaim it.
    for (JobState* j : chosen) {
      Charge(j->pending->queue, j->total, 1, *j->job_class, &j->typed);
      cluster_.ApplyAll(j->placement, j->shape.gpu_memory_mib);
    }
    return false;
  }
  Withdraw(chosen, job);
  Start(job, *cluster_.Place(job.shape, o));
  return true;
}

void Cycle::Evict() {
  // Starts of this cycle that reclaim would take back next cycle give way now, before anything is
  // evicted (on the cluster as it is: the jobs so started start now).
  for (JobState* job : visited_) {
    if (job->started || job->block != Block::kNoFit || out_.starts.empty()) continue;
    if (CheckQuota(*job).block == Block::kNone && TakeBack(*job)) job->queue->started_any = true;
  }
  PlanRoom();
  for (JobState* job : visited_) {
    if (job->started) continue;
    if (static_cast<int>(out_.preemptions.size()) >= policy_.max_preemptions_per_cycle) break;
    if (job->block == Block::kNoFit) {
      // Jobs started after it was tried may have taken what was left of its limit or quota: room
      // made for it now would be room it may not take.
      if (QuotaHit hit = CheckQuota(*job); hit.block != Block::kNone) {
        job->block = hit.block;
        job->reason = QuotaReason(*job, hit);
        if (hit.block == Block::kQuota) Preempt(*job);
        continue;
      }
      NarrowTypes(*job);
      if (FitsRoomMade(*job)) continue;
      const bool reserved = FitsReserved(*job);
      if ((!reserved && Reclaim(*job)) || Preempt(*job) || reserved) continue;
      Consolidate(*job);
    } else if (job->block == Block::kQuota) {
      Preempt(*job);
    }
  }
  WithdrawStartsOfReclaimed();
}

void Cycle::WithdrawStartsOfReclaimed() {
  if (reclaimed_.empty()) return;
  std::unordered_map<model::JobId, JobState*> started;
  for (JobState* j : visited_) {
    if (j->started) started[j->pending->id] = j;
  }
  std::erase_if(out_.starts, [&](const StartDecision& st) {
    auto it = started.find(st.id);
    if (it == started.end() || !reclaimed_.count(it->second->queue)) return false;
    JobState* job = it->second;
    // A start of a within-quota class counts only what the queue's firm jobs hold (CheckQuota):
    // it takes nothing the queue borrows, and stays.
    if (job->job_class->within_quota_only) return false;
    cluster_.ReleaseAll(st.placement, job->shape.gpu_memory_mib);
    Charge(job->pending->queue, job->total, -1, *job->job_class, &job->typed);
    job->started = false;
    job->block = Block::kNoFit;
    job->reason = {.code = model::ReasonCode::kGivesBack, .queue = job->pending->queue};
    return true;
  });
}

}  // namespace herd::sched::internal
