// One scheduling cycle: build the snapshot, call the pure core, act on its decisions.
#include <time.h>

#include <algorithm>
#include <chrono>

#include "common/model/fleet.h"
#include "common/model/units.h"
#include "ctld/controller.h"
#include "ctld/sched/evictions.h"
#include "ctld/sched/scenario.h"
#include "ctld/sched/snapshot_builder.h"
#include "spdlog/spdlog.h"

namespace herd::ctld {
namespace {

// CPU time of the calling thread in ms: on a busy machine a cycle's wall time also counts the
// time it waited for a core.
double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + ',';
  return out;
}

std::string JoinLabels(const std::map<std::string, std::string>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += k + '=' + v + ',';
  return out;
}

}  // namespace

model::NodeFilter Controller::NodeFilterOf(const model::JobSpec& spec) const {
  model::NodeFilter f;
  if (!spec.pool.empty()) f.pool = config_.PoolSelector(spec.pool);
  f.constraints = spec.constraints;
  f.nodelist = spec.nodelist;
  f.exclude = spec.exclude;
  return f;
}

using model::Job;
using model::JobState;

// herd-ctld's facts as the scheduler core's plain inputs (ctld/sched/snapshot_builder.h, the rules
// bench/ and the scenario format follow too); evictions under way are marked at the end
// (sched::MarkEvictions): victims wait for their beneficiary, beneficiaries for their victims.
sched::Snapshot Controller::BuildSnapshot() const {
  sched::SnapshotFacts in;
  in.now = Now();
  in.nodes.reserve(nodes_.size());
  for (const auto& [name, n] : nodes_) {
    sched::NodeFacts& v = in.nodes.emplace_back();
    v.name = name;
    for (const auto& g : n.topology.gpus) {
      // The GPU's type ("a100"), what jobs ask for.
      v.gpus.push_back({g.index, g.memory_mib, g.numa, g.pcie_switch,
                        model::GpuTypeOf(g.model, config_.gpu_types), g.nic});
    }
    for (const auto& d : n.topology.numa) v.cores_by_numa[d.id] = d.cores;
    v.total_cores = n.topology.Cores();
    v.memory_mib = n.topology.memory_mib;
    if (auto it = config_.nodes.find(name); it != config_.nodes.end()) v.labels = it->second.labels;
    v.quota_pool = config_.QuotaPoolOf(name);  // whose quotas its GPUs count in
    v.schedulable =
        n.state == model::NodeState::kUp && n.registered && !n.drain && n.unavailable.empty();
  }
  // Jobs carry only their request (sched::Request), never the whole spec: at 100,000s of jobs the
  // copy of commands and environments was most of the cycle. jobs_.pending_since is walked beside
  // jobs_ (both in id order) instead of looked up per job.
  // Every pending job has a reservation clock: its count sizes the list once (growing it by
  // doubling moved 100,000s of entries into fresh pages).
  in.pending.reserve(jobs_.pending_since.size());
  auto since = jobs_.pending_since.begin();
  // The nodes a restricted job may use, once per distinct restriction (an array's members share
  // theirs).
  std::map<std::string, std::vector<std::string>> nodes_for;
  auto nodes_of = [&](const model::JobSpec& spec) -> std::optional<std::vector<std::string>> {
    const model::NodeFilter f = NodeFilterOf(spec);
    if (!f.Restricts()) return std::nullopt;
    const std::string key = spec.pool + '\n' + Join(spec.nodelist) + '\n' + Join(spec.exclude) +
                            '\n' + JoinLabels(spec.constraints);
    auto [it, fresh] = nodes_for.try_emplace(key);
    if (fresh) {
      for (const auto& [name, n] : nodes_) {
        if (f.Matches(name, config_.LabelsOf(name))) it->second.push_back(name);
      }
    }
    return it->second;
  };
  auto facts = [&](model::JobId id, const Job& j) -> sched::JobFacts {
    sched::JobFacts f{id, QueueOf(j), j.spec.job_class, sched::Request::Of(j.spec), j.submit_time};
    f.gpu_models = j.spec.gpu_types;
    f.nodes = nodes_of(j.spec);
    f.reclaims = j.reclaims;
    return f;
  };
  for (const auto& [id, j] : jobs_) {
    if (j.state == JobState::kPending) {
      if (jobs_.gated.count(id)) continue;
      while (since != jobs_.pending_since.end() && since->first < id) ++since;
      const bool requeued = since != jobs_.pending_since.end() && since->first == id;
      in.pending.push_back(
          sched::PendingOf(facts(id, j), requeued ? since->second : j.submit_time));
      continue;
    }
    if (!model::HoldsResources(j.state)) continue;
    sched::RunningJob& r =
        in.running.emplace_back(sched::RunningOf(facts(id, j), j.placement, j.start_time));
    r.suspended = j.state == JobState::kSuspended;
  }
  in.queues.reserve(config_.queues.size());
  for (const auto& q : config_.queues) {
    sched::QueueView& v = in.queues.emplace_back();
    v.name = q.name;
    v.parent = q.parent;
    v.deserved = q.deserved;
    if (q.limit) v.limit = *q.limit;
    v.over_quota_weight = q.over_quota_weight;
    v.by_type = q.by_type;
    v.by_pool = q.by_pool;
    v.is_leaf = q.is_project;
    v.min_runtime_s = q.min_runtime_s;
    v.usage = UsageOf(q.name);
  }
  for (const auto& [name, c] : config_.classes) {
    in.classes.push_back({name, c.priority, c.preemptible, c.within_quota_only, c.min_runtime_s});
  }
  sched::Snapshot snap = sched::BuildSnapshot(std::move(in));
  sched::MarkEvictions(jobs_.preempted_for, jobs_.room_for, snap);
  return snap;
}

