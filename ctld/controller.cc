#include "ctld/controller.h"

#include <malloc.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include "ctld/limits.h"
#include "spdlog/spdlog.h"

namespace herd::ctld {

using model::Job;
using model::JobState;

Controller::Controller(config::Config config, std::unique_ptr<store::Store> store,
                       std::unique_ptr<net::Server> server,
                       std::unique_ptr<auth::Authenticator> auth, const Clock* clock)
    : store_(std::move(store)), server_(std::move(server)), auth_(std::move(auth)), clock_(clock) {
  stats_.start_time = Now();
  Reconfigure(std::move(config));
}

void Controller::Reconfigure(config::Config config) {
  config_ = std::move(config);
  policy_ = sched::Policy{};
  sched::ParsePlacement(config_.scheduler.placement, &policy_.placement);
  policy_.reserve_after_s = config_.scheduler.reserve_after_s;
  policy_.reclaim_backoff_s = config_.scheduler.reclaim_backoff_s;
  history_.Reconfigure(config_.history);
  schedule_soon_ = true;
  const struct passwd* web = config_.web.user.empty() ? nullptr : getpwnam(config_.web.user.c_str());
  web_uid_ = web == nullptr ? -1 : static_cast<int64_t>(web->pw_uid);
}

Status Controller::Recover() {
  auto nodes = store_->LoadNodes();
  if (!nodes.ok()) return nodes.status();
  for (auto& rec : *nodes) {
    Node n;
    n.name = rec.name;
    n.topology = rec.topology;
    n.state = model::NodeState::kDown;
    n.drain = rec.state == model::NodeState::kDrain;
    n.drain_reason = rec.drain_reason;
    n.last_seen = rec.last_seen;
    // A node that was up gets a full timeout to speak again before its jobs are written off.
    n.last_seen_ms = clock_->MonotonicMillis();
    n.registered = false;
    nodes_[n.name] = std::move(n);
  }
  // Finished jobs older than min_job_age stay in the store, read from there when asked for; an
  // array is loaded whole when any of its members is (JobTable::ForgetEndedBefore).
  auto jobs = store_->LoadJobsInFlight(Now() - config_.controller.min_job_age_s);
  if (!jobs.ok()) return jobs.status();
  std::set<model::JobId> arrays;
  for (const Job& j : *jobs) {
    if (j.spec.array_id != 0) arrays.insert(j.spec.array_id);
  }
  std::set<model::JobId> loaded;
  for (const Job& j : *jobs) loaded.insert(j.id);
  for (model::JobId array : arrays) {
    auto members = store_->LoadArray(array);
    if (!members.ok()) return members.status();
    for (Job& m : *members) {
      if (loaded.insert(m.id).second) jobs->push_back(std::move(m));
    }
  }
  for (auto& j : *jobs) {
    if (j.state == JobState::kPending) {
      ++pending_of_uid_[j.uid];
      // Stored by a herd-ctld that kept no code: the first cycle gives it one.
      if (j.waits_for == model::WaitsFor::kNothing) j.waits_for = model::WaitsFor::kScheduler;
    }
    jobs_.Add(std::move(j), Now());
  }
  // Stops under way when herd-ctld went down are finished as they were asked (and re-sent to
  // each node when it registers).
  auto stops = store_->LoadJobStops();
  if (!stops.ok()) return stops.status();
  for (const auto& [id, stop] : *stops) {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || !model::HoldsResources(it->second.state)) continue;
    jobs_.ending[id] = JobTable::Ending{stop.final_state, stop.reason, stop.requeue_asked};
    if (stop.for_job != 0) jobs_.preempted_for[id] = stop.for_job;
  }
  // Nodes with jobs are presumed up until the timeout says otherwise.
  for (auto& [id, j] : jobs_) {
    if (!model::HoldsResources(j.state)) continue;
    for (auto& w : j.placement) {
      if (auto* n = FindNode(w.node)) n->state = model::NodeState::kUp;
    }
  }
  HERD_RETURN_IF_ERROR(history_.Recover(*store_, Now()));
  HERD_RETURN_IF_ERROR(RecoverUsage());
  spdlog::info("recovered {} jobs and {} nodes from the store", jobs_.size(), nodes_.size());
  return Status::Ok();
}

