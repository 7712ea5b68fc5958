// Node registration, heartbeats and job events: how the controller learns what runs where,
// and every transition that follows from it.
#include <algorithm>
#include <set>
#include <tuple>
#include <vector>

#include "common/model/units.h"
#include "ctld/controller.h"
#include "spdlog/spdlog.h"

namespace herd::ctld {

using model::Job;
using model::JobState;

Controller::Node* Controller::NodeOfPeer(const std::string& name, const std::string& peer) {
  Node* n = FindNode(name);
  return n != nullptr && n->registered && n->route == peer ? n : nullptr;
}

void Controller::Reconcile(Node& node, const std::vector<proto::JobReport>& reports,
                           bool complete, bool starting_only) {
  std::set<std::tuple<model::JobId, int, int>> seen;  // (job, run, worker)
  for (const auto& r : reports) {
    seen.insert({r.id, r.run, r.worker});
    OnWorkerReport(node.name, r);
    if (r.state == "ENDED") SendToNode(node.name, proto::EventAck{r.id, r.worker, r.run});
  }
  if (!complete) return;
  // After a node daemon restart, whatever it does not know of was lost with it.
  for (auto& [id, j] : jobs_) {
    if (!model::HoldsResources(j.state)) continue;
    for (size_t w = 0; w < j.placement.size(); ++w) {
      if (j.placement[w].node != node.name) continue;
      if (seen.count({id, j.restart_count, static_cast<int>(w)})) continue;
      if (jobs_.ended_workers[id].count(static_cast<int>(w))) continue;
      if (j.state == JobState::kStarting) {
        // Never reported started: its launch went to a daemon or connection now gone, so
        // nothing of it ran here and nothing is lost by running it again.
        LaunchLost(j, node.name);
        break;
      }
      if (starting_only) continue;
      WorkerEnded(j, static_cast<int>(w), -1, "lost when herd-noded on " + node.name + " restarted");
    }
  }
}

void Controller::LaunchLost(Job& job, const std::string& node) {
  for (const auto& w : job.placement) {
    if (w.node == node) continue;
    SendToNode(w.node, proto::SignalCommand{job.id, "kill", 0, "a worker did not start on " + node,
                                            job.restart_count});
  }
  auto end = jobs_.ending.find(job.id);
  if (end != jobs_.ending.end() && end->second.final_state != JobState::kPending) {
    Finish(job, end->second.final_state, -1, end->second.reason);
  } else {
    Requeue(job, "requeued: its launch on " + node +
                     " was lost with a herd-noded restart or reconnection, before it started");
  }
}

void Controller::OnWorkerReport(const std::string& node, const proto::JobReport& r) {
  auto it = jobs_.find(r.id);
  const bool ours = it != jobs_.end() && model::HoldsResources(it->second.state) &&
                    r.run == it->second.restart_count && r.worker >= 0 &&
                    r.worker < static_cast<int>(it->second.placement.size()) &&
                    it->second.placement[r.worker].node == node;
  if (!ours) {
    if (r.state != "ENDED") {
      // A run this node should not run (cancelled, or requeued while the node was away: the job
      // may run again, even here, as a later run that this report never touches).
      spdlog::warn("node {} runs job {} run {} worker {} that it does not own: killing it", node,
                   r.id, r.run, r.worker);
      SendToNode(node, proto::SignalCommand{r.id, "kill", 0, "not owned by this node any more",
                                            r.run});
    }
    return;
  }
  Job& j = it->second;
  // Still starting on the node (its image unpacking): not running yet, and not lost.
  if (r.state == "STARTING") return;
  RecordUsage(j, r);
  if (r.state == "ENDED") {
    WorkerEnded(j, r.worker, r.exit_code, r.reason, r.requeue);
  } else if (j.state == JobState::kStarting) {
    jobs_.Transition(j, JobState::kRunning, Now());
    Save(j);
    Event(j.id, "running on " + node);
  }
}

void Controller::RecordUsage(Job& job, const proto::JobReport& r) {
  const model::JobUsage& u = r.usage;
  if (u.cpu_ms < 0 && u.memory_bytes < 0 && u.memory_peak_bytes < 0) return;  // no cgroup
  model::JobUsage& w = jobs_.worker_usage[job.id][r.worker];
  // Counters only grow; where the kernel keeps no peak, the highest sample stands for it.
  w.cpu_ms = std::max(w.cpu_ms, u.cpu_ms);
  w.memory_bytes = r.state == "ENDED" && u.memory_bytes >= 0 ? 0 : u.memory_bytes;
  w.memory_peak_bytes = std::max({w.memory_peak_bytes, u.memory_peak_bytes, u.memory_bytes});
  model::JobUsage total;
  auto add = [](int64_t& sum, int64_t v) {
    if (v >= 0) sum = std::max<int64_t>(sum, 0) + v;
  };
  for (const auto& [worker, each] : jobs_.worker_usage[job.id]) {
    add(total.cpu_ms, each.cpu_ms);
    add(total.memory_bytes, each.memory_bytes);
    add(total.memory_peak_bytes, each.memory_peak_bytes);
  }
  job.usage = total;
}

void Controller::WorkerEnded(Job& job, int worker, int exit_code, const std::string& reason,
                             bool requeue) {
  auto& ended = jobs_.ended_workers[job.id];
  if (!ended.insert(worker).second) return;
  if (requeue && !jobs_.ending.count(job.id)) {
    // It never ran (its node could not start it): nothing is lost by running it again.
    const std::string why = "requeued: worker " + std::to_string(worker) + " " + reason;
    if (ended.size() < job.placement.size()) {
      StopJob(job, JobState::kPending, why, static_cast<int>(config_.scheduler.kill_grace_s * 1000));
    } else {
      Requeue(job, why);
    }
    return;
  }
  const bool failed = exit_code != 0 || !reason.empty();
  if (failed && !jobs_.ending.count(job.id)) job.exit_code = exit_code;  // the first failure's code
  if (ended.size() < job.placement.size()) {
    if (failed && !jobs_.ending.count(job.id)) {
      std::string why = "worker " + std::to_string(worker) + " failed (" +
                        (reason.empty() ? "exit code " + std::to_string(exit_code) : reason) + ")";
      StopJob(job, JobState::kFailed, why, static_cast<int>(config_.scheduler.kill_grace_s * 1000));
    }
    return;
  }
  jobs_.ended_workers.erase(job.id);
  auto end = jobs_.ending.find(job.id);
  if (end != jobs_.ending.end()) {
    JobTable::Ending e = end->second;  // Requeue or Finish erases it, here and in the store
    if (e.final_state == JobState::kPending) {
      // The scheduler stops a job to requeue it to make room; herd requeue is no preemption.
      if (!e.requeue_asked) job.preemptions++;
      Requeue(job, e.reason);
    } else {
      Finish(job, e.final_state, job.exit_code, e.reason);
    }
    return;
  }
  // Every worker ended on its own and only this last one may have failed.
  if (!failed) {
    Finish(job, JobState::kCompleted, 0, "");
  } else {
    Finish(job, JobState::kFailed, exit_code,
           reason.empty() ? "exit code " + std::to_string(exit_code) : reason);
  }
}

void Controller::Finish(Job& job, JobState state, int exit_code, std::string reason) {
  const bool stop_dropped = jobs_.Transition(job, state, Now());
  job.exit_code = exit_code;
  job.reason = std::move(reason);
  job.end_time = Now();
  if (stop_dropped) SaveStop(job.id);
  Save(job);
  Event(job.id, std::string("ended ") + model::JobStateName(state) +
                    (job.reason.empty() ? "" : ": " + job.reason));
  schedule_soon_ = true;
}

void Controller::Requeue(Job& job, std::string reason) {
  const bool stop_dropped = jobs_.Transition(job, JobState::kPending, Now());
  job.placement.clear();
  job.exit_code = -1;
  job.restart_count++;
  job.reason = std::move(reason);
  job.usage = {};  // the next run is measured afresh
  ++pending_of_uid_[job.uid];
  if (stop_dropped) SaveStop(job.id);
  Save(job);
  Event(job.id, "requeued (" + job.reason + ")");
  schedule_soon_ = true;
}

void Controller::StopJob(Job& job, JobState final_state, std::string reason, int grace_ms,
                         model::JobId for_job) {
  auto [it, inserted] = jobs_.ending.try_emplace(job.id, JobTable::Ending{final_state, reason});
  if (!inserted) {
    // A cancel overrides a requeue already under way; nothing else changes the outcome.
    if (final_state != JobState::kCancelled) return;
    it->second = JobTable::Ending{final_state, reason};
  }
  if (for_job != 0) jobs_.preempted_for[job.id] = for_job;
  // Committed with the kill: a herd-ctld restarted before the end still ends the job this way.
  SaveStop(job.id);
  const auto& ended = jobs_.ended_workers[job.id];
  for (size_t w = 0; w < job.placement.size(); ++w) {
    if (ended.count(static_cast<int>(w))) continue;
    SendToNode(job.placement[w].node,
               proto::SignalCommand{job.id, "kill", grace_ms, reason, job.restart_count});
  }
  if (final_state == JobState::kPending && job.state != JobState::kPreempted) {
    jobs_.Transition(job, JobState::kPreempted, Now());
  }
  job.reason = reason;
  Save(job);
  Event(job.id, "stopping: " + reason);
}

void Controller::SaveStop(model::JobId id) {
  std::optional<store::JobStop> stop;
  if (auto e = jobs_.ending.find(id); e != jobs_.ending.end()) {
    auto f = jobs_.preempted_for.find(id);
    stop = store::JobStop{e->second.final_state, e->second.reason,
                          f == jobs_.preempted_for.end() ? 0 : f->second,
                          e->second.requeue_asked};
  }
  Status s = store_->SetJobStop(id, stop);
  if (!s.ok()) {
    spdlog::error("store: cannot save the stop of job {}: {}", id, s.message());
    store_failed_ = true;
  }
}

void Controller::ResendStops(const Node& node) {
  for (const auto& [id, e] : jobs_.ending) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    const Job& j = it->second;
    auto ended = jobs_.ended_workers.find(id);
    for (size_t w = 0; w < j.placement.size(); ++w) {
      if (j.placement[w].node != node.name) continue;
      if (ended != jobs_.ended_workers.end() && ended->second.count(static_cast<int>(w))) continue;
      // The node keeps the earliest deadline it was given, so a resent kill grants no more grace.
      const int64_t grace_s = e.final_state == JobState::kPending
                                  ? config_.scheduler.preempt_grace_s
                                  : config_.scheduler.kill_grace_s;
      SendToNode(node.name, proto::SignalCommand{id, "kill", static_cast<int>(grace_s * 1000),
                                                 e.reason, j.restart_count});
      break;  // one kill stops every worker of the job on the node
    }
  }
}