void Controller::Schedule(std::string* snapshot_text) {
  AccumulateUsage();
  if (nodes_.empty()) {
    for (auto& [id, j] : jobs_) {
      if (j.state == JobState::kPending) {
        SetPendingReason(j, {.code = model::ReasonCode::kNoNodeRegistered});
      }
    }
    return;
  }
  // Room made for a job that has since started or gone is no longer held for it.
  sched::ForgetSettled(jobs_.preempted_for, jobs_.room_for, [&](model::JobId id) {
    auto b = jobs_.find(id);
    return b != jobs_.end() && b->second.state == JobState::kPending;
  });
  // Measured on the steady clock (never decided on): the cycle's cost, for herd-ctld's log.
  using Ms = std::chrono::duration<double, std::milli>;
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = ThreadCpuMs();
  GateWorkflow();
  std::chrono::steady_clock::time_point t1;
  size_t nodes = 0, pending = 0, running = 0;
  sched::Decisions d;
  {
    const sched::Snapshot snapshot = BuildSnapshot();  // freed before the decisions are applied
    t1 = std::chrono::steady_clock::now();
    nodes = snapshot.nodes.size(), pending = snapshot.pending.size();
    running = snapshot.running.size();
    d = sched::Decide(snapshot, policy_);
    if (snapshot_text != nullptr) *snapshot_text = sched::WriteScenario(snapshot, policy_, &d);
  }
  const auto t2 = std::chrono::steady_clock::now();
  for (const auto& p : d.preemptions) {
    auto it = jobs_.find(p.id);
    if (it == jobs_.end() || jobs_.ending.count(p.id)) continue;
    Job& j = it->second;
    if (j.state != JobState::kRunning && j.state != JobState::kStarting &&
        j.state != JobState::kSuspended) {
      continue;
    }
    int64_t gpu_milli = 0;
    for (const auto& w : j.placement) gpu_milli += std::ssize(w.gpus) * w.gpu_milli_each;
    stats_.NoteEviction(p.kind, gpu_milli, Now() - j.start_time);
    if (p.kind == sched::EvictionKind::kReclaim) ++j.reclaims;
    StopJob(j, JobState::kPending, sched::EvictionText(p),
            static_cast<int>(config_.scheduler.preempt_grace_s * 1000),
            p.for_job != p.id ? p.for_job : 0);
  }
  sched::RecordRoom(d, jobs_.room_for);  // the victims are recorded as StopJob stops them
  for (const auto& s : d.starts) {
    auto it = jobs_.find(s.id);
    if (it == jobs_.end() || it->second.state != JobState::kPending) continue;
    Job& j = it->second;
    // Waited since submitted, or since requeued (its reservation clock).
    auto since = jobs_.pending_since.find(j.id);
    stats_.NoteStart(j.spec.project, j.spec.job_class,
                     Now() - (since != jobs_.pending_since.end() ? since->second : j.submit_time));
    jobs_.Transition(j, JobState::kStarting, Now());
    j.placement = s.placement;
    j.start_time = Now();
    j.reason.clear();
    j.exit_code = -1;
    Save(j);
    std::string where;
    for (const auto& w : j.placement) {
      where += (where.empty() ? "" : ", ") + w.node;
      if (!w.gpus.empty()) {
        where += " GPU";
        for (size_t i = 0; i < w.gpus.size(); ++i) {
          where += (i ? "," : " ") + std::to_string(w.gpus[i]);
        }
        if (w.gpu_milli_each < 1000) where += " (" + model::FormatGpuMilli(w.gpu_milli_each) + ")";
      }
    }
    Event(j.id, "started on " + where);
    Launch(j);
  }
  // Both in id order: step through jobs_ (a few steps past running jobs) instead of a search per
  // reason; only a changed reason is written to the store. Neighbours often wait for the same
  // reason (an array's members): its words are made once for a run of them.
  auto at = jobs_.begin();
  const model::PendingReason* last = nullptr;
  std::string text;
  for (auto& [id, reason] : d.pending_reasons) {
    for (int steps = 0; at != jobs_.end() && at->first < id && steps < 8; ++steps) ++at;
    if (at == jobs_.end() || at->first < id) at = jobs_.lower_bound(id);
    if (at == jobs_.end() || at->first != id || at->second.state != JobState::kPending) continue;
    if (last == nullptr || !(*last == reason)) text = model::ReasonText(*(last = &reason));
    Job& j = at->second;  // as SetPendingReason, with the words made once
    const model::WaitsFor waits_for = model::WaitsForOf(reason.code);
    const char* code = model::ReasonCodeName(reason.code);
    if (j.reason_code != code) j.reason_code = code;  // the store keeps no code: no write for it
    if (j.reason == text && j.waits_for == waits_for) continue;
    j.reason = text;
    j.waits_for = waits_for;
    Save(j);
  }
  shares_ = std::move(d.shares);
  const auto t3 = std::chrono::steady_clock::now();
  // One line per cycle; at info only when it started or stopped jobs or was slow.
  const double total_ms = Ms(t3 - t0).count();
  stats_.cycles.Observe(static_cast<int64_t>(total_ms * 1000));
  const bool acted = !d.starts.empty() || !d.preemptions.empty();
  spdlog::log(acted || total_ms >= 100 ? spdlog::level::info : spdlog::level::debug,
              "scheduling cycle: {:.1f} ms (snapshot {:.1f}, decide {:.1f}, apply {:.1f}); {} nodes, "
              "{} pending, {} running; {} started, {} preempted; cpu {:.1f} ms",
              total_ms, Ms(t1 - t0).count(), Ms(t2 - t1).count(), Ms(t3 - t2).count(),
              nodes, pending, running, d.starts.size(), d.preemptions.size(), ThreadCpuMs() - cpu0);
}

