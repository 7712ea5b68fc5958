// The clock advances in cycles of options.cycle_s. Each cycle, in the order herd-ctld acts: jobs
// arrive, jobs end (work done, session closed or max_time), idle sessions are stopped (herd regime),
// Decide() runs and its preemptions and starts are applied, then the cycle is sampled. A job's end
// and its resources' release fall on the first cycle at or after it. The herd regime keeps one
// Snapshot for the whole run and edits it in place, as simulator.cc does; the static regime builds
// a small snapshot per researcher whose block changed.
#include "bench/sim/utilization_sim.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <unordered_map>

#include "ctld/sched/evictions.h"
#include "ctld/sched/snapshot_builder.h"

namespace herd::sim {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr int64_t kHour = 3600;
constexpr char kInteractive[] = "interactive";
constexpr char kTrain[] = "train";

enum class State { kPending, kRunning, kDone };

// One submitted job as the simulator tracks it.
struct Live {
  TeamJob job;
  State state = State::kPending;
  int64_t pending_since = 0;
  int32_t reclaims = 0;  // times reclaimed (sched::PendingJob::reclaims)
  int64_t first_start = -1;
  int64_t start = 0;
  int64_t saved = 0;        // train / sweep: work kept across evictions (checkpoints)
  int64_t idle_since = -1;  // sessions: first cycle its GPUs were seen idle, -1 active
  model::WorkerPlacement placement;
};

class TeamSim {
 public:
  TeamSim(const TeamWorkload& w, const UtilizationOptions& o) : w_(w), o_(o) {}
  Result<UtilizationResult> Run();

 private:
  Live& Get(int64_t id) { return jobs_[static_cast<size_t>(id - 1)]; }
  void Submit(const TeamJob& job);  // gives it the next id
  void Returned(const Live& l, int64_t now);  // a train / sweep job's work is done
  void NextExperiment(int user, int64_t at);  // closed demand: queues the user's next one
  void EndRunning(int64_t now);
  void StopIdleSessions(int64_t now);
  Status ScheduleHerd(int64_t now);
  Status ScheduleStatic(int64_t now);
  Status Start(Live& l, const model::WorkerPlacement& w, int64_t now);
  void Stop(Live& l);  // releases its resources and takes it out of the running set
  void Sample(int64_t now);
  int64_t EndOf(const Live& l) const;
  double BusyAt(const Live& l, int64_t now) const;
  sched::RunningJob RunningView(const Live& l) const;
  sched::PendingJob PendingView(const Live& l) const;
  std::string QueueOf(const TeamJob& j) const;

