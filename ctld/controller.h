// Controller: herd-ctld's event loop. Owns the live state (jobs, nodes) in memory and writes
// every change through to the Store; SQLite is the durable record and a restart rebuilds memory
// from it. Each Step() handles one batch of messages inside one transaction (group commit):
// replies and node commands leave only after that transaction commits.
// Built by ctld/main.cc (and integration tests); not thread-safe: one thread calls Step().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/auth/auth.h"
#include "common/auth/connection_key.h"
#include "common/auth/web_tokens.h"
#include "common/config/config.h"
#include "common/model/job.h"
#include "common/model/node.h"
#include "common/net/net.h"
#include "common/proto/codec.h"
#include "common/proto/messages.h"
#include "common/util/clock.h"
#include "ctld/history.h"
#include "ctld/job_table.h"
#include "ctld/rpc/rpc.h"
#include "ctld/sched/evictions.h"
#include "ctld/sched/scheduler.h"
#include "ctld/stats.h"
#include "ctld/store/store.h"

namespace herd::ctld {

// Refuses a [web] user whose uid is 0, `self` (herd-ctld's own uid, which its
// node daemons trust) or an admin's: herd-web runs as that user, and herd-ctld
// would answer a compromised herd-web's own requests with those rights. Ok when
// [web] user is unset or unknown here.
Status CheckWebUser(const config::Config& config, uint32_t self);
// Whether herd-web may relay request `type` with msgpack `body` for a web
// token: exactly what its REST API sends (web/api.cc), nothing that mints
// tokens, opens connection keys, reaches a node's sessions or reads job output,
// and of the job actions only the cancel of named jobs. So a compromised
// herd-web holding a token can do no more than the API offers.
Status CheckRelayable(const std::string& type, const std::string& body);

class Controller {
 public:
  Controller(config::Config config, std::unique_ptr<store::Store> store,
             std::unique_ptr<net::Server> server, std::unique_ptr<auth::Authenticator> auth,
             const Clock* clock);

  // Loads jobs and nodes from the store. Nodes come back DOWN until they talk again.
  Status Recover();
  // Waits up to timeout_ms for messages, handles them and any due timers, commits, then sends.
  // Returns an error only when the store cannot commit: the caller must exit (state is on disk).
  Status Step(int timeout_ms);
  // Replaces the configuration; running jobs are unaffected.
  void Reconfigure(config::Config config);
  // Where ReloadConfig() reads from (SIGHUP, `herd admin reconfigure`).
  void set_config_path(std::string path) { config_path_ = std::move(path); }
  // Reloads config_path_; an invalid file is refused (line and reason) and the running one stays.
  Status ReloadConfig();
  // Replaces the real time (the steady clock) that paces the cycles requests ask for (Tick).
  // For tests that step a Controller by hand: a time that stands still gives every request its
  // cycle in the same Step, whatever the machine's speed.
  using PacingClock = std::function<std::chrono::steady_clock::time_point()>;
  void set_pacing_clock(PacingClock now) { pacing_now_ = std::move(now); }
  // How many jobs herd-ctld holds in memory (unfinished ones and those finished within [controller]
  // min_job_age); the store holds the rest.
  size_t jobs_in_memory() const { return jobs_.size(); }

 private:
  struct Node {
    std::string name;
    model::NodeTopology topology;
    model::NodeState state = model::NodeState::kDown;
    bool drain = false;
    std::string drain_reason;  // the admin's (herd admin drain --reason); stored with the node
    // The node's own report of why it can take no new job (its disk is full), from its latest
    // heartbeat; "" = none. Not stored: the node says it again at each heartbeat.
    std::string unavailable;
    int64_t last_seen_ms = 0;  // monotonic
    int64_t last_seen = 0;     // wall clock, stored
    bool registered = false;   // registered with this controller process
    uint64_t instance = 0;     // the herd-noded process it registered from (RegisterRequest)
    // The connection (routing id) of the last Register verified for this node: the only one
    // that commands go to and node messages are taken from; "" while none is known.
    std::string route;
    std::map<int, proto::GpuMetric> gpu_metrics;  // latest heartbeat's, by GPU index
    std::string session_endpoint;  // where `herd` reaches its sessions (its latest Register)
  };
  struct LogWaiter {
    std::string peer;
    uint64_t request_id;
    std::string node;  // the node asked: only its connection may answer
  };