void Controller::Launch(Job& job) {
  // What the job runs with comes from the store (memory keeps no environment or script).
  Job launched = job;
  if (Status s = LoadEnvironment(&launched); !s.ok()) {
    spdlog::error("store: cannot read the environment of job {}: {}", job.id, s.message());
    store_failed_ = true;  // the Step rolls back and herd-ctld restarts from the store
    return;
  }
  const int n = static_cast<int>(job.placement.size());
  std::string hosts;
  for (const auto& w : job.placement) hosts += (hosts.empty() ? "" : ",") + w.node;
  std::string master = "127.0.0.1";
  if (const Node* first = FindNode(job.placement[0].node);
      first != nullptr && !first->topology.emulated && !first->topology.hostname.empty()) {
    master = first->topology.hostname;
  }
  for (int w = 0; w < n; ++w) {
    proto::LaunchCommand cmd;
    cmd.job = launched;
    cmd.worker = w;
    cmd.env = {
        {"HERD_JOB_ID", std::to_string(job.id)},
        {"HERD_JOB_NAME", job.spec.name},
        {"HERD_PROJECT", job.spec.project},
        {"HERD_CLASS", job.spec.job_class},
        {"HERD_RESTART_COUNT", std::to_string(job.restart_count)},
        {"HERD_NUM_WORKERS", std::to_string(n)},
        {"HERD_WORKER", std::to_string(w)},
        {"HERD_HOSTS", hosts},
        {"WORLD_SIZE", std::to_string(n)},
        {"RANK", std::to_string(w)},
        {"LOCAL_RANK", "0"},
        {"NODE_RANK", std::to_string(w)},
        {"MASTER_ADDR", master},
        {"MASTER_PORT", std::to_string(29500 + job.id % 10000)},
    };
    if (job.spec.array_id != 0) {
      cmd.env.emplace_back("HERD_ARRAY_ID", std::to_string(job.spec.array_id));
      cmd.env.emplace_back("HERD_ARRAY_INDEX", std::to_string(job.spec.array_index));
    }
    SendToNode(job.placement[w].node, cmd);
  }
}

}  // namespace herd::ctld