Status Controller::Step(int timeout_ms) {
  int64_t now_ms = clock_->MonotonicMillis();
  int wait = timeout_ms;
  if (schedule_soon_) {
    const auto left = soon_after_ - pacing_now_();
    const int64_t left_ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    wait = static_cast<int>(std::clamp<int64_t>(left_ms, 0, wait));
  }
  wait = static_cast<int>(std::min<int64_t>(wait, std::max<int64_t>(0, next_cycle_ms_ - now_ms)));
  auto batch = server_->Poll(wait);
  NoteLoopGap(wait);
  for (const std::string& peer : server_->TakeClosed()) keys_.Drop(peer);

  // A full disk refuses new work but not the reports of running jobs (see Store::CheckSpace).
  Status space = store_->CheckSpace();
  if (space.ok() != no_space_.ok()) {
    if (space.ok()) {
      spdlog::info("the disk of the state directory has room again: new work is accepted");
    } else {
      spdlog::error("{}", space.message());
    }
  }
  no_space_ = std::move(space);
  HERD_RETURN_IF_ERROR(store_->Begin());
  store_failed_ = false;
  recalled_.clear();
  for (const auto& in : batch) Handle(in);
  Tick();
  if (store_failed_) {
    // Memory may hold changes the disk does not: the only safe way on is a restart from disk.
    (void)store_->Rollback();
    return Internal("a write to the store failed; exiting so a restart reloads the last committed state");
  }
  Status committed = store_->Commit();
  if (!committed.ok()) return committed;
  for (auto& [peer, e] : outbox_) server_->Send(peer, e);
  outbox_.clear();
  for (const std::string& peer : disconnect_) server_->Disconnect(peer);
  disconnect_.clear();
  if (trim_heap_) {
    malloc_trim(0);
    trim_heap_ = false;
  }
  return Status::Ok();
}

void Controller::NoteLoopGap(int waited_ms) {
  const int64_t now_ms = clock_->MonotonicMillis();
  const int64_t away_ms = now_ms - polled_ms_ - waited_ms;
  const bool first = polled_ms_ == 0;
  polled_ms_ = now_ms;
  if (!first) stats_.loop_lag.Observe(std::max<int64_t>(away_ms, 0) * 1000);
  // Beyond half a node_timeout away, heartbeats of live nodes may still wait unread (in the
  // kernel or ZeroMQ's queues, which ran no more than this loop did): the nodes are not to blame.
  if (first || away_ms <= config_.scheduler.node_timeout_s * 1000 / 2) return;
  spdlog::warn("herd-ctld's loop did not run for {} ms (stopped, or starved of CPU): every node "
               "gets a fresh node_timeout from now",
               away_ms);
  for (auto& [name, n] : nodes_) n.last_seen_ms = std::max(n.last_seen_ms, now_ms);
}

void Controller::Tick() {
  int64_t now_ms = clock_->MonotonicMillis();
  if (config_.history.interval_s > 0) {
    // The first sample one interval after the start: nodes have registered by then.
    if (next_history_ms_ < 0) next_history_ms_ = now_ms + config_.history.interval_s * 1000;
    if (now_ms >= next_history_ms_) {
      RecordHistory();
      next_history_ms_ = now_ms + config_.history.interval_s * 1000;
    }
  }
  const auto start = pacing_now_();
  const bool due = now_ms >= next_cycle_ms_;
  if (!due && !(schedule_soon_ && start >= soon_after_)) return;
  // Timers are due on the cycle interval only: a request makes nothing of theirs due, and each
  // walks every job.
  if (due) {
    CheckNodes();
    CheckTimeLimits();
    ForgetOldJobs();
    next_cycle_ms_ = now_ms + config_.scheduler.cycle_interval_ms;
  }
  Schedule();
  schedule_soon_ = false;
  // A request asks for a cycle at once, but a stream of them (submits) must not turn the loop
  // into back-to-back cycles over a large queue: the next early cycle waits four times this
  // one's cost, so requests keep most of the time. A cheap cycle (idle cluster) waits nothing.
  // Real time, not clock_: this paces the CPU, and a test's fake clock must not stall it.
  const auto end = pacing_now_();
  soon_after_ = end + 4 * (end - start);
}

// ---- message dispatch ----

void Controller::Handle(const net::Incoming& in) {
  const auto& e = in.envelope;
  auto who = Verify(in);
  if (!who.ok()) {
    spdlog::warn("refused '{}' from an unauthenticated peer: {}", e.type, who.status().message());
    ReplyError(in, who.status());
    return;
  }
  server_->Authenticated(in.peer);  // no longer among the connections that give way to new ones
  const rpc::Route* route = rpc::FindRoute(e.type);
  if (route == nullptr) {
    ReplyError(in, Invalid("unknown request '" + e.type +
                           "': herd and herd-ctld versions may differ"));
    return;
  }
  using rpc::Caller;
  switch (route->caller) {
    case Caller::kUser:
      break;
    case Caller::kAdmin:
      if (!IsAdmin(*who)) {
        ReplyError(in, Denied("permission denied: herd admin is for root and the admins listed "
                              "in herd.toml"));
        return;
      }
      break;
    case Caller::kNode:
      if (who->uid != 0 && who->uid != getuid()) {
        ReplyError(in, Denied("permission denied: only root or herd-ctld's user may speak for a "
                              "node"));
        return;
      }
      break;
    case Caller::kWeb:
      if (!IsWebUser(*who)) {
        spdlog::warn("refused '{}' from uid {}: only herd-web's user ([web] user) sends it",
                     e.type, who->uid);
        ReplyError(in, Denied("permission denied: only herd-web's user ([web] user in "
                              "herd.toml) may relay requests for a web token"));
        return;
      }
      break;
  }
  Status s = route->handle(*this, in, *who);
  if (!s.ok()) ReplyError(in, s);
}