  // Verifies the sender, checks the Caller of its route (ctld/rpc/), runs its handler; replies
  // with an error for an unknown type, a refused sender or a handler's error.
  void Handle(const net::Incoming& in);
  void Reply(const net::Incoming& in, proto::Envelope e);
  void ReplyError(const net::Incoming& in, const Status& s);
  template <typename T>
  void ReplyBody(const net::Incoming& in, const T& body) {
    Reply(in, proto::MakeEnvelope(body, in.envelope.id));
  }
  // Sends to the connection that registered `node`; dropped while it has none (a Register
  // brings the node up to date).
  template <typename T>
  void SendToNode(const std::string& node, const T& body) {
    const Node* n = FindNode(node);
    if (n == nullptr || n->route.empty()) return;
    SendSigned(n->route, proto::MakeEnvelope(body));
  }
  // Queues `e` for the node connection `route` with herd-ctld's credential, which herd-noded
  // requires of every message (a message whose credential cannot be made is dropped and logged).
  void SendSigned(const std::string& route, proto::Envelope e);
  // The registered node that the connection `peer` speaks for under the name `name`, or null.
  Node* NodeOfPeer(const std::string& name, const std::string& peer);

  // ---- requests ----
  // The handlers of each family of messages (ctld/rpc/, gathered by ctld/rpc/table.cc) work on
  // this state as members do.
  template <typename Family>
  friend struct rpc::Handlers;

  // Fills reply->estimated_start (or estimate_note) for pending `job` (ctld/report.cc).
  void EstimateStart(const model::Job& job, proto::WhyReply* reply) const;
  bool IsAdmin(const auth::Identity& who) const;
  // True when `who` is herd-web's configured user ([web] user; none when it is unset).
  bool IsWebUser(const auth::Identity& who) const;