  const TeamWorkload& w_;
  const UtilizationOptions& o_;
  UtilizationResult r_;
  std::deque<Live> jobs_;          // by id - 1; resubmitted sessions get new ids
  std::vector<int64_t> running_;   // ids
  sched::EvictedFor evicted_for_;  // evictions under way, applied as herd-ctld applies them
  sched::RoomFor room_for_;        // where their beneficiaries are planned
  std::vector<sched::NodeView> nodes_;  // the cluster, free resources kept current
  std::unordered_map<std::string, size_t> node_index_;
  std::vector<std::map<int, int>> numa_of_core_;  // per node
  std::vector<int64_t> user_memory_;              // static: memory held in the researcher's block
  std::vector<bool> dirty_;                       // static: the researcher's block or queue changed
  std::vector<std::vector<int64_t>> pending_of_;  // static: pending ids per researcher
  int64_t pending_gpus_ = 0;                      // asked by pending jobs, gated ones included
  bool changed_ = true;  // herd: a job arrived, started or stopped since the last Decide()
  int64_t wake_ = 0;     // herd: when a time threshold of Decide() is next crossed
  sched::Snapshot snap_;  // herd: pending and running kept in sync; static: classes only
  std::multimap<int64_t, TeamJob> later_;  // sessions to reopen, closed experiments, by time
  std::unordered_map<int64_t, std::pair<size_t, int>> open_experiments_;  // -> record, jobs left
  std::vector<size_t> next_experiment_;  // closed: per researcher, index into its sequence
  std::unordered_map<int64_t, int64_t> think_of_;  // closed: experiment -> its think time
};

std::string TeamSim::QueueOf(const TeamJob& j) const {
  const Researcher& r = w_.researchers[j.user];
  return o_.regime == Regime::kStatic ? r.name : w_.projects[r.project].name;
}

int64_t TeamSim::EndOf(const Live& l) const {
  if (l.job.kind != JobKind::kSession) return l.start + l.job.work_s - l.saved;
  return l.start + std::min(l.job.forgotten ? o_.session_max_s : l.job.work_s, o_.session_max_s);
}

double TeamSim::BusyAt(const Live& l, int64_t now) const {
  if (l.job.kind != JobKind::kSession) return l.job.busy;
  const int64_t t = now - l.start;
  auto it = std::upper_bound(l.job.bursts.begin(), l.job.bursts.end(), t,
                             [](int64_t v, const Burst& b) { return v < b.begin; });
  return it != l.job.bursts.begin() && t < std::prev(it)->end ? l.job.busy : 0.0;
}

sched::RunningJob TeamSim::RunningView(const Live& l) const {
  sched::RunningJob r = sched::Started(PendingView(l), {l.placement}, l.start);
  if (l.job.kind == JobKind::kSession) r.end_by = l.start + o_.session_max_s;  // its max_time
  return r;
}

sched::PendingJob TeamSim::PendingView(const Live& l) const {
  sched::Request request;
  request.gpu_milli = 1000 * int64_t{l.job.gpus};
  request.cpus = l.job.cpus;
  request.memory_mib = l.job.memory_mib;
  const char* job_class = l.job.kind == JobKind::kSession ? kInteractive : kTrain;
  sched::JobFacts facts{l.job.id, QueueOf(l.job), job_class, request, l.job.submit};
  facts.reclaims = l.reclaims;
  return sched::PendingOf(std::move(facts), l.pending_since);
}

void TeamSim::Submit(const TeamJob& job) {
  Live l;
  l.job = job;
  l.job.id = static_cast<int64_t>(jobs_.size()) + 1;
  l.pending_since = job.submit;
  jobs_.push_back(std::move(l));
  r_.kinds[static_cast<int>(job.kind)].submitted++;
  pending_gpus_ += job.gpus;
  if (job.experiment > 0) {
    auto [it, first] = open_experiments_.try_emplace(job.experiment, r_.experiments.size(), 0);
    if (first) r_.experiments.push_back({job.user, job.experiment, job.submit, -1, 0});
    it->second.second++;
  }
  if (o_.regime == Regime::kHerd) {
    snap_.pending.push_back(PendingView(jobs_.back()));
  } else {
    pending_of_[job.user].push_back(jobs_.back().job.id);
  }
  dirty_[job.user] = true;
  changed_ = true;
}

// Checks `w` against the free resources (and, static, the researcher's block) and takes them.
Status TeamSim::Start(Live& l, const model::WorkerPlacement& w, int64_t now) {
  auto bad = [&](const std::string& what) {
    return Internal(std::string(RegimeName(o_.regime)) + ": job " + std::to_string(l.job.id) +
                    " started on " + w.node + " with " + what);
  };
  auto n = node_index_.find(w.node);
  if (n == node_index_.end()) return bad("an unknown node");
  sched::NodeView& v = nodes_[n->second];
  const Researcher& r = w_.researchers[l.job.user];
  const bool fixed = o_.regime == Regime::kStatic;
  if (fixed && static_cast<int>(n->second) != r.node) return bad("a node outside " + r.name + "'s GPUs");
  if (static_cast<int>(w.gpus.size()) != l.job.gpus || w.gpu_milli_each != 1000) return bad("wrong GPUs");
  std::set<int> seen;
  for (int g : w.gpus) {
    if (g < 0 || g >= static_cast<int>(v.gpus.size())) return bad("unknown GPU " + std::to_string(g));
    if (fixed && (g < r.first_gpu || g >= r.first_gpu + r.gpus)) {
      return bad("GPU " + std::to_string(g) + ", not one of " + r.name + "'s");
    }
    if (v.gpus[g].free_milli != 1000 || !seen.insert(g).second) {
      return bad("GPU " + std::to_string(g) + " already in use");
    }
  }
  if (static_cast<int64_t>(w.cores.size()) != l.job.cpus) return bad("a wrong core count");
  seen.clear();
  for (int c : w.cores) {
    if (fixed && (c < r.first_core || c >= r.first_core + r.cores)) return bad("a core outside the block");
    auto numa = numa_of_core_[n->second].find(c);
    if (numa == numa_of_core_[n->second].end()) return bad("unknown core " + std::to_string(c));
    const std::vector<int>& free = v.free_cores_by_numa[numa->second];
    if (!std::binary_search(free.begin(), free.end(), c) || !seen.insert(c).second) {
      return bad("core " + std::to_string(c) + " already in use");
    }
  }
  if (w.memory_mib != l.job.memory_mib || v.free_memory_mib < w.memory_mib) return bad("too much memory");
  sched::TakeFromNode(v, w, 0);  // whole GPUs: all their memory
  user_memory_[l.job.user] += w.memory_mib;
  if (fixed && user_memory_[l.job.user] > r.memory_mib) return bad("memory beyond the block");
  l.state = State::kRunning;
  pending_gpus_ -= l.job.gpus;
  l.placement = w;
  l.start = now;
  l.idle_since = -1;
  if (l.first_start < 0) {
    l.first_start = now;
    KindStats& k = r_.kinds[static_cast<int>(l.job.kind)];
    k.started++;
    k.waits_s.push_back(static_cast<double>(now - l.job.submit));
  }
  running_.push_back(l.job.id);
  if (o_.regime == Regime::kHerd) snap_.running.push_back(RunningView(l));
  dirty_[l.job.user] = true;
  changed_ = true;
  if (o_.on_start) o_.on_start(l.job, w);
  return Status::Ok();
}

void TeamSim::Stop(Live& l) {
  const size_t n = node_index_.at(l.placement.node);
  sched::GiveBackToNode(nodes_[n], l.placement, 0, numa_of_core_[n]);
  user_memory_[l.job.user] -= l.placement.memory_mib;
  std::erase(running_, l.job.id);
  if (o_.regime == Regime::kHerd) {
    std::erase_if(snap_.running, [&](const sched::RunningJob& r) { return r.id == l.job.id; });
  }
  dirty_[l.job.user] = true;
  changed_ = true;
}

void TeamSim::Returned(const Live& l, int64_t now) {
  auto it = open_experiments_.find(l.job.experiment);
  if (it == open_experiments_.end() || --it->second.second > 0) return;
  r_.experiments[it->second.first].returned = now;
  open_experiments_.erase(it);
  if (w_.params.demand == Demand::kClosed) NextExperiment(l.job.user, now);
}

void TeamSim::NextExperiment(int user, int64_t at) {
  const std::vector<Experiment>& seq = w_.experiments[static_cast<size_t>(user)];
  size_t& next = next_experiment_[static_cast<size_t>(user)];
  if (next >= seq.size()) return;
  const Experiment& e = seq[next++];
  const int64_t submit = ThinkUntil(w_.params, at, e.think_s);
  for (const TeamJob& j : e.jobs) {
    TeamJob job = j;
    job.submit = submit;
    later_.emplace(submit, std::move(job));
  }
  think_of_[e.jobs.front().experiment] = e.think_s;
}

void TeamSim::EndRunning(int64_t now) {
  for (size_t i = 0; i < running_.size();) {
    Live& l = Get(running_[i]);
    if (EndOf(l) > now) {
      ++i;
      continue;
    }
    KindStats& k = r_.kinds[static_cast<int>(l.job.kind)];
    bool closed = l.job.kind != JobKind::kSession || (!l.job.forgotten && l.job.work_s <= o_.session_max_s);
    (closed ? k.completed : k.timed_out)++;
    Stop(l);
    l.state = State::kDone;
    if (l.job.kind != JobKind::kSession) Returned(l, now);
  }
}

// herd-ctld's rule: a running job of a class with an idle_timeout whose GPUs all report 0 %
// utilization is stopped once they have done so for idle_timeout since first seen idle. The
// researcher reopens the session when they come back to it (their next burst of activity).
void TeamSim::StopIdleSessions(int64_t now) {
  if (o_.regime != Regime::kHerd || o_.idle_timeout_s <= 0) return;
  for (size_t i = 0; i < running_.size();) {
    Live& l = Get(running_[i]);
    if (l.job.kind != JobKind::kSession) {
      ++i;
      continue;
    }
    if (BusyAt(l, now) > 0) {
      l.idle_since = -1;
    } else if (l.idle_since < 0) {
      l.idle_since = now;
    }
    if (l.idle_since < 0 || now - l.idle_since < o_.idle_timeout_s) {
      ++i;
      continue;
    }
    r_.idle_terminations++;
    Stop(l);
    l.state = State::kDone;
    const int64_t at = now - l.start;
    auto next = std::upper_bound(l.job.bursts.begin(), l.job.bursts.end(), at,
                                 [](int64_t v, const Burst& b) { return v < b.begin; });
    if (next == l.job.bursts.end()) continue;
    TeamJob again = l.job;
    const int64_t shift = next->begin;
    again.submit = l.start + shift;
    again.work_s = l.job.work_s - shift;
    again.bursts.assign(next, l.job.bursts.end());
    for (Burst& b : again.bursts) b.begin -= shift, b.end -= shift;
    r_.resubmissions++;
    later_.emplace(again.submit, std::move(again));
  }
}

Status TeamSim::ScheduleHerd(int64_t now) {
  // Evictions carry between cycles as in herd-ctld (ctld/sched/evictions.h): an evicted job is
  // offered again once the job it made room for has started; that job is then served first.
  const size_t under_way = evicted_for_.size();
  sched::ForgetSettled(evicted_for_, room_for_, [&](model::JobId id) { return Get(id).state == State::kPending; });
  if (evicted_for_.size() != under_way) changed_ = true;
  if (snap_.pending.empty()) return Status::Ok();
  // Decide() reads the clock only against min_runtime (eviction) and reserve_after (reservation):
  // with nothing changed and neither threshold crossed since a cycle that decided nothing, this
  // cycle would decide nothing either.
  if (!changed_ && now < wake_) return Status::Ok();
  snap_.now = now;
  snap_.nodes = nodes_;
  SteadyClock::time_point t0 = SteadyClock::now();
  sched::Snapshot marked;
  if (!evicted_for_.empty()) {
    marked = snap_;
    sched::MarkEvictions(evicted_for_, room_for_, marked);
  }
  sched::Decisions d = sched::Decide(evicted_for_.empty() ? snap_ : marked, o_.policy);
  sched::RecordEvictions(d, evicted_for_, room_for_);
  r_.decide_s += std::chrono::duration<double>(SteadyClock::now() - t0).count();
  r_.decide_calls++;
  // Whole GPUs left free by the decision (after its starts, less the room held for jobs whose
  // victims are stopping): in all, on the emptiest node, on the emptiest node not reserved.
  std::vector<int> free_on(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    for (const sched::GpuSlot& g : nodes_[i].gpus) free_on[i] += g.free_milli >= 1000;
  }
  auto take = [&](const model::WorkerPlacement& w) {
    if (auto it = node_index_.find(w.node); it != node_index_.end()) {
      free_on[it->second] -= static_cast<int>(w.gpus.size());
    }
  };
  for (const sched::StartDecision& st : d.starts) {
    for (const auto& w : st.placement) take(w);
  }
  for (const auto& [id, room] : room_for_) {
    if (Get(id).state != State::kPending) continue;
    bool planned_now = false;
    for (const sched::PreemptDecision& p : d.preemptions) planned_now |= p.for_job == id;
    for (const sched::StartDecision& st : d.starts) planned_now |= st.id == id;
    if (planned_now) continue;
    for (const auto& w : room) take(w);
  }
  std::set<std::string> reserved;
  for (const sched::ReserveDecision& rd : d.reservations)
    reserved.insert(rd.nodes.begin(), rd.nodes.end());
  int free_gpus = 0, most_free = 0, most_free_open = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    free_gpus += std::max(0, free_on[i]);
    most_free = std::max(most_free, free_on[i]);
    if (!reserved.count(nodes_[i].name)) most_free_open = std::max(most_free_open, free_on[i]);
  }
  std::map<int, int64_t> held;  // project -> GPUs its running jobs hold
  for (int64_t id : running_) held[w_.researchers[Get(id).job.user].project] += Get(id).job.gpus;
  std::set<model::JobId> counted;
  for (const sched::PreemptDecision& p : d.preemptions) {
    const Live& b = Get(p.for_job);
    std::string cause = std::string(sched::EvictionKindName(p.kind)) + " " +
                        KindName(Get(p.id).job.kind) + "<-" + KindName(b.job.kind);
    if (p.kind == sched::EvictionKind::kReclaim) {
      const int project = w_.researchers[b.job.user].project;
      cause += held[project] + b.job.gpus <= w_.projects[project].deserved_gpus
                   ? " (within deserved)"
                   : " (beyond deserved, below fair share)";
    }
    cause += most_free_open >= b.job.gpus ? "; fits on a free node"
             : most_free >= b.job.gpus    ? "; fits only on a reserved node"
             : free_gpus >= b.job.gpus    ? "; enough free GPUs, fragmented"
                                          : "; not enough free GPUs";
    r_.eviction_causes[cause]++;
    if (counted.insert(p.for_job).second)
      r_.eviction_causes["(beneficiaries) " + std::string(KindName(b.job.kind))]++;
  }
  for (const sched::PreemptDecision& p : d.preemptions) {
    Live& l = Get(p.id);
    if (l.state != State::kRunning) return Internal("herd: evicted job " + std::to_string(p.id) + " is not running");
    const int64_t ran = now - l.start;
    const int64_t kept =
        l.job.kind == JobKind::kTrain && o_.checkpoint_s > 0 ? ran / o_.checkpoint_s * o_.checkpoint_s : 0;
    r_.lost_gpu_hours += static_cast<double>((ran - kept) * l.job.gpus) / kHour;
    r_.preemptions++;
    r_.preemptions_by_kind[sched::EvictionKindName(p.kind)]++;
    r_.evicted[static_cast<int>(l.job.kind)]++;
    Stop(l);
    l.saved += kept;
    l.state = State::kPending;
    l.pending_since = now;
    if (p.kind == sched::EvictionKind::kReclaim) ++l.reclaims;
    pending_gpus_ += l.job.gpus;
    snap_.pending.push_back(PendingView(l));
  }
  std::set<model::JobId> started;
  for (const sched::StartDecision& s : d.starts) {
    Live& l = Get(s.id);
    if (l.state != State::kPending || s.placement.size() != 1) {
      return Internal("herd: start of job " + std::to_string(s.id) + " that is not pending");
    }
    HERD_RETURN_IF_ERROR(Start(l, s.placement[0], now));
    started.insert(s.id);
  }
  std::erase_if(snap_.pending, [&](const sched::PendingJob& p) { return started.count(p.id) > 0; });
  changed_ = !d.starts.empty() || !d.preemptions.empty();
  wake_ = INT64_MAX;
  for (const sched::RunningJob& r : snap_.running) {
    const sched::ClassView& c = snap_.classes.at(r.job_class);
    if (c.preemptible && r.start_time + c.min_runtime_s > now) wake_ = std::min(wake_, r.start_time + c.min_runtime_s);
  }
  for (const sched::PendingJob& p : snap_.pending) {
    const int64_t at = p.pending_since + o_.policy.reserve_after_s;
    if (o_.policy.reserve_after_s >= 0 && at > now) wake_ = std::min(wake_, at);
  }
  return Status::Ok();
}