void Controller::NodeLost(Node& node, const std::string& why) {
  node.state = model::NodeState::kDown;
  node.registered = false;
  node.route.clear();  // nothing goes to it until it registers again
  SaveNode(node);
  spdlog::warn("node {} is DOWN: {}", node.name, why);
  for (auto& [id, j] : jobs_) {
    if (!model::HoldsResources(j.state)) continue;
    bool here = std::any_of(j.placement.begin(), j.placement.end(),
                            [&](const auto& w) { return w.node == node.name; });
    if (!here) continue;
    // Workers elsewhere must not run on alone.
    for (const auto& w : j.placement) {
      if (w.node != node.name) {
        SendToNode(w.node, proto::SignalCommand{j.id, "kill", 0, "node " + node.name + " failed",
                                                j.restart_count});
      }
    }
    const auto* cls = config_.FindClass(j.spec.job_class);
    auto end = jobs_.ending.find(j.id);
    std::string reason = "node " + node.name + " " + why;
    if (end != jobs_.ending.end() && end->second.final_state != JobState::kPending) {
      Finish(j, end->second.final_state, -1, end->second.reason);
    } else if (cls != nullptr && cls->preemptible) {
      Requeue(j, "requeued after " + reason);
    } else {
      Finish(j, JobState::kNodeFail, -1, reason);
    }
  }
  schedule_soon_ = true;
}