  // Submit checks (ctld/rpc/submit.cc).
  // Ok when user `who` may have `more` pending jobs beyond those they have
  // ([controller] max_pending_per_user).
  Status CheckPendingLimit(const auth::Identity& who, int64_t more);
  Result<std::string> ValidateSubmit(model::JobSpec* spec, const auth::Identity& who) const;
  // Ok when `who` may charge jobs to spec->project (the default project when empty).
  Status CheckProject(model::JobSpec* spec, const auth::Identity& who) const;
  // Ok when spec->time_limit_s fits its class's max_time (0 becomes that max_time).
  Status CheckTimeLimit(model::JobSpec* spec) const;
  Status CheckVolumes(const model::JobSpec& spec) const;
  // Heterogeneous fleets (ctld/fleet.cc). Refuses what no known node could ever run: an unknown
  // pool or GPU type, a pool, constraint or node list no node satisfies, more GPUs, GPU memory,
  // cores or memory per worker than any node it may use has; sorts `spec`'s GPU types.
  Status CheckWhereItCanRun(model::JobSpec* spec) const;
  // Which nodes `spec` may use: its pool (herd.toml), constraints, node list and exclusions.
  model::NodeFilter NodeFilterOf(const model::JobSpec& spec) const;
  // The type of a GPU of model `gpu_model` ([gpu_types], else model::DefaultGpuType).
  std::string GpuTypeOf(const std::string& gpu_model) const;
  // "a100 (8 GPUs on 2 nodes), h100 (4 GPUs on 1 node)": the GPU types of `nodes`.
  std::string GpuTypesText(const std::vector<const Node*>& nodes) const;
  // Job `id`, when `who` may act on it (else NotFound or Denied, naming its owner).
  Result<const model::Job*> OwnJob(const auth::Identity& who, model::JobId id) const;
  // Invalid unless `worker` is one of the job's placed workers.
  Status CheckWorker(const model::Job& job, int worker) const;
  // True for the job's owner and admins: they may act on it and see all of it.
  bool MayActOn(const auth::Identity& who, const model::Job& job) const;
  // `job` as others see it: never its environment; with [controller] private_commands, not its
  // command, sweep values, directory, image or volumes either, nor a name herd made up from the
  // command (shown as "job"), nor a reason's details (after its first ':').
  model::Job Redacted(const model::Job& job) const;
  // The name of a job whose user chose none: the basename of argv[0], cut to max_name_bytes.
  std::string DefaultName(const std::vector<std::string>& argv) const;
  // Reconciles a node's job list with what the controller believes. complete: the list is
  // everything the node runs (a Register); starting_only: of the jobs missing from it, write off
  // only those never reported started (their launch went to a connection now gone).
  void Reconcile(Node& node, const std::vector<proto::JobReport>& reports, bool complete,
                 bool starting_only = false);
  // A starting job whose launch on `node` was lost (never ran): requeued, or ended as a stop
  // under way asks; its other workers are killed.
  void LaunchLost(model::Job& job, const std::string& node);
  void OnWorkerReport(const std::string& node, const proto::JobReport& report);
  // requeue: the worker never ran through a fault of its node; the job is requeued, not failed.
  void WorkerEnded(model::Job& job, int worker, int exit_code, const std::string& reason,
                   bool requeue = false);
  // Keeps a worker's latest CPU and memory figures and sums them into job.usage (in memory;
  // stored with the job's next write, at the latest when it ends).
  void RecordUsage(model::Job& job, const proto::JobReport& report);
  void Finish(model::Job& job, model::JobState state, int exit_code, std::string reason);
  void Requeue(model::Job& job, std::string reason);
  // Asks the job's nodes to kill it and records (in memory and in the store) how it must end;
  // for_job: the pending job a preemption makes room for.
  void StopJob(model::Job& job, model::JobState final_state, std::string reason, int grace_ms,
               model::JobId for_job = 0);
  // Writes the stop under way (and the job it was preempted for) of job `id` to the store, or
  // clears it there when none.
  void SaveStop(model::JobId id);
  // Asks `node` again to kill the jobs being stopped there: the first request may have been lost
  // with a herd-ctld or herd-noded that restarted.
  void ResendStops(const Node& node);
  void NodeLost(Node& node, const std::string& why);

  // Measures how long the loop was away beyond the `waited_ms` its last Poll was allowed (a
  // SIGSTOP, a stalled disk, a long cycle); after a long gap every node gets a fresh
  // node_timeout, as nodes cannot be blamed for heartbeats the controller did not read.
  void NoteLoopGap(int waited_ms);
  void Tick();
  // Declares DOWN the nodes silent for node_timeout. Runs after the batch of messages read in
  // the same Step, so a node is judged by the heartbeats actually received.
  void CheckNodes();
  void CheckTimeLimits();
  // The RUNNING jobs among those a heartbeat of a node reports, once each: the jobs its GPU
  // metrics speak of, found without a walk over every job at every heartbeat.
  std::vector<model::Job*> RunningJobsReported(const std::vector<proto::JobReport>& reports);
  // Stops `job` (a session's, reported by its node) when it uses no GPU and its terminal had no
  // input for its class's idle_input_timeout.
  void CheckInputIdle(model::Job& job, int64_t input_idle_ms);
  // Starts or clears the idle clock of `jobs` (on `node`) whose class has an idle_timeout.
  void UpdateIdle(const Node& node, const std::vector<model::Job*>& jobs);
  // Adds the GPU utilization of `node`'s latest heartbeat, weighted by `elapsed_ms` since the one
  // before, to the accounting of `jobs` (on `node`; stored with the job's next write, at the
  // latest when it ends).
  void AccountGpuUse(const Node& node, const std::vector<model::Job*>& jobs, int64_t elapsed_ms);
  // Every series' values now (ctld/history.cc).
  std::vector<SeriesValues> SampleHistory() const;
  // Takes a history sample into the Step's transaction; a failure is logged, never fatal.
  void RecordHistory();
  // Time-decayed fair share (ctld/recent_usage.cc): loads each queue's recorded usage, decayed to
  // now; adds what the queues held since the last cycle (shares_) and decays, writing the result
  // to the store every kUsageSaveInterval_s; a queue's usage now (0 if none).
  Status RecoverUsage();
  void AccumulateUsage();
  double UsageOf(const std::string& queue) const;
  // One scheduling cycle. `snapshot_text`, when given, receives the cycle's snapshot in the
  // scenario format with the decisions made on it (`herd admin snapshot`; "" when no node is known).
  void Schedule(std::string* snapshot_text = nullptr);
  sched::Snapshot BuildSnapshot() const;
  void Launch(model::Job& job);