void Controller::Reply(const net::Incoming& in, proto::Envelope e) {
  // herd-noded takes only messages that carry herd-ctld's credential; the CLI needs none.
  const rpc::Route* route = rpc::FindRoute(in.envelope.type);
  if (route != nullptr && route->caller == rpc::Caller::kNode) {
    SendSigned(in.peer, std::move(e));
    return;
  }
  outbox_.emplace_back(in.peer, std::move(e));
}

void Controller::SendSigned(const std::string& route, proto::Envelope e) {
  auto cred = auth_->Credential(auth::MessageBinding(e.type, e.id, e.body));
  if (!cred.ok()) {
    spdlog::error("cannot make a credential for '{}' to a node: {}", e.type,
                  cred.status().message());
    return;
  }
  e.cred = std::move(*cred);
  outbox_.emplace_back(route, std::move(e));
}

void Controller::ReplyError(const net::Incoming& in, const Status& s) {
  proto::ErrorReply r{static_cast<int>(s.code()), s.message()};
  Reply(in, proto::MakeEnvelope(r, in.envelope.id));
}

bool Controller::SetPendingReason(Job& job, const model::PendingReason& why) {
  std::string text = model::ReasonText(why);
  const model::WaitsFor waits_for = model::WaitsForOf(why.code);
  // The store keeps no code: a job read back from it gets its code here without a write.
  if (const char* code = model::ReasonCodeName(why.code); job.reason_code != code) {
    job.reason_code = code;
  }
  if (job.reason == text && job.waits_for == waits_for) return false;
  job.reason = std::move(text);
  job.waits_for = waits_for;
  return true;
}

void Controller::Save(const Job& job) {
  Status s = store_->UpdateJob(job);
  if (!s.ok()) {
    spdlog::error("store: cannot save job {}: {}", job.id, s.message());
    store_failed_ = true;
  }
}

void Controller::SaveNode(const Node& n) {
  Status s = store_->UpsertNode(n.name, n.topology, n.drain ? model::NodeState::kDrain : n.state,
                                n.last_seen, n.drain_reason);
  if (!s.ok()) {
    spdlog::error("store: cannot save node {}: {}", n.name, s.message());
    store_failed_ = true;
  }
}

void Controller::Event(model::JobId id, const std::string& what) {
  Status s = store_->AppendJobEvent(id, Now(), what);
  if (!s.ok()) {
    spdlog::error("store: cannot record event of job {}: {}", id, s.message());
    store_failed_ = true;
  }
  spdlog::info("job {}: {}", id, what);
}

Controller::Node* Controller::FindNode(const std::string& name) {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : &it->second;
}

bool Controller::IsAdmin(const auth::Identity& who) const {
  return who.uid == 0 ||
         std::find(config_.admins.begin(), config_.admins.end(), who.user) != config_.admins.end();
}

bool Controller::MayActOn(const auth::Identity& who, const Job& job) const {
  return who.uid == job.uid || IsAdmin(who);
}

Status Controller::ReloadConfig() {
  if (config_path_.empty()) return Invalid("herd-ctld was started without a configuration file");
  auto fresh = config::LoadConfig(config_path_);
  if (!fresh.ok()) {
    return Invalid("reload refused, the running configuration stays: " + fresh.status().message());
  }
  if (Status web = CheckWebUser(*fresh, geteuid()); !web.ok()) {
    return Invalid("reload refused, the running configuration stays: " + web.message());
  }
  Reconfigure(std::move(*fresh));
  spdlog::info("configuration reloaded from {}", config_path_);
  return Status::Ok();
}

// ---- jobs and nodes as requests show them ----

Job Controller::Redacted(const Job& job) const {
  Job j = job;
  j.spec.env.clear();
  j.spec.script.clear();
  if (config_.controller.private_commands) {
    j.spec.argv.clear();
    j.spec.sweep.clear();
    j.spec.cwd.clear();
    j.spec.image.clear();
    j.spec.volumes.clear();
    j.spec.output.clear();
    j.spec.error.clear();
    // The name herd made up from the command would tell it; a reason's details (after its first
    // ':') may quote the command, its directory, image or volumes.
    if (j.spec.name == DefaultName(job.spec.argv)) j.spec.name = "job";
    if (const size_t colon = j.reason.find(':'); colon != std::string::npos) {
      j.reason = j.reason.substr(0, colon) + " (details for its owner only)";
    }
  }
  return j;
}

Result<const Job*> Controller::OwnJob(const auth::Identity& who, model::JobId id) const {
  const Job* found = FindJob(id);
  if (found == nullptr) return NotFound("job " + std::to_string(id) + " not found");
  const Job& j = *found;
  if (!MayActOn(who, j)) {
    return Denied("permission denied: job " + std::to_string(j.id) + " belongs to " + j.user);
  }
  return &j;
}

std::string Controller::ShownNodeState(const Node& n) {
  const bool drained = n.drain || !n.unavailable.empty();
  return drained && n.state == model::NodeState::kUp ? "DRAIN" : model::NodeStateName(n.state);
}

}  // namespace herd::ctld