// Each researcher's block is a cluster of its own: one node holding just their GPUs, cores and
// memory, one queue whose deserved quota and limit are the block. A researcher whose block and
// queue have not changed since their last Decide() would get the same answer, so is skipped.
Status TeamSim::ScheduleStatic(int64_t now) {
  for (size_t u = 0; u < w_.researchers.size(); ++u) {
    if (!dirty_[u] || pending_of_[u].empty()) continue;
    dirty_[u] = false;
    const Researcher& r = w_.researchers[u];
    sched::Snapshot s;
    s.now = now;
    s.classes = snap_.classes;
    const int64_t block = 1000 * int64_t{r.gpus};
    s.queues.push_back({r.name, "", {block, 0, 0}, {block, -1, -1}, 1, true});
    const sched::NodeView& all = nodes_[static_cast<size_t>(r.node)];
    sched::NodeView v = all;
    v.gpus.clear();
    for (const sched::GpuSlot& g : all.gpus) {
      if (g.index >= r.first_gpu && g.index < r.first_gpu + r.gpus) v.gpus.push_back(g);
    }
    for (auto& [numa, cores] : v.free_cores_by_numa) {
      std::erase_if(cores, [&](int c) { return c < r.first_core || c >= r.first_core + r.cores; });
    }
    std::erase_if(v.free_cores_by_numa, [](const auto& e) { return e.second.empty(); });
    v.total_cores = r.cores;
    v.memory_mib = r.memory_mib;
    v.free_memory_mib = r.memory_mib - user_memory_[u];
    s.nodes.push_back(std::move(v));
    for (int64_t id : running_) {
      if (Get(id).job.user == static_cast<int>(u)) s.running.push_back(RunningView(Get(id)));
    }
    for (int64_t id : pending_of_[u]) s.pending.push_back(PendingView(Get(id)));
    SteadyClock::time_point t0 = SteadyClock::now();
    sched::Decisions d = sched::Decide(s, o_.policy);
    r_.decide_s += std::chrono::duration<double>(SteadyClock::now() - t0).count();
    r_.decide_calls++;
    if (!d.preemptions.empty()) return Internal("static: Decide() evicted a job of " + r.name);
    for (const sched::StartDecision& st : d.starts) {
      Live& l = Get(st.id);
      if (l.state != State::kPending || l.job.user != static_cast<int>(u) || st.placement.size() != 1) {
        return Internal("static: start of job " + std::to_string(st.id) + " that is not " + r.name + "'s");
      }
      HERD_RETURN_IF_ERROR(Start(l, st.placement[0], now));
      std::erase(pending_of_[u], st.id);
    }
  }
  return Status::Ok();
}

