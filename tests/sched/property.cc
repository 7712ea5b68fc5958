// The property-based driver of the scheduler core: case generator, multi-cycle driver that applies
// decisions as herd-ctld does (ctld/schedule.cc), invariant checkers and shrinker. See property.h.
#include "tests/sched/property.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "common/model/units.h"
#include "ctld/sched/evictions.h"
#include "ctld/sched/scenario.h"
#include "ctld/sched/snapshot_builder.h"

namespace herd::sched::testing {
namespace {

// A small deterministic generator (the same numbers on every platform and library).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL) {}
  uint64_t Next() {  // splitmix64
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  int64_t Int(int64_t lo, int64_t hi) {  // inclusive
    return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool Chance(double p) { return static_cast<double>(Next() % 1000000) < p * 1e6; }
  template <typename T>
  T Pick(std::initializer_list<T> values) {
    return *(values.begin() + Int(0, static_cast<int64_t>(values.size()) - 1));
  }

 private:
  uint64_t s_;
};

int64_t Get(const model::Resources& r, int c) {
  return c == 0 ? r.gpu_milli : (c == 1 ? r.cpus : r.memory_mib);
}

model::Resources TotalOf(const Request& r) {
  return model::Resources{r.gpu_milli, r.cpus, r.memory_mib} * r.workers;
}

// GPU memory a worker with a share of `milli` takes from `slot` (as herd-ctld and the core count it).
int64_t GpuMemoryTaken(const GpuSlot& slot, int64_t milli, int64_t requested_mib) {
  if (milli >= 1000) return slot.memory_mib;
  return requested_mib > 0 ? requested_mib : slot.memory_mib * milli / 1000;
}

// ---------------------------------------------------------------------------------------------
// Generator

// What is still free on a node while the generator places the first cycle's running jobs.
struct FreeNode {
  std::vector<int64_t> gpu_milli, gpu_mem;
  int64_t cores = 0, memory = 0;
};

void RandomShape(Rng& r, CaseJob& j) {
  const int kind = static_cast<int>(r.Int(0, 99));
  if (kind < 15) {  // CPU-only
    j.gpu_milli = 0;
    j.cpus = r.Pick<int64_t>({1, 2, 4, 8, 16});
    j.memory_mib = 1024 * r.Pick<int64_t>({1, 4, 16});
  } else if (kind < 30) {  // a share of one GPU
    j.gpu_milli = r.Pick<int64_t>({250, 500});
    j.cpus = r.Pick<int64_t>({1, 2, 4});
    j.memory_mib = 1024 * r.Pick<int64_t>({1, 4, 8});
  } else {
    j.gpu_milli = 1000 * r.Pick<int64_t>({1, 1, 1, 2, 2, 4, 8});
    j.cpus = r.Pick<int64_t>({1, 2, 4, 8});
    j.memory_mib = 1024 * r.Pick<int64_t>({4, 16, 32});
    if (r.Chance(0.15)) j.workers = static_cast<int>(r.Int(2, 3));
  }
  const int cls = static_cast<int>(r.Int(0, 99));
  j.job_class = cls < 80 ? "train" : (cls < 90 ? "interactive" : "inference");
}

// First fit of every worker of `j` on the up nodes (from a random one); false when it does not fit.
bool PlaceRunning(Rng& r, const Case& c, std::vector<FreeNode>& free, CaseJob& j) {
  std::vector<FreeNode> trial = free;
  const size_t from = static_cast<size_t>(r.Int(0, static_cast<int64_t>(c.nodes.size()) - 1));
  for (int w = 0; w < j.workers; ++w) {
    bool placed = false;
    for (size_t k = 0; k < c.nodes.size() && !placed; ++k) {
      const size_t i = (from + k) % c.nodes.size();
      const CaseNode& n = c.nodes[i];
      FreeNode& f = trial[i];
      if (n.down || f.cores < j.cpus || f.memory < j.memory_mib) continue;
      std::vector<int> gpus;
      if (j.gpu_milli >= 1000) {
        for (int g = 0; g < n.gpus && static_cast<int64_t>(gpus.size()) < j.gpu_milli / 1000; ++g) {
          if (f.gpu_milli[g] == 1000) gpus.push_back(g);
        }
        if (static_cast<int64_t>(gpus.size()) < j.gpu_milli / 1000) continue;
        for (int g : gpus) f.gpu_milli[g] = 0, f.gpu_mem[g] = 0;
      } else if (j.gpu_milli > 0) {
        const int64_t mem = n.gpu_memory_mib * j.gpu_milli / 1000;
        for (int g = 0; g < n.gpus && gpus.empty(); ++g) {
          if (f.gpu_milli[g] >= j.gpu_milli && f.gpu_mem[g] >= mem) gpus.push_back(g);
        }
        if (gpus.empty()) continue;
        f.gpu_milli[gpus[0]] -= j.gpu_milli;
        f.gpu_mem[gpus[0]] -= mem;
      }
      f.cores -= j.cpus;
      f.memory -= j.memory_mib;
      j.on.push_back({n.name, gpus});
      placed = true;
    }
    if (!placed) {
      j.on.clear();
      return false;
    }
  }
  free = trial;
  return true;
}

// ---------------------------------------------------------------------------------------------
// The driver's world: every job of the case and what herd-ctld would know of it.

enum class St { kFuture, kPending, kRunning, kStopping, kDone };

struct Rt {
  St st = St::kFuture;
  PendingJob pending;    // kPending (and the request of every job)
  RunningJob running;    // kRunning, kStopping
  int release_left = 0;  // kStopping: cycles before its resources are free
  int64_t run_s = -1;
  int arrive_cycle = 0;
  int evictions = 0;
  int started_cycle = 0;  // the cycle that last started it; 0 running from the first
  bool started_above = false;  // its project was above its fair share with that cycle's starts
  // The cycle whose decisions committed its last start: the cycle that started it, or for a job
  // started in room made for it, the cycle that evicted for it.
  int committed_cycle = 0;
  int evicted_for_cycle = 0;  // the last cycle that evicted a job for it; 0 none since it started
};

struct QueueInfo {
  const QueueView* view = nullptr;
  std::vector<std::string> path;  // the queue, then its ancestors
};

// An eviction waiting for its beneficiary to start.
struct Owed {
  model::JobId victim = 0, beneficiary = 0;
  int cycle = 0;           // the cycle that decided it
  int released_cycle = 0;  // the first cycle whose snapshot no longer holds the victim; 0 not yet
  std::set<std::string> nodes;  // the victim's nodes
};

class Driver {
 public:
  Driver(const Case& c, const DecideFn& decide) : c_(c), decide_(decide) {}
  CaseResult Run();

 private:
  bool Init();
  Snapshot Build(int cycle);
  void CheckCycle(const Snapshot& snap, const Decisions& d, int cycle);
  void CheckStarvation(const Snapshot& snap, const Decisions& d, int cycle);
  // GPUs of each type `placement` holds (GpuSlot::model), as the type's quotas count them.
  std::map<std::string, int64_t> TypesOf(const Snapshot& snap,
                                         const std::vector<model::WorkerPlacement>& placement) const;
  bool typed_ = false;  // some queue has a quota per GPU type
  bool OwedQuota(const Snapshot& snap, const PendingJob& j, const std::map<std::string, model::Resources>& alloc,
                 const std::map<std::string, model::Resources>& fair) const;
  void Apply(const Decisions& d, int cycle);
  // Whether `queue`'s fair share is lower on some resource in cycle `now` than in cycle `then`.
  bool ShareFell(const std::string& queue, int then, int now) {
    const model::Resources a = fair_[then][queue], b = fair_[now][queue];
    return b.gpu_milli < a.gpu_milli || b.cpus < a.cpus || b.memory_mib < a.memory_mib;
  }
  void Advance(int cycle);
  void Fail(const std::string& inv, int cycle, const std::string& msg, const std::string& expect);
  const ClassView& ClassOf(const std::string& name) const {
    auto it = sc_.snapshot.classes.find(name);
    return it == sc_.snapshot.classes.end() ? default_class_ : it->second;
  }
  std::map<std::string, model::Resources> Allocated(const Snapshot& snap, bool for_limits = false,
                                                    bool firm = false) const;
  // Jobs of this class count against the deserved quota of within-quota classes.
  bool Firm(const std::string& job_class) const {
    const ClassView& c = ClassOf(job_class);
    return c.within_quota_only || !c.preemptible;
  }

  const Case& c_;
  const DecideFn& decide_;
  Scenario sc_;
  std::vector<NodeView> base_;  // every node with nothing allocated
  std::map<model::JobId, Rt> jobs_;
  EvictedFor preempted_for_;  // victim -> beneficiary, as herd-ctld keeps them
  RoomFor room_for_;          // beneficiary -> where it is planned
  std::map<std::string, QueueInfo> queues_;
  std::map<model::JobId, const CaseJob*> spec_;
  std::vector<Owed> owed_;
  // Job -> cycles owed its quota without starting, and its reason in the first of them.
  std::map<model::JobId, std::pair<int, std::string>> starving_;
  // Reclaim directions between two projects since either last changed (a job ended or arrived).
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> reclaims_;
  ClassView default_class_;
  int64_t now_ = 0;
  int last_finish_ = 0;  // the last cycle after which a running job ended
  // Project -> the last cycle it started a job of a within-quota class: from then its preemptible
  // jobs beyond its deserved quota borrow (herd.toml(5) within_quota_only) and may be reclaimed.
  std::map<std::string, int> firm_start_;
  // Cycle -> pending jobs of its snapshot entitled to reclaim then: within their project's fair
  // share (that cycle's, with that cycle's starts) or deserved quota, not started.
  std::map<int, std::set<model::JobId>> entitled_;
  std::map<int, std::map<std::string, model::Resources>> fair_;  // cycle -> queue -> fair share
  std::set<model::JobId> above_;  // this cycle's starts whose project is above its fair share with them
  CaseResult out_;
  std::string expect_;
  std::ostringstream trace_;
};

std::string Where(const std::vector<model::WorkerPlacement>& p) {
  std::string out;
  for (const auto& w : p) {
    out += (out.empty() ? "" : "+") + w.node;
    if (!w.gpus.empty()) {
      out += "[";
      for (size_t i = 0; i < w.gpus.size(); ++i) out += (i ? "," : "") + std::to_string(w.gpus[i]);
      out += "]";
    }
  }
  return out;
}

std::string ReasonOf(const Decisions& d, model::JobId id) {
  auto it = d.pending_reasons.find(id);
  return it == d.pending_reasons.end() ? "(none: hidden behind its victims or not pending)"
                                       : model::ReasonText(it->second);
}

std::string JobLine(const CaseJob& j) {
  std::ostringstream o;
  o << j.id << " queue=" << j.queue << " class=" << j.job_class;
  if (j.gpu_milli > 0) o << " gpu=" << model::FormatGpuMilli(j.gpu_milli);
  o << " cpus=" << j.cpus << " mem=" << model::FormatSizeMiB(j.memory_mib);
  if (j.workers != 1) o << " workers=" << j.workers;
  if (j.time_limit_s > 0) o << " time=" << j.time_limit_s;  // a running job keeps it when requeued
  for (size_t i = 0; i < j.gpu_models.size() && !j.running; ++i) {
    o << (i == 0 ? " model=" : ",") << j.gpu_models[i];
  }
  return o.str();
}

std::string ResourcesText(const model::Resources& r) {
  std::string out;
  if (r.gpu_milli != 0) out += "gpu:" + (r.gpu_milli < 0 ? "-1" : model::FormatGpuMilli(r.gpu_milli));
  if (r.cpus != 0) out += std::string(out.empty() ? "" : ",") + "cpu:" + std::to_string(r.cpus);
  if (r.memory_mib != 0) {
    out += std::string(out.empty() ? "" : ",") + "mem:" +
           (r.memory_mib < 0 ? "-1" : model::FormatSizeMiB(r.memory_mib));
  }
  return out;
}

bool Driver::Init() {
  sc_ = ParseScenario(ScenarioText(c_));
  if (!sc_.errors.empty()) return false;
  default_class_.name = "default";
  now_ = sc_.snapshot.now;
  for (const NodeView& n : sc_.snapshot.nodes) {
    NodeView b = n;
    for (GpuSlot& g : b.gpus) g.free_milli = 1000, g.free_memory_mib = g.memory_mib;
    b.free_cores_by_numa.clear();
    for (const auto& [core, numa] : sc_.core_numa[n.name]) b.free_cores_by_numa[numa].push_back(core);
    b.free_memory_mib = b.memory_mib;
    base_.push_back(b);
  }
  for (const NodeView& n : sc_.snapshot.nodes) {
    if (n.free_memory_mib < 0) return false;
    for (const GpuSlot& g : n.gpus) {
      if (g.free_milli < 0 || g.free_memory_mib < 0) return false;
    }
  }
  // The promise needs room for it: the deserved quotas of the root's children fit the up nodes.
  model::Resources capacity, promised;
  for (const NodeView& n : sc_.snapshot.nodes) {
    if (n.schedulable) capacity += {1000 * static_cast<int64_t>(n.gpus.size()), n.total_cores, n.memory_mib};
  }
  for (const QueueView& q : sc_.snapshot.queues) {
    if (q.parent.empty()) promised += q.deserved;
  }
  if (promised.gpu_milli > capacity.gpu_milli || promised.cpus > capacity.cpus) return false;
  for (const QueueView& q : sc_.snapshot.queues) typed_ = typed_ || !q.by_type.empty();
  std::map<std::string, const QueueView*> by_name;
  for (const QueueView& q : sc_.snapshot.queues) by_name[q.name] = &q;
  for (const QueueView& q : sc_.snapshot.queues) {
    QueueInfo& info = queues_[q.name];
    info.view = &q;
    for (const QueueView* p = &q; p != nullptr && info.path.size() < 16;
         p = by_name.count(p->parent) ? by_name[p->parent] : nullptr) {
      info.path.push_back(p->name);
    }
  }
  for (const CaseJob& j : c_.jobs) spec_[j.id] = &j;
  for (const RunningJob& r : sc_.snapshot.running) {
    Rt& rt = jobs_[r.id];
    rt.st = St::kRunning;
    rt.running = r;
    rt.pending = {r.id, r.queue, r.job_class, r.request, r.submit_time, r.start_time};
  }
  for (const PendingJob& p : sc_.snapshot.pending) {
    Rt& rt = jobs_[p.id];
    rt.st = St::kPending;
    rt.pending = p;
  }
  for (const CaseJob& j : c_.jobs) {
    Rt& rt = jobs_[j.id];
    rt.pending.request.time_limit_s = rt.running.request.time_limit_s = j.time_limit_s;
    rt.run_s = j.run_s;
    rt.arrive_cycle = j.running ? 0 : j.arrive_cycle;
    if (rt.arrive_cycle > 0) {
      rt.st = St::kFuture;
      rt.pending = {j.id, j.queue, j.job_class,
                    {j.workers, j.gpu_milli, 0, j.cpus, j.memory_mib, false, j.time_limit_s}, 0, 0};
      rt.pending.gpu_models = j.gpu_models;  // as its `pending` line in the trace names them
    }
  }
  return true;
}

// The snapshot herd-ctld's BuildSnapshot() gives: every running job (a victim still stopping
// included) and every pending job, marked for the evictions under way by ctld/sched/evictions.h's
// rule, the one herd-ctld (ctld/schedule.cc) and the scenario runner apply.
Snapshot Driver::Build(int) {
  ForgetSettled(preempted_for_, room_for_, [&](model::JobId b) {
    auto it = jobs_.find(b);
    return it != jobs_.end() && it->second.st == St::kPending;
  });
  Snapshot s;
  s.now = now_;
  s.nodes = base_;
  s.queues = sc_.snapshot.queues;
  s.classes = sc_.snapshot.classes;
  const NodeIndex index = IndexOf(s.nodes);
  for (const auto& [id, rt] : jobs_) {
    if (rt.st == St::kPending) {
      s.pending.push_back(rt.pending);
    } else if (rt.st == St::kRunning || rt.st == St::kStopping) {
      AddRunning(s, index, rt.running);
    }
  }
  MarkEvictions(preempted_for_, room_for_, s);
  return s;
}

void Driver::Fail(const std::string& inv, int cycle, const std::string& msg, const std::string& expect) {
  if (!out_.violation.invariant.empty()) return;
  out_.violation = {inv, cycle, msg};
  expect_ = expect;
}

// What each queue holds, as herd.toml(5) counts it: for quotas and fair shares (`for_limits`
// false) a victim still stopping no longer counts in its project, and the job it was evicted for
// counts as if started; against limits (a hard cap on what a project's jobs hold) the victim counts
// in its project until it has stopped, and the job it was evicted for counts too. `firm`: only the
// jobs of classes that count against a within-quota class's quota (within-quota or not
// preemptible).
std::map<std::string, model::Resources> Driver::Allocated(const Snapshot& snap, bool for_limits,
                                                          bool firm) const {
  std::map<std::string, model::Resources> alloc;
  auto charge = [&](const std::string& queue, const std::string& job_class,
                    const model::Resources& r) {
    auto q = queues_.find(queue);
    if (q == queues_.end() || (firm && !Firm(job_class))) return;
    for (const std::string& a : q->second.path) alloc[a] += r;
  };
  for (const RunningJob& r : snap.running) {
    if (r.evicted_for == 0 || for_limits) charge(r.queue, r.job_class, TotalOf(r.request));
  }
  for (const PendingJob& p : snap.pending) {
    if (p.victims_stopping > 0) charge(p.queue, p.job_class, TotalOf(p.request));
  }
  return alloc;
}

bool WithinDeserved(const QueueView& leaf, const model::Resources& have, const model::Resources& need);

// The invariants one cycle's decisions must keep on their own snapshot.
void Driver::CheckCycle(const Snapshot& snap, const Decisions& d, int cycle) {
  std::map<model::JobId, const PendingJob*> pending;
  for (const PendingJob& p : snap.pending) pending[p.id] = &p;
  // The starts of a project above its fair share (this cycle's, Decisions::shares) once they all
  // have started: those the churn invariant judges.
  {
    std::map<std::string, model::Resources> with = Allocated(snap);
    for (const StartDecision& st : d.starts) {
      if (auto p = pending.find(st.id); p != pending.end()) with[p->second->queue] += TotalOf(p->second->request);
    }
    above_.clear();
    for (const QueueShare& q : d.shares) fair_[cycle][q.name] = q.fair_share;
    std::set<model::JobId> started;
    for (const StartDecision& st : d.starts) started.insert(st.id);
    for (const PendingJob& p : snap.pending) {
      if (started.count(p.id) || p.victims_stopping > 0) continue;
      auto q = queues_.find(p.queue);
      if (q == queues_.end()) continue;
      const model::Resources have = with[p.queue], need = TotalOf(p.request), a = have + need;
      bool within_fair = false;
      for (const QueueShare& s : d.shares) {
        if (s.name == p.queue) {
          within_fair = a.gpu_milli <= s.fair_share.gpu_milli && a.cpus <= s.fair_share.cpus &&
                        a.memory_mib <= s.fair_share.memory_mib;
        }
      }
      const bool within_deserved = WithinDeserved(*q->second.view, have, need);
      // A job reclaimed before waits out reclaim_backoff before it runs beyond its deserved quota
      // (herd.toml(5)): until then it is entitled to nothing beyond it.
      const bool backing_off =
          !within_deserved && snap.now < p.pending_since + ReclaimBackoff(Policy(), p.reclaims);
      if ((within_fair || within_deserved) && !backing_off) entitled_[cycle].insert(p.id);
    }
    for (const StartDecision& st : d.starts) {
      auto p = pending.find(st.id);
      if (p == pending.end()) continue;
      for (const QueueShare& q : d.shares) {
        if (q.name != p->second->queue) continue;
        const model::Resources& a = with[q.name];
        if (a.gpu_milli > q.fair_share.gpu_milli || a.cpus > q.fair_share.cpus ||
            a.memory_mib > q.fair_share.memory_mib) {
          above_.insert(st.id);
        }
      }
    }
  }
  std::map<model::JobId, const RunningJob*> running;
  for (const RunningJob& r : snap.running) running[r.id] = &r;
  std::map<std::string, NodeView> nodes;
  for (const NodeView& n : snap.nodes) nodes[n.name] = n;
  std::set<model::JobId> seen;
  const std::string at = " (cycle " + std::to_string(cycle) + ")";
  for (const StartDecision& st : d.starts) {
    const std::string job = "job " + std::to_string(st.id);
    auto p = pending.find(st.id);
    if (p == pending.end() || !seen.insert(st.id).second) {
      Fail("decision", cycle, job + " is started but is not a pending job of the snapshot (or twice)" + at,
           "expect nostart " + std::to_string(st.id));
      continue;
    }
    const Request& req = p->second->request;
    if (static_cast<int>(st.placement.size()) != req.workers) {
      Fail("gang", cycle, job + " has " + std::to_string(req.workers) + " workers but starts " +
           std::to_string(st.placement.size()) + " on " + Where(st.placement) + at,
           "expect nostart " + std::to_string(st.id));
      continue;
    }
    for (const auto& w : st.placement) {
      const size_t gpus = req.gpu_milli == 0 ? 0 : req.gpu_milli < 1000 ? 1 : static_cast<size_t>(req.gpu_milli / 1000);
      const int64_t each = req.gpu_milli == 0 ? 0 : std::min<int64_t>(req.gpu_milli, 1000);
      std::set<int> distinct(w.gpus.begin(), w.gpus.end());
      if (w.gpus.size() != gpus || distinct.size() != gpus || (gpus > 0 && w.gpu_milli_each != each) ||
          static_cast<int64_t>(w.cores.size()) != req.cpus || w.memory_mib != req.memory_mib) {
        Fail("gang", cycle, job + "'s worker on " + w.node + " does not hold its whole request (" +
             std::to_string(w.gpus.size()) + " GPUs x" + std::to_string(w.gpu_milli_each) + ", " +
             std::to_string(w.cores.size()) + " cores, " + std::to_string(w.memory_mib) + " MiB)" + at,
             "expect nostart " + std::to_string(st.id));
        continue;
      }
      auto n = nodes.find(w.node);
      if (n == nodes.end() || !n->second.schedulable) {
        Fail("overcommit", cycle, job + " starts on unknown or down node " + w.node + at,
             "expect nostart " + std::to_string(st.id));
        continue;
      }
      NodeView& v = n->second;
      for (int g : w.gpus) {
        if (g < 0 || g >= static_cast<int>(v.gpus.size())) {
          Fail("overcommit", cycle, job + " uses GPU " + std::to_string(g) + " that " + w.node + " lacks" + at,
               "expect nostart " + std::to_string(st.id));
          continue;
        }
        GpuSlot& slot = v.gpus[static_cast<size_t>(g)];
        slot.free_milli -= w.gpu_milli_each;
        slot.free_memory_mib -= GpuMemoryTaken(slot, w.gpu_milli_each, req.gpu_memory_mib);
        if (slot.free_milli < 0 || slot.free_memory_mib < 0) {
          Fail("overcommit", cycle, job + " over-commits GPU " + std::to_string(g) + " of " + w.node + at,
               "expect nostart " + std::to_string(st.id));
        }
      }
      for (int core : w.cores) {
        bool found = false;
        for (auto& [numa, cores] : v.free_cores_by_numa) {
          auto it = std::find(cores.begin(), cores.end(), core);
          if (it != cores.end()) cores.erase(it), found = true;
        }
        if (!found) {
          Fail("overcommit", cycle, job + " uses core " + std::to_string(core) + " of " + w.node +
               " that is not free" + at, "expect nostart " + std::to_string(st.id));
        }
      }
      v.free_memory_mib -= w.memory_mib;
      if (v.free_memory_mib < 0) {
        Fail("overcommit", cycle, job + " over-commits the memory of " + w.node + at,
             "expect nostart " + std::to_string(st.id));
      }
    }
  }
  seen.clear();
  for (const PreemptDecision& p : d.preemptions) {
    const std::string job = "job " + std::to_string(p.id);
    auto r = running.find(p.id);
    if (r == running.end() || !seen.insert(p.id).second) {
      Fail("decision", cycle, job + " is evicted but is not a running job of the snapshot (or twice)" + at,
           "expect nopreempt " + std::to_string(p.id));
      continue;
    }
    // herd.toml(5): never a job of a non-preemptible class, a suspended job, a job younger than its
    // project's min_runtime (where the project sets one) or else its class's, nor a job already
    // being stopped for another.
    const ClassView& cls = ClassOf(r->second->job_class);
    const int64_t age = snap.now - r->second->start_time;
    auto q = queues_.find(r->second->queue);
    const int64_t queue_min = q == queues_.end() ? -1 : q->second.view->min_runtime_s;
    const int64_t min_runtime = queue_min >= 0 ? queue_min : cls.min_runtime_s;
    if (!cls.preemptible || r->second->suspended || age < min_runtime || r->second->evicted_for != 0) {
      Fail("protected", cycle, job + " of class " + cls.name + " (" +
           (cls.preemptible ? "" : "non-preemptible, ") + "running " + std::to_string(age) +
           " s, min_runtime " + std::to_string(min_runtime) + " s" +
           (r->second->evicted_for != 0 ? ", already stopping for job " + std::to_string(r->second->evicted_for)
                                        : "") +
           ") is evicted (" + EvictionKindName(p.kind) + " for job " + std::to_string(p.for_job) + ")" + at,
           "expect nopreempt " + std::to_string(p.id));
    }
  }
  // Limits and within-quota classes, counting the cycle's starts and not its victims.
  // This cycle's victims leave their projects' quota (a start may be decided after them), not their
  // limits (they hold their resources until they have stopped). The jobs they are evicted for are
  // not counted: Decide() evicts after its starts, and a start is judged by what came before it.
  // A within-quota class is judged by what the project's firm jobs (within-quota or not
  // preemptible) hold: its preemptible jobs beyond the quota borrow and may be reclaimed.
  std::map<std::string, model::Resources> after = Allocated(snap, false, true),
                                          held = Allocated(snap, true);
  // Per GPU type, against limits of a type: every running job (victims still stopping too) and
  // the room planned for the jobs they stop for.
  std::map<std::string, std::map<std::string, int64_t>> typed_held;  // queue -> type -> GPUs
  auto hold = [&](const std::string& queue, const std::vector<model::WorkerPlacement>& on) {
    auto q = queues_.find(queue);
    if (!typed_ || q == queues_.end()) return;
    for (const auto& [type, milli] : TypesOf(snap, on)) {
      for (const std::string& a : q->second.path) typed_held[a][type] += milli;
    }
  };
  for (const RunningJob& r : snap.running) hold(r.queue, r.placement);
  for (const PendingJob& p : snap.pending) {
    if (p.victims_stopping > 0) hold(p.queue, p.room_on);
  }
  for (const PreemptDecision& p : d.preemptions) {
    auto r = running.find(p.id);
    auto q = r == running.end() ? queues_.end() : queues_.find(r->second->queue);
    if (q == queues_.end() || r->second->evicted_for != 0 || !Firm(r->second->job_class)) continue;
    for (const std::string& a : q->second.path) after[a] -= TotalOf(r->second->request);
  }
  // In the order the core started them: a within-quota job is judged by what ran before it.
  for (const StartDecision& st : d.starts) {
    auto p = pending.find(st.id);
    auto q = p == pending.end() ? queues_.end() : queues_.find(p->second->queue);
    if (q == queues_.end()) continue;
    const model::Resources need = TotalOf(p->second->request);
    for (const std::string& a : q->second.path) held[a] += need;
    hold(p->second->queue, st.placement);
    for (const std::string& a : q->second.path) {
      for (const auto& [type, t] : queues_.at(a).view->by_type) {
        if (t.limit_milli >= 0 && typed_held[a][type] > t.limit_milli &&
            TypesOf(snap, st.placement).count(type)) {
          Fail("limit", cycle,
               "job " + std::to_string(st.id) + " starts and takes " + a + " to " +
                   model::FormatGpuMilli(typed_held[a][type]) + " " + type +
                   " GPUs (victims still stopping included), above its limit of " +
                   model::FormatGpuMilli(t.limit_milli) + at,
               "expect nostart " + std::to_string(st.id));
        }
      }
    }
    if (Firm(p->second->job_class)) {
      for (const std::string& a : q->second.path) after[a] += need;
    }
    for (const std::string& a : q->second.path) {
      const QueueView& v = *queues_.at(a).view;
      for (int c = 0; c < 3; ++c) {
        if (Get(v.limit, c) >= 0 && Get(need, c) > 0 && Get(held[a], c) > Get(v.limit, c)) {
          Fail("limit", cycle, "job " + std::to_string(st.id) + " starts and takes " + a + " to " +
               ResourcesText(held[a]) + " (victims still stopping included), above its limit " +
               ResourcesText(v.limit) + at,
               "expect nostart " + std::to_string(st.id));
        }
      }
    }
    const QueueView& leaf = *q->second.view;
    if (ClassOf(p->second->job_class).within_quota_only) {
      for (int c = 0; c < 3; ++c) {
        const int64_t deserved = Get(leaf.deserved, c), need_c = Get(need, c);
        if (need_c <= 0 || (c > 0 && deserved <= 0)) continue;
        if (Get(after[leaf.name], c) > deserved) {
          Fail("quota", cycle,
               "within-quota job " + std::to_string(st.id) + " starts and takes " + leaf.name +
                   "'s firm jobs to " + ResourcesText(after[leaf.name]) + ", above its deserved " +
                   ResourcesText(leaf.deserved) + at,
               "expect nostart " + std::to_string(st.id));
        }
      }
    }
  }
}

// Starvation, as herd.toml(5) QUOTA GUARANTEES states the promise. In each project, the job owed
// is its pending job that comes first in the project's line (highest class priority, then oldest)
// among those within what is left of its deserved quota: the project's running jobs (and what
// victims still stopping hold for its jobs) and the job together use no more than deserved of GPUs,
// and of cores and memory where deserved names them (a job that needs nothing the quota names is
// within none). It is owed unless an exception of the man page holds:
// * the project or a department above it would go above a limit with it, or another job of the
//   project holds a reservation (waited past reserve_after);
// * it fits on no up node even once every job that may be evicted is gone. A job may be evicted
//   when it is preemptible, not suspended, past its project's min_runtime (where set) or else its
//   class's, not already stopping, and of another project P that holds more than its deserved
//   quota and is, with the jobs already taken from it gone, above its fair share (this cycle's,
//   Decisions::shares) on a resource the job holds, keeping at least its fair share less its
//   smallest job on every resource of the job it held above its fair share (jobs are taken from
//   one node's largest first, at most the policy's max_preemptions of them: a job that needs more
//   victims in one cycle than the cycle may evict is never given them, herd.toml(5)'s last
//   exception);
// * the job is a gang or asks for a GPU model: the checker's fit test places one worker on one
//   node, so it does not judge these (the placer's multi-node search would be re-implemented);
// * the job is being served: jobs were evicted for it this cycle or are still stopping for it, or
//   room was made for it.
// The owed job must start within kStarveCycles cycles; the count restarts when the project starts a
// job or another job becomes the one owed.
bool Driver::OwedQuota(const Snapshot& snap, const PendingJob& j,
                       const std::map<std::string, model::Resources>& alloc,
                       const std::map<std::string, model::Resources>& fair) const {
  if (j.request.workers != 1 || !j.gpu_models.empty() || typed_) return false;
  auto q = queues_.find(j.queue);
  if (q == queues_.end() || !q->second.view->is_leaf) return false;
  const model::Resources need = TotalOf(j.request);
  auto get = [](const std::map<std::string, model::Resources>& m, const std::string& a) {
    auto it = m.find(a);
    return it == m.end() ? model::Resources{} : it->second;
  };
  for (const std::string& a : q->second.path) {
    const QueueView& v = *queues_.at(a).view;
    const model::Resources have = get(alloc, a);
    for (int c = 0; c < 3; ++c) {
      const int64_t n = Get(need, c), lim = Get(v.limit, c);
      if (n > 0 && lim >= 0 && Get(have, c) + n > lim) return false;
    }
  }
  // What may be evicted: per project, its allocation and smallest job (jobs not stopping).
  std::map<std::string, model::Resources> smallest;
  for (const RunningJob& r : snap.running) {
    if (r.evicted_for != 0) continue;
    model::Resources& least = smallest[r.queue];
    const model::Resources t = TotalOf(r.request);
    for (int c = 0; c < 3; ++c) {
      int64_t* m = c == 0 ? &least.gpu_milli : c == 1 ? &least.cpus : &least.memory_mib;
      if (Get(t, c) > 0 && (*m == 0 || Get(t, c) < *m)) *m = Get(t, c);
    }
  }
  auto holds_only_deserved = [&](const std::string& name) {
    const model::Resources& d = queues_.at(name).view->deserved;
    if (d.gpu_milli <= 0 && d.cpus <= 0 && d.memory_mib <= 0) return false;
    const model::Resources have = get(alloc, name);
    for (int c = 0; c < 3; ++c) {
      if ((c == 0 || Get(d, c) > 0) && Get(have, c) > Get(d, c)) return false;
    }
    return true;
  };
  for (const NodeView& node : snap.nodes) {
    if (!node.schedulable) continue;
    NodeView n = node;
    std::map<std::string, model::Resources> taken;
    std::vector<const RunningJob*> on;
    for (const RunningJob& r : snap.running) {
      if (r.evicted_for != 0 || r.suspended || r.queue == j.queue) continue;
      const ClassView& cls = ClassOf(r.job_class);
      auto rq = queues_.find(r.queue);
      if (rq == queues_.end()) continue;
      const int64_t queue_min = rq->second.view->min_runtime_s;
      if (!cls.preemptible || snap.now - r.start_time < (queue_min >= 0 ? queue_min : cls.min_runtime_s)) {
        continue;
      }
      if (holds_only_deserved(r.queue)) continue;
      if (std::none_of(r.placement.begin(), r.placement.end(), [&](const auto& w) { return w.node == n.name; })) {
        continue;
      }
      on.push_back(&r);
    }
    std::stable_sort(on.begin(), on.end(), [](const RunningJob* a, const RunningJob* b) {
      return std::make_tuple(-TotalOf(a->request).gpu_milli, -TotalOf(a->request).cpus, a->id) <
             std::make_tuple(-TotalOf(b->request).gpu_milli, -TotalOf(b->request).cpus, b->id);
    });
    auto fits = [&] {
      int64_t cores = 0;
      for (const auto& [numa, list] : n.free_cores_by_numa) cores += static_cast<int64_t>(list.size());
      if (cores < j.request.cpus || n.free_memory_mib < j.request.memory_mib) return false;
      const int64_t g = j.request.gpu_milli;
      int whole = 0;
      bool share = false;
      for (const GpuSlot& slot : n.gpus) {
        if (slot.free_milli == 1000 && slot.free_memory_mib == slot.memory_mib) ++whole;
        if (g < 1000 && slot.free_milli >= g &&
            slot.free_memory_mib >= GpuMemoryTaken(slot, g, j.request.gpu_memory_mib)) {
          share = true;
        }
      }
      return g == 0 || (g < 1000 && share) || (g >= 1000 && whole >= g / 1000);
    };
    // Victims needed on this node (largest first), within the cycle's eviction budget.
    int victims = 0;
    if (fits()) return true;
    for (const RunningJob* r : on) {
      if (victims >= c_.max_preemptions) break;
      const model::Resources t = TotalOf(r->request);
      const model::Resources left = get(alloc, r->queue) - taken[r->queue];
      const model::Resources f = get(fair, r->queue), least = smallest[r->queue], before = get(alloc, r->queue);
      // Above its fair share (with the jobs already taken gone) on a resource the job holds; and on
      // every resource it held above its fair share before this cycle's evictions, it keeps at
      // least its fair share less its smallest job (taking another job first does not lift that).
      bool over = false, ok = true;
      for (int c = 0; c < 3; ++c) {
        if (Get(t, c) <= 0) continue;
        if (Get(left, c) > Get(f, c)) over = true;
        if (Get(before, c) > Get(f, c) && Get(left, c) - Get(t, c) < Get(f, c) - Get(least, c)) ok = false;
      }
      if (!over || !ok) continue;
      taken[r->queue] += t;
      ++victims;
      for (const auto& w : r->placement) {
        if (w.node != n.name) continue;
        for (int g : w.gpus) {
          GpuSlot& slot = n.gpus.at(static_cast<size_t>(g));
          slot.free_milli += w.gpu_milli_each;
          slot.free_memory_mib += GpuMemoryTaken(slot, w.gpu_milli_each, r->request.gpu_memory_mib);
        }
        n.free_cores_by_numa[-100].insert(n.free_cores_by_numa[-100].end(), w.cores.begin(), w.cores.end());
        n.free_memory_mib += w.memory_mib;
      }
      if (fits()) return true;
    }
  }
  return false;
}

// Whether `need` fits in what `leaf` has left of its deserved quota (see OwedQuota).
std::map<std::string, int64_t> Driver::TypesOf(
    const Snapshot& snap, const std::vector<model::WorkerPlacement>& placement) const {
  std::map<std::string, int64_t> out;
  for (const model::WorkerPlacement& w : placement) {
    for (const NodeView& n : snap.nodes) {
      if (n.name != w.node) continue;
      for (const GpuSlot& g : n.gpus) {
        if (!g.model.empty() && std::count(w.gpus.begin(), w.gpus.end(), g.index)) {
          out[g.model] += w.gpu_milli_each;
        }
      }
    }
  }
  return out;
}

bool WithinDeserved(const QueueView& leaf, const model::Resources& have, const model::Resources& need) {
  bool counted = false;
  for (int c = 0; c < 3; ++c) {
    const int64_t n = Get(need, c), d = Get(leaf.deserved, c);
    if (n <= 0 || (c > 0 && d <= 0)) continue;
    counted = true;
    if (Get(have, c) + n > d) return false;
  }
  return counted;
}

void Driver::CheckStarvation(const Snapshot& snap, const Decisions& d, int cycle) {
  std::map<model::JobId, const PendingJob*> pending;
  for (const PendingJob& p : snap.pending) pending[p.id] = &p;
  const std::map<std::string, model::Resources> alloc = Allocated(snap);
  std::map<std::string, model::Resources> fair;
  for (const QueueShare& s : d.shares) fair[s.name] = s.fair_share;
  std::set<model::JobId> served;
  std::set<std::string> progressed;  // projects that started a job
  for (const auto& p : d.preemptions) served.insert(p.for_job);
  for (const StartDecision& s : d.starts) {
    auto p = pending.find(s.id);
    if (p != pending.end()) progressed.insert(p->second->queue);
  }
  std::multiset<std::string> reserving_jobs;  // per project, how many of its jobs hold a reservation
  for (const ReserveDecision& r : d.reservations) {
    auto p = pending.find(r.id);
    if (p != pending.end()) reserving_jobs.insert(p->second->queue);
  }
  // Each project's line: highest class priority, then oldest.
  std::map<std::string, std::vector<const PendingJob*>> line;
  for (const PendingJob& p : snap.pending) line[p.queue].push_back(&p);
  std::map<model::JobId, std::pair<int, std::string>> still;
  for (auto& [queue, jobs] : line) {
    auto q = queues_.find(queue);
    if (q == queues_.end() || progressed.count(queue)) continue;
    std::stable_sort(jobs.begin(), jobs.end(), [&](const PendingJob* a, const PendingJob* b) {
      return std::make_tuple(-ClassOf(a->job_class).priority, a->submit_time, a->id) <
             std::make_tuple(-ClassOf(b->job_class).priority, b->submit_time, b->id);
    });
    const model::Resources have = alloc.count(queue) ? alloc.at(queue) : model::Resources{};
    const PendingJob* first = nullptr;
    for (const PendingJob* p : jobs) {
      if (WithinDeserved(*q->second.view, have, TotalOf(p->request))) {
        first = p;
        break;
      }
    }
    if (first == nullptr || served.count(first->id) || first->victims_stopping > 0 || first->room_made) continue;
    const bool holds = std::any_of(d.reservations.begin(), d.reservations.end(),
                                   [&](const ReserveDecision& r) { return r.id == first->id; });
    if (reserving_jobs.count(queue) > (holds ? 1u : 0u)) continue;  // another job of it holds some
    if (!OwedQuota(snap, *first, alloc, fair)) continue;
    const std::string why = ReasonOf(d, first->id);
    auto before = starving_.find(first->id);
    const auto& entry = still[first->id] = before == starving_.end()
                                               ? std::make_pair(1, why)
                                               : std::make_pair(before->second.first + 1, before->second.second);
    if (entry.first >= kStarveCycles) {
      Fail("starvation", cycle, "job " + std::to_string(first->id) + " of " + queue +
           " comes first in its project's line within its deserved quota (and fits on a node once jobs that "
           "may be evicted are gone) but has not started for " + std::to_string(entry.first) +
           " cycles; its reason then: " + entry.second + "; now: " + why, "expect start " + std::to_string(first->id));
    }
  }
  starving_ = std::move(still);
}

void Driver::Apply(const Decisions& d, int cycle) {
  trace_ << "# cycle " << cycle << " decided:";
  if (d.starts.empty() && d.preemptions.empty()) trace_ << " nothing";
  trace_ << "\n";
  RecordEvictions(d, preempted_for_, room_for_);  // herd-ctld's record of each victim (ctld/sched/evictions.h)
  for (const StartDecision& s : d.starts) {
    const Rt& rt = jobs_.at(s.id);
    if (rt.st == St::kPending && ClassOf(rt.pending.job_class).within_quota_only)
      firm_start_[rt.pending.queue] = cycle;
  }
  for (const PreemptDecision& p : d.preemptions) {
    trace_ << "#   preempt " << p.id << " for " << p.for_job << " (" << EvictionKindName(p.kind) << ")\n";
    Rt& rt = jobs_.at(p.id);
    if (rt.st != St::kRunning) continue;  // herd-ctld stops a job once
    rt.st = St::kStopping;
    rt.release_left = c_.release_cycles;
    if (p.for_job != 0 && p.for_job != p.id) {
      if (auto b = jobs_.find(p.for_job); b != jobs_.end()) b->second.evicted_for_cycle = cycle;
      // More victims for the same job: its wait counts from their release.
      for (Owed& before : owed_) {
        if (before.beneficiary == p.for_job) before.released_cycle = 0;
      }
      Owed o{p.id, p.for_job, cycle, 0, {}};
      // A preemption inside a project may make room in its quota, not on a node: no place to check.
      if (p.kind != EvictionKind::kPreempt) {
        for (const auto& w : rt.running.placement) o.nodes.insert(w.node);
      }
      owed_.push_back(o);
    }
    // Churn: a job started, its project above its fair share with it, while the job it is now
    // reclaimed for was already waiting. (A start within its project's fair share may be reclaimed
    // once the shares change: herd.toml(5) promises only that a start beyond it gives way. Nor is a
    // start judged once its project has started a within-quota job after it: that job may take
    // the project's quota from its preemptible jobs, which then borrow.)
    auto firm = firm_start_.find(rt.running.queue);
    const bool firm_since = firm != firm_start_.end() && firm->second > rt.started_cycle;
    if (p.kind == EvictionKind::kReclaim && rt.started_cycle > 0 && rt.started_above &&
        cycle - rt.started_cycle <= 2 && last_finish_ < rt.started_cycle && !firm_since &&
        entitled_[rt.committed_cycle].count(p.for_job) &&
        !ShareFell(rt.running.queue, rt.committed_cycle, cycle)) {
      Fail("churn", cycle, "job " + std::to_string(p.id) + " of " + rt.running.queue + ", started in cycle " +
           std::to_string(rt.started_cycle) + ", is reclaimed in cycle " + std::to_string(cycle) +
           " for job " + std::to_string(p.for_job) + ", which was already waiting when it started (no job ended "
           "since)", "expect nopreempt " + std::to_string(p.id));
    }
    // Thrash counts reclaims (between projects), as property.h states it: a project's own
    // higher-priority jobs preempting its jobs that borrow beyond its quota is its own order.
    if (p.kind == EvictionKind::kReclaim) rt.pending.reclaims = rt.evictions + 1;  // CountReclaim
    if (p.kind == EvictionKind::kReclaim && ++rt.evictions >= kThrashEvictions) {
      Fail("thrash", cycle, "job " + std::to_string(p.id) + " of " + rt.running.queue + " is evicted " +
           std::to_string(rt.evictions) + " times (the last: " + EvictionKindName(p.kind) + " for job " + std::to_string(p.for_job) +
           ", cycle " + std::to_string(cycle) + ")", "expect nopreempt " + std::to_string(p.id));
    }
    auto b = jobs_.find(p.for_job);
    if (p.kind == EvictionKind::kReclaim && b != jobs_.end() && b->second.pending.queue != rt.running.queue) {
      const std::string& x = b->second.pending.queue;
      const std::string& y = rt.running.queue;
      auto& dirs = reclaims_[{std::min(x, y), std::max(x, y)}];
      if (dirs.empty() || dirs.back() != x) dirs.push_back(x);
      if (dirs.size() >= 3) {
        Fail("thrash", cycle, "projects " + x + " and " + y + " reclaim from each other back and forth (" +
             dirs[0] + " first; now job " + std::to_string(p.id) + " of " + y + " for job " +
             std::to_string(p.for_job) + ", cycle " + std::to_string(cycle) + ") with no job of either "
             "ending or arriving", "expect nopreempt " + std::to_string(p.id));
      }
    }
  }
  for (const StartDecision& s : d.starts) {
    trace_ << "#   start " << s.id << " on " << Where(s.placement) << "\n";
    Rt& rt = jobs_.at(s.id);
    if (rt.st != St::kPending) continue;
    rt.st = St::kRunning;
    rt.started_cycle = cycle;
    rt.committed_cycle = rt.evicted_for_cycle > 0 ? rt.evicted_for_cycle : cycle;
    rt.evicted_for_cycle = 0;
    rt.started_above = above_.count(s.id) > 0;
    const int64_t limit = rt.pending.request.time_limit_s;
    rt.running = {s.id, rt.pending.queue, rt.pending.job_class, rt.pending.request, s.placement, now_,
                  rt.pending.submit_time, limit > 0 ? now_ + limit : 0, false};
    rt.running.gpu_models = rt.pending.gpu_models;  // as herd-ctld's snapshot carries them
    rt.running.nodes = rt.pending.nodes;
    for (const Owed& o : owed_) {
      if (o.beneficiary != s.id) continue;
      // Space that a job's end freed since the eviction may serve the beneficiary better.
      if (last_finish_ < o.cycle && !o.nodes.empty() &&
          std::none_of(s.placement.begin(), s.placement.end(), [&](const auto& w) { return o.nodes.count(w.node); })) {
        Fail("wasted_eviction", cycle, "job " + std::to_string(s.id) + " starts on " + Where(s.placement) +
             ", none of the nodes its victim " + std::to_string(o.victim) + " (evicted in cycle " +
             std::to_string(o.cycle) + ") freed", "expect start " + std::to_string(s.id));
      }
    }
    std::erase_if(owed_, [&](const Owed& o) { return o.beneficiary == s.id; });
  }
  for (const Owed& o : owed_) {
    if (o.released_cycle > 0 && cycle >= o.released_cycle + kBeneficiaryCycles - 1) {
      Fail("beneficiary", cycle, "job " + std::to_string(o.victim) + " was evicted in cycle " +
           std::to_string(o.cycle) + " for job " + std::to_string(o.beneficiary) +
           ", which has not started " + std::to_string(kBeneficiaryCycles) +
           " cycles after the victim stopped; its reason: " + ReasonOf(d, o.beneficiary),
           "expect start " + std::to_string(o.beneficiary));
    }
  }
}

void Driver::Advance(int cycle) {
  now_ += c_.step_s;
  trace_ << "cycle\nnow " << now_ << "\n";
  auto changed = [&](const std::string& queue) {
    std::erase_if(reclaims_, [&](const auto& e) { return e.first.first == queue || e.first.second == queue; });
  };
  for (auto& [id, rt] : jobs_) {
    if (rt.st == St::kStopping) {
      // As the scenario format has it: a victim still holding its resources, then released.
      if (rt.release_left-- > 0) {
        trace_ << "stopping " << id << "\n";
        continue;
      }
      if (c_.release_cycles > 0) trace_ << "stopped " << id << "\n";
      rt.st = St::kPending;
      rt.pending.pending_since = now_;
      for (Owed& o : owed_) {
        if (o.victim == id && o.released_cycle == 0) o.released_cycle = cycle + 1;
      }
    } else if (rt.st == St::kRunning && ((rt.run_s >= 0 && now_ >= rt.running.start_time + rt.run_s) ||
                                         (rt.running.end_by > 0 && now_ >= rt.running.end_by))) {
      rt.st = St::kDone;
      last_finish_ = cycle;
      trace_ << "finish " << id << "\n";
      changed(rt.running.queue);
    } else if (rt.st == St::kFuture && rt.arrive_cycle == cycle) {
      rt.st = St::kPending;
      rt.pending.submit_time = rt.pending.pending_since = now_;
      trace_ << "pending " << JobLine(*spec_.at(id)) << " submit=" << now_ << " since=" << now_ << "\n";
      changed(rt.pending.queue);
    }
  }
  // A victim that stops while its beneficiary is hidden counts from the cycle it is released in.
  for (Owed& o : owed_) {
    if (o.released_cycle == 0 && jobs_.at(o.victim).st != St::kStopping) o.released_cycle = cycle + 1;
  }
}

uint64_t Fnv(uint64_t h, const std::string& s) {
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001B3ULL;
  return h;
}

CaseResult Driver::Run() {
  if (!Init()) {
    out_.invalid = true;
    return out_;
  }
  Policy policy;
  ParsePlacement(c_.placement, &policy.placement);
  policy.reserve_after_s = c_.reserve_after_s;
  policy.seed = c_.seed;
  policy.max_preemptions_per_cycle = c_.max_preemptions;
  out_.digest = 0xCBF29CE484222325ULL;
  const int twice = 1 + static_cast<int>(c_.seed % static_cast<uint64_t>(std::max(c_.cycles, 1)));
  for (int cycle = 1; cycle <= c_.cycles; ++cycle) {
    const Snapshot snap = Build(cycle);
    const Decisions d = decide_(snap, policy);
    const std::string dump = DumpDecisions(d);
    out_.digest = Fnv(out_.digest, dump);
    out_.cycles_run = cycle;
    if (cycle == twice && DumpDecisions(decide_(Snapshot(snap), policy)) != dump) {
      Fail("determinism", cycle, "two Decide() calls on equal snapshots decide differently (cycle " +
           std::to_string(cycle) + ")", "expect deterministic");
    }
    CheckCycle(snap, d, cycle);
    CheckStarvation(snap, d, cycle);
    Apply(d, cycle);
    if (!out_.violation.invariant.empty()) break;
    if (cycle < c_.cycles) Advance(cycle);
  }
  if (!out_.violation.invariant.empty()) {
    trace_ << "# " << out_.violation.invariant << ": " << out_.violation.message << "\n"
           << expect_ << "\n";
  }
  out_.trace = trace_.str();
  return out_;
}

}  // namespace

// Some cases get GPU types and quotas per type, drawn from a stream of their own (the other cases
// stay as they were): nodes of types a100 and h100, deserved quotas of one type that fit its
// GPUs, limits and weights per type, and pending jobs for one type or either.
static void AddGpuTypes(uint64_t seed, Case& c) {
  Rng r(seed ^ 0x7479706564ULL);
  if (!r.Chance(0.3)) return;
  std::map<std::string, int64_t> capacity;
  for (CaseNode& n : c.nodes) {
    if (n.gpus == 0) continue;
    n.model = r.Chance(0.5) ? "a100" : "h100";
    if (!n.down) capacity[n.model] += 1000 * n.gpus;
  }
  for (const auto& [type, gpus] : capacity) {
    int64_t left = gpus * r.Int(0, 100) / 100;
    for (CaseQueue& q : c.queues) {
      const bool project = q.name[0] == 'p';
      if (!project || r.Chance(0.4)) continue;
      model::GpuTypeQuota& t = q.by_type[type];
      t.deserved_milli = 1000 * r.Int(0, left / 1000);
      left -= t.deserved_milli;
      if (r.Chance(0.3)) t.limit_milli = t.deserved_milli + 1000 * r.Int(0, 2);
      if (r.Chance(0.2)) t.over_quota_weight = static_cast<double>(r.Int(0, 3));
      for (CaseQueue& d : c.queues) {
        if (d.name == q.parent) d.by_type[type].deserved_milli += t.deserved_milli;
      }
    }
  }
  for (CaseJob& j : c.jobs) {
    if (j.running || j.gpu_milli <= 0 || r.Chance(0.5)) continue;
    j.gpu_models = r.Pick<std::vector<std::string>>({{"a100"}, {"h100"}, {"a100", "h100"}});
  }
}

Case GenerateCase(uint64_t seed) {
  Rng r(seed);
  Case c;
  c.seed = seed;
  c.placement = r.Chance(0.7) ? "herd" : "bestfit";
  c.reserve_after_s = r.Pick<int64_t>({600, 1800, 3600});
  c.max_preemptions = r.Chance(0.1) ? 2 : 64;
  c.release_cycles = static_cast<int>(r.Int(0, 1));
  c.train_min_runtime_s = r.Chance(0.3) ? 600 : 0;
  const int n_nodes = static_cast<int>(r.Int(1, 5));
  int64_t gpus = 0, cores = 0;
  for (int i = 0; i < n_nodes; ++i) {
    CaseNode n;
    n.name = "n" + std::to_string(i + 1);
    n.gpus = r.Pick({0, 2, 4, 4, 8, 8});
    n.cores = r.Pick({16, 32, 64});
    n.numa = static_cast<int>(r.Int(1, 2));
    n.memory_mib = 1024 * r.Pick<int64_t>({64, 128, 256});
    n.gpu_memory_mib = 1024 * r.Pick<int64_t>({40, 80});
    n.down = r.Chance(0.05);
    if (!n.down) gpus += n.gpus, cores += n.cores;
    c.nodes.push_back(n);
  }
  // Queues: projects p1..pP, flat or under departments d1..dD; deserved quotas that fit the cluster.
  const int n_projects = static_cast<int>(r.Int(2, 4));
  const int n_depts = r.Chance(0.5) ? 0 : static_cast<int>(r.Int(1, 2));
  for (int d = 0; d < n_depts; ++d) {
    CaseQueue q;
    q.name = "d" + std::to_string(d + 1);
    q.weight = static_cast<int>(r.Int(1, 3));
    c.queues.push_back(q);
  }
  std::vector<size_t> projects;
  for (int p = 0; p < n_projects; ++p) {
    CaseQueue q;
    q.name = "p" + std::to_string(p + 1);
    if (n_depts > 0) q.parent = "d" + std::to_string(p % n_depts + 1);
    q.weight = static_cast<int>(r.Int(1, 3));
    projects.push_back(c.queues.size());
    c.queues.push_back(q);
  }
  std::vector<size_t> owners;  // projects that get a deserved quota (others scavenge)
  for (size_t p : projects) {
    if (!r.Chance(0.25)) owners.push_back(p);
  }
  if (owners.empty()) owners.push_back(projects[0]);
  const int64_t pool = gpus * r.Int(50, 100) / 100;
  for (int64_t g = 0; g < pool; ++g) {
    c.queues[owners[static_cast<size_t>(r.Int(0, static_cast<int64_t>(owners.size()) - 1))]].deserved.gpu_milli += 1000;
  }
  if (r.Chance(0.3)) {
    const int64_t core_pool = cores * r.Int(30, 90) / 100;
    for (size_t p : owners) c.queues[p].deserved.cpus = core_pool / static_cast<int64_t>(owners.size());
  }
  for (size_t p : projects) {
    CaseQueue& q = c.queues[p];
    if (r.Chance(0.2)) q.limit.gpu_milli = q.deserved.gpu_milli + 1000 * r.Int(0, 4);
    if (r.Chance(0.2)) q.min_runtime_s = r.Pick<int64_t>({0, 900, 1800});
    for (CaseQueue& d : c.queues) {
      if (d.name == q.parent) d.deserved += q.deserved;
    }
  }
  for (int d = 0; d < n_depts; ++d) {
    if (r.Chance(0.1)) c.queues[static_cast<size_t>(d)].limit.gpu_milli = c.queues[static_cast<size_t>(d)].deserved.gpu_milli + 2000;
  }
  // Jobs running at the first cycle, first fit on what is free.
  std::vector<FreeNode> free;
  for (const CaseNode& n : c.nodes) {
    FreeNode f;
    f.gpu_milli.assign(static_cast<size_t>(n.gpus), 1000);
    f.gpu_mem.assign(static_cast<size_t>(n.gpus), n.gpu_memory_mib);
    f.cores = n.cores;
    f.memory = n.memory_mib;
    free.push_back(f);
  }
  model::JobId id = 1;
  const int tries = static_cast<int>(r.Int(0, 3 * n_nodes + 4));
  for (int t = 0; t < tries; ++t) {
    CaseJob j;
    j.id = id;
    j.queue = c.queues[projects[static_cast<size_t>(r.Int(0, n_projects - 1))]].name;
    RandomShape(r, j);
    j.running = true;
    j.start = c.now - r.Int(0, 7200);
    j.run_s = r.Chance(0.4) ? -1 : c.now - j.start + r.Int(300, 4000);  // ends after the first cycle
    if (r.Chance(0.3)) j.time_limit_s = c.now - j.start + r.Int(300, 7200);  // ends by then at the latest
    if (!PlaceRunning(r, c, free, j)) continue;
    c.jobs.push_back(j);
    ++id;
  }
  const int pending = static_cast<int>(r.Int(0, 10)), arrivals = static_cast<int>(r.Int(0, 6));
  for (int t = 0; t < pending + arrivals; ++t) {
    CaseJob j;
    j.id = id++;
    j.queue = c.queues[projects[static_cast<size_t>(r.Int(0, n_projects - 1))]].name;
    RandomShape(r, j);
    j.submit = c.now - r.Int(0, 5000);
    j.since = c.now - r.Int(0, c.now - j.submit);
    j.arrive_cycle = t < pending ? 0 : static_cast<int>(r.Int(1, c.cycles - 1));
    j.run_s = r.Chance(0.3) ? -1 : r.Int(300, 4000);
    if (r.Chance(0.3)) j.time_limit_s = r.Pick<int64_t>({600, 1800, 3600, 7200});
    c.jobs.push_back(j);
  }
  AddGpuTypes(seed, c);
  return c;
}

std::string ScenarioText(const Case& c, const std::string& trace) {
  std::ostringstream o;
  o << "policy placement=" << c.placement << " reserve_after=" << c.reserve_after_s << " seed=" << c.seed
    << " max_preemptions=" << c.max_preemptions << "\n";
  o << "now " << c.now << "\n";
  o << "class train priority=50 preemptible";
  if (c.train_min_runtime_s > 0) o << " min_runtime=" << c.train_min_runtime_s;
  o << "\nclass interactive priority=100 nonpreemptible within_quota\n";
  o << "class inference priority=125 nonpreemptible within_quota\n";
  for (const CaseQueue& q : c.queues) {
    o << "queue " << q.name;
    if (!q.parent.empty()) o << " parent=" << q.parent;
    std::string deserved = q.deserved == model::Resources{} ? "" : ResourcesText(q.deserved);
    std::string limit, weight = q.weight != 1 ? std::to_string(q.weight) : "";
    if (q.limit.gpu_milli >= 0) limit = "gpu:" + model::FormatGpuMilli(q.limit.gpu_milli);
    if (q.limit.cpus >= 0) limit += std::string(limit.empty() ? "" : ",") + "cpu:" + std::to_string(q.limit.cpus);
    for (const auto& [type, t] : q.by_type) {  // quotas per GPU type
      deserved += (deserved.empty() ? "gpu." : ",gpu.") + type + ":" + model::FormatGpuMilli(t.deserved_milli);
      if (t.limit_milli >= 0) limit += (limit.empty() ? "gpu." : ",gpu.") + type + ":" + model::FormatGpuMilli(t.limit_milli);
      if (t.over_quota_weight >= 0) {
        weight += (weight.empty() ? "gpu." : ",gpu.") + type + ":" + std::to_string(static_cast<int>(t.over_quota_weight));
      }
    }
    if (!deserved.empty()) o << " deserved=" << deserved;
    if (!limit.empty()) o << " limit=" << limit;
    if (!weight.empty()) o << " weight=" << weight;
    if (q.min_runtime_s >= 0) o << " min_runtime=" << q.min_runtime_s;
    o << "\n";
  }
  for (const CaseNode& n : c.nodes) {
    o << "node " << n.name << " gpus=" << n.gpus << " cores=" << n.cores
      << " memory=" << model::FormatSizeMiB(n.memory_mib) << " gpu_memory=" << model::FormatSizeMiB(n.gpu_memory_mib);
    if (n.numa != 1) o << " numa=" << n.numa;
    if (!n.model.empty()) o << " model=" << n.model;
    if (n.down) o << " down";
    o << "\n";
  }
  for (const CaseJob& j : c.jobs) {
    if (!j.running) continue;
    std::string on;
    for (const auto& [node, gpus] : j.on) {
      on += (on.empty() ? "" : "+") + node;
      if (j.gpu_milli == 0) continue;
      on += "[";
      for (size_t i = 0; i < gpus.size(); ++i) on += (i ? "," : "") + std::to_string(gpus[i]);
      on += "]";
    }
    o << "running " << JobLine(j) << " on=" << on << " start=" << j.start;
    if (j.time_limit_s > 0) o << " end_by=" << j.start + j.time_limit_s;
    if (j.run_s >= 0) o << "  # ends at " << j.start + j.run_s;
    o << "\n";
  }
  for (const CaseJob& j : c.jobs) {
    if (j.running || j.arrive_cycle > 0) continue;
    o << "pending " << JobLine(j) << " submit=" << j.submit << " since=" << j.since;
    if (j.run_s >= 0) o << "  # runs " << j.run_s << " s";
    o << "\n";
  }
  o << trace;
  return o.str();
}

CaseResult RunCase(const Case& c, const DecideFn& decide) { return Driver(c, decide).Run(); }

Summary RunMany(uint64_t seed, int64_t cases) {
  Summary s;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < cases; ++i) {
    const Case c = GenerateCase(seed + static_cast<uint64_t>(i));
    CaseResult r = RunCase(c);
    ++s.cases;
    s.cycles += r.cycles_run;
    if (r.invalid) ++s.invalid;
    const std::string inv = r.violation.invariant;  // a copy: r is moved below
    if (inv.empty()) continue;
    s.failing_seeds[inv].push_back(c.seed);
    if (s.failures[inv]++ == 0) s.first.emplace(inv, std::make_pair(c, std::move(r)));
  }
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

namespace {

// The smaller variants of `c` the shrinker tries, most reducing first.
std::vector<Case> Variants(const Case& c, int failed_cycle) {
  std::vector<Case> out;
  auto add = [&](const std::function<bool(Case&)>& change) {
    Case v = c;
    if (change(v)) out.push_back(std::move(v));
  };
  add([&](Case& v) { return v.cycles > failed_cycle ? (v.cycles = failed_cycle, true) : false; });
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    add([&](Case& v) {
      if (v.nodes.size() <= 1) return false;
      const std::string name = v.nodes[i].name;
      v.nodes.erase(v.nodes.begin() + static_cast<long>(i));
      std::erase_if(v.jobs, [&](const CaseJob& j) {
        return std::any_of(j.on.begin(), j.on.end(), [&](const auto& w) { return w.first == name; });
      });
      return true;
    });
  }
  for (size_t i = 0; i < c.queues.size(); ++i) {
    add([&](Case& v) {
      const std::string name = v.queues[i].name;
      if (std::any_of(v.queues.begin(), v.queues.end(), [&](const CaseQueue& q) { return q.parent == name; })) {
        return false;
      }
      v.queues.erase(v.queues.begin() + static_cast<long>(i));
      std::erase_if(v.jobs, [&](const CaseJob& j) { return j.queue == name; });
      return true;
    });
  }
  for (size_t i = 0; i < c.jobs.size(); ++i) {
    add([&](Case& v) { return v.jobs.erase(v.jobs.begin() + static_cast<long>(i)), true; });
  }
  add([&](Case& v) {  // flatten the tree
    bool any = false;
    for (CaseQueue& q : v.queues) any = any || !q.parent.empty(), q.parent.clear();
    std::erase_if(v.queues, [&](const CaseQueue& q) {
      return std::none_of(v.jobs.begin(), v.jobs.end(), [&](const CaseJob& j) { return j.queue == q.name; }) &&
             q.name[0] == 'd';
    });
    return any;
  });
  for (size_t i = 0; i < c.jobs.size(); ++i) {
    add([&](Case& v) {
      CaseJob& j = v.jobs[i];
      if (j.workers <= 1) return false;
      --j.workers;
      if (j.running) j.on.pop_back();
      return true;
    });
    add([&](Case& v) {
      CaseJob& j = v.jobs[i];
      if (j.gpu_milli <= 1000) return false;
      j.gpu_milli = j.gpu_milli / 2000 * 1000;
      for (auto& w : j.on) w.second.resize(static_cast<size_t>(j.gpu_milli / 1000));
      return true;
    });
    add([&](Case& v) { return v.jobs[i].cpus > 1 ? (v.jobs[i].cpus = 1, true) : false; });
    add([&](Case& v) { return v.jobs[i].memory_mib > 1024 ? (v.jobs[i].memory_mib = 1024, true) : false; });
    add([&](Case& v) { return v.jobs[i].job_class != "train" ? (v.jobs[i].job_class = "train", true) : false; });
    add([&](Case& v) { return v.jobs[i].run_s >= 0 ? (v.jobs[i].run_s = -1, true) : false; });
    add([&](Case& v) { return v.jobs[i].time_limit_s > 0 ? (v.jobs[i].time_limit_s = 0, true) : false; });
    add([&](Case& v) {
      CaseJob& j = v.jobs[i];
      if (j.running || j.arrive_cycle == 0) return false;
      j.arrive_cycle = 0;
      j.submit = j.since = v.now;
      return true;
    });
    add([&](Case& v) {
      CaseJob& j = v.jobs[i];
      if (j.running || j.since == v.now) return false;
      j.since = v.now;
      return true;
    });
  }
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    add([&](Case& v) {
      CaseNode& n = v.nodes[i];
      int used = 0;
      for (const CaseJob& j : v.jobs) {
        for (const auto& w : j.on) {
          for (int g : w.second) {
            if (w.first == n.name) used = std::max(used, g + 1);
          }
        }
      }
      if (used >= n.gpus) return false;
      n.gpus = used;
      return true;
    });
    add([&](Case& v) { return v.nodes[i].cores > 8 ? (v.nodes[i].cores /= 2, true) : false; });
    add([&](Case& v) { return v.nodes[i].numa > 1 ? (v.nodes[i].numa = 1, true) : false; });
    add([&](Case& v) { return v.nodes[i].down ? (v.nodes[i].down = false, true) : false; });
  }
  for (size_t i = 0; i < c.queues.size(); ++i) {
    add([&](Case& v) {
      CaseQueue& q = v.queues[i];
      if (q.limit == model::Resources{-1, -1, -1}) return false;
      q.limit = {-1, -1, -1};
      return true;
    });
    add([&](Case& v) { return v.queues[i].deserved.cpus > 0 ? (v.queues[i].deserved.cpus = 0, true) : false; });
    add([&](Case& v) {  // no more deserved GPUs than the (shrunk) cluster has
      int64_t gpus = 0;
      for (const CaseNode& n : v.nodes) gpus += 1000 * n.gpus;
      if (v.queues[i].deserved.gpu_milli <= gpus) return false;
      v.queues[i].deserved.gpu_milli = gpus;
      return true;
    });
    add([&](Case& v) {
      CaseQueue& q = v.queues[i];
      if (q.deserved.gpu_milli < 2000) return false;
      q.deserved.gpu_milli = q.deserved.gpu_milli / 2000 * 1000;
      return true;
    });
    add([&](Case& v) { return v.queues[i].weight != 1 ? (v.queues[i].weight = 1, true) : false; });
    add([&](Case& v) { return v.queues[i].min_runtime_s >= 0 ? (v.queues[i].min_runtime_s = -1, true) : false; });
  }
  add([&](Case& v) { return v.release_cycles > 0 ? (v.release_cycles = 0, true) : false; });
  add([&](Case& v) { return v.train_min_runtime_s > 0 ? (v.train_min_runtime_s = 0, true) : false; });
  add([&](Case& v) { return v.max_preemptions != 64 ? (v.max_preemptions = 64, true) : false; });
  add([&](Case& v) { return v.placement != "herd" ? (v.placement = "herd", true) : false; });
  return out;
}

}  // namespace

