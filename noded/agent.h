// Agent: herd-noded's loop. Registers with herd-ctld, heartbeats, runs what it is told through
// the Runtime, and reports every job start and end until the controller acknowledges it, so no
// exit code is lost across restarts of either daemon.
// Built by noded/main.cc and integration tests; not thread-safe: one thread calls Step().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>

#include "common/auth/auth.h"
#include "common/model/node.h"
#include "common/net/net_zmq.h"
#include "common/proto/codec.h"
#include "common/proto/messages.h"
#include "common/util/clock.h"
#include "noded/commands.h"
#include "noded/gpu/gpu.h"
#include "noded/runtime/runtime.h"
#include "noded/sessions.h"
#include "spdlog/spdlog.h"

namespace herd::noded {

struct AgentOptions {
  std::string name;          // node name (the connection's routing id is random)
  std::string controller;    // herd-ctld endpoint
  std::string state_dir;     // hostfiles live here; the Runtime keeps its own dirs below it
  model::NodeTopology topology;
  int poll_interval_ms = 100;  // how often job states are read
  // Shared by the many agents of herd-noded-emulator; null: the agent opens its own.
  std::shared_ptr<net::Context> context = nullptr;
  // Largest message taken from herd-ctld; a longer one drops the connection.
  int64_t max_message_bytes = proto::kMaxMessageBytes;
  // Below this much free space in state_dir the node takes no new job ([node] min_free_space).
  int64_t min_free_space_bytes = 0;
  // Whether a job may run as root ([controller] allow_root_jobs, the key herd-ctld obeys too):
  // herd-noded refuses a launch with uid 0 itself unless this is true.
  bool allow_root_jobs = false;
  // The uid of herd-ctld's user ([controller] user), -1 when none is configured: herd-noded acts
  // on messages signed by root, by its own user or by this one.
  int64_t controller_uid = -1;
  // Logs of jobs forgotten longer ago than this are deleted, once an hour ([controller]
  // job_retention, the age after which herd-ctld deletes the jobs' records); 0: kept.
  int64_t log_retention_s = 0;
};

class Agent {
 public:
  // metrics: GPU activity sent with heartbeats (NVML, or a fed source in tests).
  Agent(AgentOptions options, std::unique_ptr<runtime::Runtime> runtime,
        std::unique_ptr<auth::Authenticator> auth, std::unique_ptr<gpu::MetricsSource> metrics,
        const Clock* clock);
  // Connects to options.controller over ZeroMQ.
  Status Connect();
  // Uses `dealer` as the connection to herd-ctld instead (in-process tests join an Agent to a
  // Controller in memory). REQUIRES: Connect has not succeeded before.
  Status Connect(std::unique_ptr<net::Dealer> dealer);
  // Handles commands for up to timeout_ms, then reports and heartbeats as due.
  void Step(int timeout_ms);
  // When Step() next has timed work to do (register, report, heartbeat), in monotonic ms.
  int64_t NextDueMs() const;
  // The connection to herd-ctld, for a caller that waits on many agents at once.
  // REQUIRES: Connect() succeeded.
  net::Dealer* dealer() const { return dealer_.get(); }
  // Serves interactive sessions from this agent's loop and reports their state with the jobs;
  // its endpoint goes into each Register. REQUIRES: before Connect.
  void SetSessions(SessionHub* sessions) { sessions_ = sessions; }

 private:
  void Send(const proto::Envelope& e);
  template <typename T>
  void SendBody(const T& body) {
    Send(proto::MakeEnvelope(body));
  }
  // Verifies that `e` comes from herd-ctld (a credential of root or of herd-noded's own user,
  // the rule herd-ctld applies to node messages), then acts on it; drops it with a log line
  // otherwise.
  void Handle(const proto::Envelope& e);
  // Runs the route of e.type (noded/commands.cc); logs and drops a type herd-noded does not take.
  void Dispatch(const proto::Envelope& e);

  // ---- messages from herd-ctld ----
  // Their handlers (noded/commands.cc) work on this state as members do.
  friend struct Commands;
  // Records a launch that did not start, so it is reported to herd-ctld until acknowledged.
  void FailLaunch(const std::string& job_key, const Status& s);
  // Acts on the starts that ended (their shims answered, or start_timeout passed): a job that
  // runs is reported RUNNING, one that did not start as failed.
  void TakeStartOutcomes();
  void Report();
  void SendHeartbeat();
  // Updates unavailable_ from the free space in the state directory (and write_failed_); logs
  // a change.
  void CheckStateDisk();
  std::vector<proto::JobReport> Reports(bool include_ended);
  std::vector<proto::GpuMetric> GpuMetrics();

  AgentOptions options_;
  std::unique_ptr<runtime::Runtime> runtime_;
  std::unique_ptr<auth::Authenticator> auth_;
  std::unique_ptr<gpu::MetricsSource> metrics_;
  gpu::MpsManager mps_;
  const Clock* clock_;
  // This agent's RegisterRequest::instance: the same in every Register it (re)sends.
  const uint64_t instance_;
  std::unique_ptr<net::Dealer> dealer_;
  SessionHub* sessions_ = nullptr;

  bool registered_ = false;
  int heartbeat_ms_ = 2000;
  int64_t next_register_ms_ = 0;
  int64_t next_heartbeat_ms_ = 0;
  int64_t next_poll_ms_ = 0;
  int64_t next_log_prune_ms_ = 0;  // when old jobs' logs are next pruned (log_retention_s)
  std::map<std::string, runtime::JobStatus::State> last_state_;  // by job key, as last reported
  std::map<std::string, int64_t> unacked_;                       // ended key -> next resend (ms)
  std::map<std::string, proto::JobReport> failed_launches_;      // never started: no runtime state
  // Why the node takes no new job ("" = it does), sent with every heartbeat: its state directory
  // is full. write_failed_: a job's files could not be written for lack of space, so the node
  // stays unavailable until there is room again.
  std::string unavailable_;
  bool write_failed_ = false;
};

// "42.3.1" <-> job 42, run 3 (its restart_count when launched), worker 1: each run of a job has
// its own directory, cgroup and reports on the node.
std::string JobKey(model::JobId id, int run, int worker);
bool ParseJobKey(const std::string& key, model::JobId* id, int* run, int* worker);

}  // namespace herd::noded