void TeamSim::Sample(int64_t now) {
  const size_t h = static_cast<size_t>(now / kHour);
  if (h >= r_.hours.size()) return;
  const double gpus = static_cast<double>(w_.Gpus());
  const double dt = static_cast<double>(o_.cycle_s) / kHour;  // this cycle's share of the hour
  double held = 0, busy = 0;
  for (int64_t id : running_) {
    const Live& l = Get(id);
    const double b = BusyAt(l, now);
    held += l.job.gpus;
    busy += l.job.gpus * b;
    KindStats& k = r_.kinds[static_cast<int>(l.job.kind)];
    k.gpu_hours += l.job.gpus * dt;
    k.busy_gpu_hours += l.job.gpus * b * dt;
  }
  HourSample& s = r_.hours[h];
  s.allocated_pct += 100 * held / gpus * dt;
  s.utilized_pct += 100 * busy / gpus * dt;
  s.pending_gpus += static_cast<double>(pending_gpus_) * dt;
}

Result<UtilizationResult> TeamSim::Run() {
  SteadyClock::time_point t0 = SteadyClock::now();
  if (o_.cycle_s <= 0 || kHour % o_.cycle_s != 0) return Invalid("cycle_s must divide an hour");
  nodes_ = w_.nodes;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    node_index_[nodes_[i].name] = i;
    std::map<int, int>& numa = numa_of_core_.emplace_back();
    for (const auto& [id, cores] : nodes_[i].free_cores_by_numa) {
      for (int c : cores) numa[c] = id;
    }
  }
  const size_t team = w_.researchers.size();
  user_memory_.assign(team, 0);
  dirty_.assign(team, true);
  pending_of_.assign(team, {});
  next_experiment_.assign(team, 0);
  if (w_.params.demand == Demand::kClosed) {
    if (w_.experiments.size() != team)
      return Invalid("closed demand needs experiments per researcher");
    for (size_t u = 0; u < team; ++u) NextExperiment(static_cast<int>(u), 0);
  }
  const bool herd = o_.regime == Regime::kHerd;
  snap_.classes[kInteractive] = {kInteractive, 100, false, true, 0};
  snap_.classes[kTrain] = {kTrain, 50, herd, false, herd ? o_.min_runtime_s : 0};
  if (herd) {
    for (const Project& p : w_.projects) {
      snap_.queues.push_back({p.name, "", {1000 * p.deserved_gpus, 0, 0}, {-1, -1, -1}, 1, true});
    }
  }
  r_.regime = o_.regime;
  const int64_t end = w_.DurationS();
  r_.hours.resize(static_cast<size_t>(end / kHour));
  size_t next = 0;
  for (int64_t now = 0; now < end; now += o_.cycle_s) {
    while (next < w_.jobs.size() && w_.jobs[next].submit <= now) Submit(w_.jobs[next++]);
    while (!later_.empty() && later_.begin()->first <= now) {
      Submit(later_.begin()->second);
      later_.erase(later_.begin());
    }
    EndRunning(now);
    StopIdleSessions(now);
    HERD_RETURN_IF_ERROR(herd ? ScheduleHerd(now) : ScheduleStatic(now));
    Sample(now);
  }
  for (const Live& l : jobs_) {  // never started: the wait so far, a lower bound
    if (l.first_start < 0) {
      r_.kinds[static_cast<int>(l.job.kind)].waits_s.push_back(static_cast<double>(end - l.job.submit));
    }
  }
  for (ExperimentRecord& e : r_.experiments) {
    if (auto it = think_of_.find(e.experiment); it != think_of_.end()) e.think_s = it->second;
  }
  r_.wall_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  return std::move(r_);
}

}  // namespace