Case Shrink(const Case& c, const std::string& invariant, int max_runs, const DecideFn& decide,
            const std::string& message_has) {
  Case best = c;
  CaseResult now = RunCase(best, decide);
  int runs = 1;
  bool progress = true;
  while (progress && runs < max_runs) {
    progress = false;
    for (Case& v : Variants(best, std::max(now.violation.cycle, 1))) {
      if (runs++ >= max_runs) break;
      CaseResult r = RunCase(v, decide);
      if (!r.invalid && r.violation.invariant == invariant &&
          r.violation.message.find(message_has) != std::string::npos) {
        best = std::move(v);
        now = std::move(r);
        progress = true;
        break;
      }
    }
  }
  return best;
}

std::string ReportFailure(const Case& c, const CaseResult& failed, const std::string& dir,
                          const DecideFn& decide, const std::string& message_has) {
  const std::string& inv = failed.violation.invariant;
  const Case small = Shrink(c, inv, 3000, decide, message_has);
  const CaseResult again = RunCase(small, decide);
  std::ostringstream head;
  head << "# Found by the property suite (tests/sched/property.h), seed " << c.seed << ", shrunk.\n"
       << "# Invariant " << inv << " fails in cycle " << again.violation.cycle << ": " << again.violation.message
       << "\n# Decisions are applied as herd-ctld applies them: an evicted job holds its resources for "
       << small.release_cycles << " more cycle(s),\n# its beneficiary waits meanwhile, and the victim waits "
          "until its beneficiary starts. Each `cycle` is " << small.step_s << " s later.\n";
  const std::string text = head.str() + ScenarioText(small, again.trace);
  std::string path = dir + "/" + inv + "-" + std::to_string(c.seed) + ".scenario";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::ofstream f(path);
  f << text;
  if (!f) path = "(could not write " + path + ")";
  return "invariant " + inv + " violated (seed " + std::to_string(c.seed) + ", cycle " +
         std::to_string(failed.violation.cycle) + "): " + failed.violation.message + "\nshrunk scenario " +
         path + ":\n" + text;
}

}  // namespace herd::sched::testing
