#include "noded/agent.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <set>

#include "common/model/output_path.h"
#include "common/model/units.h"
#include "spdlog/spdlog.h"

namespace herd::noded {

std::string JobKey(model::JobId id, int run, int worker) {
  return std::to_string(id) + "." + std::to_string(run) + "." + std::to_string(worker);
}

bool ParseJobKey(const std::string& key, model::JobId* id, int* run, int* worker) {
  const auto first = key.find('.');
  const auto second = first == std::string::npos ? first : key.find('.', first + 1);
  if (second == std::string::npos) return false;
  try {
    *id = std::stoll(key.substr(0, first));
    *run = std::stoi(key.substr(first + 1, second - first - 1));
    *worker = std::stoi(key.substr(second + 1));
  } catch (...) {
    return false;
  }
  return true;
}

namespace {

const char* StateName(runtime::JobStatus::State s) {
  switch (s) {
    case runtime::JobStatus::kRunning:
      return "RUNNING";
    case runtime::JobStatus::kSuspended:
      return "SUSPENDED";
    case runtime::JobStatus::kExited:
      return "ENDED";
    case runtime::JobStatus::kStarting:
      return "STARTING";
  }
  return "ENDED";
}

constexpr int kResendMs = 2000;
// After a write failed for lack of space, the node takes jobs again only with this much room
// (a job's directory, spec and first output), even where min_free_space is smaller.
constexpr int64_t kRoomAfterFailedWrite = int64_t{1} << 20;

// Random, so that each Agent (one per herd-noded process, many in herd-noded-emulator) differs
// from every earlier one of its node; never 0, which means "unknown" to herd-ctld.
uint64_t DrawInstance() {
  std::random_device random;
  uint64_t id = 0;
  while (id == 0) id = (static_cast<uint64_t>(random()) << 32) | random();
  return id;
}

model::JobUsage ToJobUsage(const runtime::CgroupUsage& u) {
  return {u.cpu_ns < 0 ? -1 : u.cpu_ns / 1000000, u.memory_bytes, u.memory_peak_bytes};
}

}  // namespace

Agent::Agent(AgentOptions options, std::unique_ptr<runtime::Runtime> runtime,
             std::unique_ptr<auth::Authenticator> auth,
             std::unique_ptr<gpu::MetricsSource> metrics, const Clock* clock)
    : options_(std::move(options)),
      runtime_(std::move(runtime)),
      auth_(std::move(auth)),
      metrics_(std::move(metrics)),
      mps_(options_.state_dir, ""),
      clock_(clock),
      instance_(DrawInstance()) {
}

std::vector<proto::GpuMetric> Agent::GpuMetrics() {
  std::vector<proto::GpuMetric> out;
  auto samples = metrics_->Sample();
  if (!samples.ok()) {
    spdlog::warn("GPU metrics from {}: {}", metrics_->Name(), samples.status().message());
    return out;
  }
  for (const auto& s : *samples) {
    out.push_back({s.index, s.utilization_pct, s.memory_used_mib});
  }
  return out;
}

Status Agent::Connect() {
  // A random routing id: herd-ctld learns which connection speaks for this node from a Register
  // it verified, never from a name any peer could claim.
  auto dealer = net::ConnectZmq(options_.controller, "", options_.context,
                                options_.max_message_bytes);
  if (!dealer.ok()) return dealer.status();
  return Connect(std::move(*dealer));
}

Status Agent::Connect(std::unique_ptr<net::Dealer> dealer) {
  dealer_ = std::move(dealer);
  mkdir((options_.state_dir + "/hostfiles").c_str(), 0755);
  return Status::Ok();
}

void Agent::Send(const proto::Envelope& e) {
  proto::Envelope out = e;
  auto cred = auth_->Credential(auth::MessageBinding(out.type, out.id, out.body));
  if (!cred.ok()) {
    spdlog::error("cannot make a credential: {}", cred.status().message());
    return;
  }
  out.cred = *cred;
  if (Status s = dealer_->Send(out); !s.ok()) spdlog::warn("send failed: {}", s.message());
}

void Agent::Step(int timeout_ms) {
  int64_t now = clock_->MonotonicMillis();
  if (!registered_ && now >= next_register_ms_) {
    proto::RegisterRequest req{options_.name, options_.topology, Reports(true), instance_,
                               sessions_ ? sessions_->Endpoint() : ""};
    SendBody(req);
    next_register_ms_ = now + 1000;
  }
  int wait = static_cast<int>(std::clamp<int64_t>(NextDueMs() - now, 0, timeout_ms));
  // A job's start is never waited for: its shim's answer wakes this loop like a message does.
  std::vector<int> fds = runtime_->StartFds(), writable;
  if (sessions_) {
    for (int fd : sessions_->Fds()) fds.push_back(fd);
    writable = sessions_->WritableFds();
  }
  net::WaitAny({dealer_.get()}, wait, fds, writable);
  for (auto e = dealer_->Receive(0); e; e = dealer_->Receive(0)) Handle(*e);
  if (sessions_) sessions_->Step();
  TakeStartOutcomes();
  now = clock_->MonotonicMillis();
  if (now >= next_poll_ms_) {
    Report();
    next_poll_ms_ = now + options_.poll_interval_ms;
  }
  if (registered_ && now >= next_heartbeat_ms_) SendHeartbeat();
  if (options_.log_retention_s > 0 && now >= next_log_prune_ms_) {
    next_log_prune_ms_ = now + 3'600'000;
    auto pruned = runtime_->PruneLogs(std::chrono::seconds(options_.log_retention_s));
    if (!pruned.ok()) {
      spdlog::warn("pruning old jobs' logs: {}", pruned.status().message());
    } else if (*pruned > 0) {
      spdlog::info(
          "deleted the logs of {} jobs that ended over {} s ago "
          "(job_retention)",
          *pruned, options_.log_retention_s);
    }
  }
}

void Agent::SendHeartbeat() {
  CheckStateDisk();
  SendBody(proto::Heartbeat{options_.name, Reports(false), GpuMetrics(), unavailable_});
  next_heartbeat_ms_ = clock_->MonotonicMillis() + heartbeat_ms_;
}

void Agent::CheckStateDisk() {
  struct statvfs st;
  if (statvfs(options_.state_dir.c_str(), &st) != 0) return;  // keep what was known
  const int64_t free = static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
  const int64_t min_free = options_.min_free_space_bytes;
  std::string why;
  if (write_failed_ && free < std::max(min_free, kRoomAfterFailedWrite)) {
    why = "state directory " + options_.state_dir + " is full: a job's files could not be written";
  } else if (free < min_free) {
    why = "state directory " + options_.state_dir + " is full: less than " +
          model::FormatSizeMiB(min_free >> 20) + " free (node.min_free_space)";
  } else {
    write_failed_ = false;
  }
  if (why == unavailable_) return;
  if (why.empty()) {
    spdlog::info("state directory {} has room again: taking new jobs", options_.state_dir);
  } else {
    spdlog::warn("taking no new job: {}", why);
  }
  unavailable_ = why;
}

int64_t Agent::NextDueMs() const {
  return std::min(next_poll_ms_, registered_ ? next_heartbeat_ms_ : next_register_ms_);
}

std::vector<proto::JobReport> Agent::Reports(bool include_ended) {
  std::vector<proto::JobReport> out;
  std::set<std::string> with_session;
  for (const auto& st : runtime_->Poll()) {
    if (st.state == runtime::JobStatus::kExited && !include_ended) continue;
    proto::JobReport r;
    if (!ParseJobKey(st.job_key, &r.id, &r.run, &r.worker)) continue;
    r.state = StateName(st.state);
    r.exit_code = st.exit_code;
    r.reason = st.reason;
    if (st.session && sessions_) {
      r.session = sessions_->State(st.job_key);
      if (st.state != runtime::JobStatus::kExited) {
        r.input_idle_ms = sessions_->InputIdleMs(st.job_key);
        with_session.insert(st.job_key);
      }
    }
    r.usage = ToJobUsage(st.state == runtime::JobStatus::kExited ? st.usage
                                                                 : runtime_->Usage(st.job_key));
    out.push_back(std::move(r));
  }
  if (sessions_) sessions_->KeepInputClocks(with_session);
  if (include_ended) {
    for (const auto& [key, r] : failed_launches_) out.push_back(r);
  }
  return out;
}

// Sends a job event for every job whose state changed, and resends unacknowledged ends.
void Agent::Report() {
  if (!registered_) return;
  const int64_t now = clock_->MonotonicMillis();
  for (const auto& st : runtime_->Poll()) {
    auto& last = last_state_[st.job_key];
    const bool ended = st.state == runtime::JobStatus::kExited;
    bool send = false;
    if (ended) {
      auto it = unacked_.find(st.job_key);
      send = it == unacked_.end() || now >= it->second;
      if (send) unacked_[st.job_key] = now + kResendMs;
    } else if (last != st.state || !last_state_.count(st.job_key + "#sent")) {
      send = st.state == runtime::JobStatus::kRunning;
      last_state_[st.job_key + "#sent"] = st.state;
    }
    last = st.state;
    if (!send) continue;
    proto::JobEvent ev;
    ev.node = options_.name;
    if (!ParseJobKey(st.job_key, &ev.report.id, &ev.report.run, &ev.report.worker)) continue;
    ev.report.state = StateName(st.state);
    ev.report.exit_code = st.exit_code;
    ev.report.reason = st.reason;
    if (ended) ev.report.usage = ToJobUsage(st.usage);
    SendBody(ev);
  }
  for (auto& [key, r] : failed_launches_) {
    auto& next = unacked_[key];
    if (now < next) continue;
    next = now + kResendMs;
    SendBody(proto::JobEvent{options_.name, r});
  }
}

void Agent::Handle(const proto::Envelope& e) {
  // Whoever listens at the controller's address (any local user while herd-ctld is down) gets
  // this node's Register: only a credential proves a message comes from herd-ctld.
  auto who = auth_->Verify(e.cred, auth::MessageBinding(e.type, e.id, e.body));
  if (!who.ok()) {
    spdlog::warn("dropped '{}' from {}: {}", e.type, options_.controller, who.status().message());
    return;
  }
  if (who->uid != 0 && who->uid != getuid() &&
      static_cast<int64_t>(who->uid) != options_.controller_uid) {
    spdlog::warn("dropped '{}' from {}: sent as uid {} ({}), not as root, herd-noded's user or "
                 "herd-ctld's ([controller] user)",
                 e.type, options_.controller, who->uid, who->user);
    return;
  }
  Dispatch(e);
}

void Agent::Dispatch(const proto::Envelope& e) {
  const CommandRoute* route = FindCommandRoute(e.type);
  if (route == nullptr) {
    spdlog::warn("ignoring unexpected message '{}' from herd-ctld", e.type);
    return;
  }
  route->handle(*this, e);
}

void Agent::TakeStartOutcomes() {
  for (const runtime::StartOutcome& outcome : runtime_->TakeStartOutcomes()) {
    if (outcome.status.ok()) {
      spdlog::info("started job {}", outcome.job_key);
      next_poll_ms_ = 0;  // reported RUNNING at once
    } else {
      mps_.Release(outcome.job_key);
      FailLaunch(outcome.job_key, outcome.status);
    }
  }
}

void Agent::FailLaunch(const std::string& job_key, const Status& s) {
  model::JobId id = 0;
  int run = 0, worker = 0;
  if (!ParseJobKey(job_key, &id, &run, &worker)) return;
  spdlog::warn("job {} worker {} did not start: {}", id, worker, s.message());
  // A full disk is the node's fault, not the job's: it is requeued, and the node says first
  // that it takes no new job, so that herd-ctld does not send the job straight back.
  const bool no_space = runtime::IsNoSpace(s);
  proto::JobReport r{id, worker, "ENDED", 127, "did not start: " + s.message(), {}, run, no_space};
  if (no_space) {
    write_failed_ = true;
    r.reason = "did not start on " + options_.name + ": " + s.message();
    if (registered_) SendHeartbeat();
  }
  failed_launches_[job_key] = r;
  unacked_[job_key] = 0;
}

}  // namespace herd::noded