void Controller::CheckNodes() {
  const int64_t now_ms = clock_->MonotonicMillis();
  const int64_t timeout_ms = config_.scheduler.node_timeout_s * 1000;
  // Messages read this long ago say nothing of now (the loop stalled since its Poll): the next
  // Step reads what waits and judges then (NoteLoopGap).
  if (now_ms - polled_ms_ > timeout_ms / 2) return;
  for (auto& [name, n] : nodes_) {
    if (n.state == model::NodeState::kUp && now_ms - n.last_seen_ms > timeout_ms) {
      NodeLost(n, "stopped responding (no heartbeat for " +
                      model::FormatDuration(config_.scheduler.node_timeout_s) + ")");
    }
  }
}

std::vector<Job*> Controller::RunningJobsReported(const std::vector<proto::JobReport>& reports) {
  std::vector<Job*> out;
  std::set<model::JobId> seen;  // a job reports once per worker on the node
  for (const auto& r : reports) {
    auto it = jobs_.find(r.id);
    if (it == jobs_.end() || it->second.state != JobState::kRunning) continue;
    if (seen.insert(r.id).second) out.push_back(&it->second);
  }
  return out;
}

void Controller::UpdateIdle(const Node& node, const std::vector<Job*>& jobs) {
  for (const Job* job : jobs) {
    const Job& j = *job;
    const auto* cls = config_.FindClass(j.spec.job_class);
    if (cls == nullptr || cls->idle_timeout_s <= 0) continue;
    bool has_gpus = false, idle = true;
    for (const auto& w : j.placement) {
      if (w.node != node.name) continue;
      for (int g : w.gpus) {
        has_gpus = true;
        auto m = node.gpu_metrics.find(g);
        // Unknown activity is never taken for idleness.
        idle = idle && m != node.gpu_metrics.end() && m->second.utilization_pct == 0;
      }
    }
    if (!has_gpus) continue;
    if (idle) {
      jobs_.idle_since.try_emplace(j.id, Now());
    } else {
      jobs_.idle_since.erase(j.id);
    }
  }
}