  // Jobs beyond memory (ctld/retention.cc). Job `id` from memory or, once it left memory (a
  // finished job), from the store; null when there is none (or the store cannot be read, which is
  // logged). A job read from the store is kept in recalled_ until the next Step.
  const model::Job* FindJob(model::JobId id) const;
  model::Job* FindJob(model::JobId id);
  // Fills job->spec's env and script from the store: memory keeps neither (JobTable::Add).
  Status LoadEnvironment(model::Job* job) const;
  // The members of array `array` read from the store into recalled_, in id order.
  std::vector<model::Job*> RecallArray(model::JobId array) const;
  // The GPU type of the job's first placed GPU ("" for none), for its accounting.
  std::string GpuTypeOfJob(const model::Job& job) const;
  // Lets finished jobs older than [controller] min_job_age go from memory, and deletes one batch of
  // job records older than job_retention (their accounting kept as daily totals).
  void ForgetOldJobs();
  // Workflow (ctld/workflow.cc): dependencies, hold, begin time and array caps.
  // Checks and normalizes spec->after ("12" -> "12:ok", "12_3:any"); each dependency must exist.
  Status ValidateWorkflow(model::JobSpec* spec) const;
  // Fills jobs_.gated with the pending jobs that must not start yet and sets their reason; cancels
  // those whose dependencies can never be satisfied.
  void GateWorkflow();
  // Cancels the unfinished members of --stop-after-first-success arrays with a completed one.
  void StopAfterFirstSuccess();
  bool IsArrayHead(const model::Job& job) const { return job.spec.array_id == job.id; }
  // The members of array `array` (its first job's id), in id order; empty when it is none.
  std::vector<model::Job*> ArrayMembers(model::JobId array);
  // Member `index` of array `array` (ID_INDEX), or null.
  const model::Job* ArrayMember(model::JobId array, int64_t index) const;
  // Why pending `job` is held: by its user (herd release) or by an admin (only an admin releases).
  static model::PendingReason HoldReason(const model::Job& job);

  // Job verbs (ctld/rpc/job_verbs.cc). `action` of job `id`: of every member it applies to when
  // `whole_array` and `id` is an array's; of the job alone otherwise.
  proto::JobActionResult ActOn(const std::string& action, model::JobId id, bool whole_array,
                               const auth::Identity& who);
  // `action` ("cancel", "hold", ...) of one job `who` may act on: done, or why not.
  proto::JobActionResult ActOnJob(const std::string& action, model::Job& job,
                                  const auth::Identity& who);
  // herd cancel with filters (and no jobs named): every unfinished job matching them.
  Result<proto::JobActionReply> CancelMatching(const proto::JobActionRequest& req,
                                               const auth::Identity& who);
  // herd update of one job `who` may act on.
  proto::JobActionResult UpdateJob(const proto::UpdateJobRequest& req, model::Job& job,
                                   const auth::Identity& who);