const char* RegimeName(Regime r) { return r == Regime::kStatic ? "static" : "herd"; }

double UtilizationResult::AllocatedPct() const {
  double sum = 0;
  for (const HourSample& h : hours) sum += h.allocated_pct;
  return hours.empty() ? 0 : sum / static_cast<double>(hours.size());
}

double UtilizationResult::UtilizedPct() const {
  double sum = 0;
  for (const HourSample& h : hours) sum += h.utilized_pct;
  return hours.empty() ? 0 : sum / static_cast<double>(hours.size());
}

int64_t UtilizationResult::ExperimentsReturned() const {
  return std::count_if(experiments.begin(), experiments.end(),
                       [](const ExperimentRecord& e) { return e.returned >= 0; });
}

double UtilizationResult::WaitPercentile(JobKind kind, double pct) const {
  std::vector<double> w = kinds[static_cast<int>(kind)].waits_s;
  if (w.empty()) return 0;
  std::sort(w.begin(), w.end());
  size_t rank = static_cast<size_t>(std::ceil(pct / 100 * static_cast<double>(w.size())));
  return w[std::clamp<size_t>(rank, 1, w.size()) - 1];
}

Result<UtilizationResult> SimulateTeam(const TeamWorkload& workload, const UtilizationOptions& options) {
  return TeamSim(workload, options).Run();
}

}  // namespace herd::sim