void Controller::CheckInputIdle(Job& job, int64_t input_idle_ms) {
  if (input_idle_ms < 0 || job.state != JobState::kRunning || jobs_.ending.count(job.id)) return;
  if (job.spec.gpu_milli > 0) return;  // GPU sessions keep idle_timeout, which watches the GPUs
  const auto* cls = config_.FindClass(job.spec.job_class);
  if (cls == nullptr || cls->idle_input_timeout_s <= 0) return;
  if (input_idle_ms < cls->idle_input_timeout_s * 1000) return;
  StopJob(job, JobState::kCancelled,
          "stopped: its terminal got no input for " + model::FormatDuration(input_idle_ms / 1000) +
              " (idle_input_timeout of class " + cls->name + " is " +
              model::FormatDuration(cls->idle_input_timeout_s) + ")",
          static_cast<int>(config_.scheduler.kill_grace_s * 1000));
}

void Controller::AccountGpuUse(const Node& node, const std::vector<Job*>& jobs,
                               int64_t elapsed_ms) {
  // Each sample stands for the time since the node's previous heartbeat, but no more than two
  // intervals: after a silence, the GPUs' activity in between is unknown.
  const int64_t interval_ms = config_.scheduler.heartbeat_interval_ms;
  const int64_t weight_ms = std::clamp<int64_t>(elapsed_ms, 0, 2 * interval_ms);
  if (weight_ms == 0) return;
  for (Job* job : jobs) {
    Job& j = *job;
    for (const auto& w : j.placement) {
      if (w.node != node.name) continue;
      for (int g : w.gpus) {
        auto m = node.gpu_metrics.find(g);
        if (m == node.gpu_metrics.end() || m->second.utilization_pct < 0) continue;
        j.gpu_util_sum += std::min(100, m->second.utilization_pct) * weight_ms;
        j.gpu_sampled_ms += weight_ms;
      }
    }
  }
}

void Controller::CheckTimeLimits() {
  const int64_t now = Now();
  for (const auto& [id, since] : jobs_.idle_since) {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.state != JobState::kRunning || jobs_.ending.count(id)) continue;
    const auto* cls = config_.FindClass(it->second.spec.job_class);
    if (cls == nullptr || cls->idle_timeout_s <= 0 || now - since < cls->idle_timeout_s) continue;
    StopJob(it->second, JobState::kCancelled,
            "stopped: its GPUs were idle for " + model::FormatDuration(now - since) +
                " (idle_timeout of class " + cls->name + " is " +
                model::FormatDuration(cls->idle_timeout_s) + ")",
            static_cast<int>(config_.scheduler.kill_grace_s * 1000));
  }
  for (auto& [id, j] : jobs_) {
    if (j.state != JobState::kRunning || j.spec.time_limit_s <= 0 || jobs_.ending.count(id)) continue;
    if (now >= j.start_time + j.spec.time_limit_s) {
      StopJob(j, JobState::kTimeout,
              "time limit of " + model::FormatDuration(j.spec.time_limit_s) + " reached",
              static_cast<int>(config_.scheduler.kill_grace_s * 1000));
    }
  }
}

}  // namespace herd::ctld