  // Sets what pending `job` waits for (reason, waits_for, reason_code); true when what the store
  // keeps of it changed (the caller saves the job).
  static bool SetPendingReason(model::Job& job, const model::PendingReason& why);
  void Save(const model::Job& job);
  // Writes the node's record; a drained node is stored as DRAIN so a restart keeps it drained.
  void SaveNode(const Node& node);
  void Event(model::JobId id, const std::string& what);
  Node* FindNode(const std::string& name);
  // "UP", "DOWN", or "DRAIN" for an up node drained by an admin or by its own report.
  static std::string ShownNodeState(const Node& n);
  std::string QueueOf(const model::Job& job) const { return job.spec.project; }
  int64_t Now() const { return clock_->NowSeconds(); }

  config::Config config_;
  std::string config_path_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<net::Server> server_;
  std::unique_ptr<auth::Authenticator> auth_;
  // Who sent a message: its connection key, or its own MUNGE credential
  // (ctld/rpc/connection_keys.cc).
  Result<auth::Identity> Verify(const net::Incoming& in);
  auth::ConnectionKeys keys_;  // by connection; dropped when it closes (server_->TakeClosed())
  std::vector<std::string> disconnect_;  // connections closed once this Step's replies are sent
  const Clock* clock_;
  sched::Policy policy_;

  JobTable jobs_;  // unfinished jobs and recently finished ones, with what is
                   // kept of each
  // Finished jobs read back from the store during this Step (FindJob), cleared at its start.
  mutable std::map<model::JobId, model::Job> recalled_;
  store::PruneCursor prune_cursor_;  // where the next batch of job_retention's pruning starts
  std::map<std::string, Node> nodes_;
  std::map<uint64_t, LogWaiter> log_waiters_;
  uint64_t next_token_ = 1;
  std::vector<std::pair<std::string, proto::Envelope>> outbox_;
  bool schedule_soon_ = true;
  // A request of this Step freed MiBs at once (a large page of `herd jobs --json`, its jobs'
  // environments read back for it): the heap gives them back once the replies are sent
  // (malloc_trim), else they stay in herd-ctld's memory, spread between live records.
  bool trim_heap_ = false;
  bool store_failed_ = false;                      // a write failed: roll back, do not send
  Status no_space_;                                // the store's disk is full: submits refused
  int64_t next_cycle_ms_ = 0;
  int64_t polled_ms_ = 0;  // monotonic: when the last Poll returned (0: none yet)
  // Earliest moment a request may start a cycle before next_cycle_ms_ (real time; see Tick).
  std::chrono::steady_clock::time_point soon_after_;
  PacingClock pacing_now_ = std::chrono::steady_clock::now;
  std::vector<sched::QueueShare> shares_;
  // At least the pending jobs of each uid: counted at Recover and when a user nears
  // max_pending_per_user, raised by each submit and requeue since (starts and cancels leave it
  // too high, which the next count corrects).
  std::map<uint32_t, int64_t> pending_of_uid_;
  CtldStats stats_;  // for herd-web's /metrics (OnStats)
  auth::WebTokens web_tokens_;  // herd web's tokens (ctld/rpc/web.cc); lost on restart
  int64_t web_uid_ = -1;  // [web] user's uid, looked up at each (re)configuration; -1: none
  // Each queue's recent GPU use, in GPU-seconds decayed up to usage_as_of_ ([scheduler]
  // fair_share_half_life); usage_saved_: when it was last written to the store.
  static constexpr int64_t kUsageSaveInterval_s = 60;
  std::map<std::string, double> usage_;
  int64_t usage_as_of_ = 0;
  int64_t usage_saved_ = 0;
  History history_{config::HistoryConfig{}};  // herd-ctld's own time series ([history])
  int64_t next_history_ms_ = -1;               // monotonic: when the next sample is due
};

}  // namespace herd::ctld
